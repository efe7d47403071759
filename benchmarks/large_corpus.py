"""Memory and start-up of `attncli train` on large corpora (issue: corpora larger than memory).

For each size, builds a corpus of about SIZE megabytes from the shuffled Tatoeba es-en pairs (each
copy numbered, so no two lines are equal), then runs `attncli train --max-minutes M --epochs 1` on
it twice in a child process: first with an empty cache folder (reading, SentencePiece, encoding),
then again (the encoded corpus is reused). Prints per run: peak RSS of the child, time to its first
update, the encode throughput its log reports, and training tokens/s. With --baseline-src, also
trains on Tatoeba es-en itself with this code and with the code in that folder (a `git archive` of
an older commit: the in-memory path), one after the other, and prints their tokens/s.

    .venv/bin/python benchmarks/large_corpus.py --megabytes 100 1024 4096 --minutes 1 \
        --workdir /tmp/large --baseline-src /tmp/attncli-before
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TATOEBA = ROOT.parent / "shared" / "corpora" / "tatoeba-es-en"
sys.path.insert(0, str(ROOT))


def build_corpus(path: Path, megabytes: int) -> int:
    """Write about `megabytes` MB of numbered copies of the Tatoeba pairs; returns the pair count."""
    lines = TATOEBA.joinpath("train.tsv").read_text(encoding="utf-8").splitlines()
    random.Random(1).shuffle(lines)
    target, written, pairs, copy = megabytes * 1_000_000, 0, 0, 0
    with open(path, "w", encoding="utf-8") as out:
        while written < target:
            copy += 1
            for line in lines:
                source, tgt = line.split("\t")
                text = f"{source} ({copy})\t{tgt} ({copy})\n"
                out.write(text)
                written += len(text.encode())
                pairs += 1
                if written >= target:
                    break
    return pairs


def run_train(command: list[str], env: dict[str, str] | None = None) -> dict:
    """Run one training command; its peak RSS (this child only), time to the first update, the
    encode rate and the mean tokens/s of its logged updates after the first."""
    start = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    first_update, rates, encode_rate, log = None, [], None, []
    for line in child.stderr:
        log.append(line)
        if first_update is None and re.search(r"epoch \d+ update 1 ", line):
            first_update = time.monotonic() - start
        elif re.search(r"update \d+ .* tok/s", line):
            rates.append(float(re.search(r"([\d,]+) tok/s", line).group(1).replace(",", "")))
        if line.strip().startswith("encoding 100%"):
            encode_rate = float(re.search(r"([\d,]+) pairs/s", line).group(1).replace(",", ""))
    _, status, usage = os.wait4(child.pid, 0)
    return {"exit": os.waitstatus_to_exitcode(status), "peak_mib": usage.ru_maxrss / 1024,
            "first_update_s": first_update, "encode_pairs_s": encode_rate,
            "tokens_s": sum(rates) / len(rates) if rates else None, "wall_s": time.monotonic() - start, "log": "".join(log)}


def attncli(source: Path) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run the attncli of the tree `source`."""
    return [sys.executable, "-m", "attncli"], dict(os.environ, PYTHONPATH=str(source))


def show(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, nargs="+", default=[100, 1024])
    parser.add_argument("--minutes", type=float, default=1.0, help="attncli train --max-minutes")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--baseline-src", type=Path, default=None, help="source tree of the in-memory path to compare")
    parser.add_argument("--keep", action="store_true", help="keep the corpora and caches")
    args = parser.parse_args()
    from attncli.machine import format_machine_report, machine_report

    print(f"machine: {format_machine_report(machine_report())}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="attncli-large-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print("| corpus MB | pairs | run | exit | peak RSS MiB | first update s | encode pairs/s | train tok/s |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for megabytes in args.megabytes:
        corpus, cache = workdir / f"large-{megabytes}.tsv", workdir / f"cache-{megabytes}"
        pairs = build_corpus(corpus, megabytes)
        shutil.rmtree(cache, ignore_errors=True)
        for run in ("first", "cached"):
            command, env = attncli(ROOT)
            command = command + ["train", str(corpus), "--out", str(workdir / f"model-{megabytes}"), "--overwrite",
                                 "--max-minutes", str(args.minutes), "--epochs", "1", "--cache-dir", str(cache)]
            result = run_train(command, env)
            print(f"| {corpus.stat().st_size / 1e6:,.0f} | {pairs:,} | {run} | {result['exit']} | {result['peak_mib']:,.0f} | "
                  f"{show(result['first_update_s'], ',.0f')} | {show(result['encode_pairs_s'], ',.0f')} | "
                  f"{show(result['tokens_s'], ',.0f')} |", flush=True)
            if result["exit"]:
                print(result["log"][-3000:], file=sys.stderr)
        if not args.keep:
            corpus.unlink()
            shutil.rmtree(cache, ignore_errors=True)
    if args.baseline_src:
        compare_tatoeba(args, workdir)


def compare_tatoeba(args: argparse.Namespace, workdir: Path) -> None:
    """Seconds per update over one epoch of 20,000 shuffled Tatoeba es-en pairs (float32, 2 threads;
    benchmarks/epoch_time.py): this code against the baseline's in-memory path, in turn, twice."""
    lines = TATOEBA.joinpath("train.tsv").read_text(encoding="utf-8").splitlines()
    random.Random(2).shuffle(lines)
    corpus, dev = workdir / "tatoeba-20k.tsv", workdir / "tatoeba-dev-200.tsv"
    corpus.write_text("\n".join(lines[:20_000]) + "\n", encoding="utf-8")
    dev.write_text("\n".join(TATOEBA.joinpath("dev.tsv").read_text(encoding="utf-8").splitlines()[:200]) + "\n",
                   encoding="utf-8")
    print("\n| Tatoeba es-en, 20,000 pairs, one epoch | code | s/update (run 1) | s/update (run 2) |")
    print("|---|---|---:|---:|")
    results: dict[str, list[str]] = {"this code": [], "baseline (in memory)": []}
    for _ in range(2):
        for name, source in (("this code", ROOT), ("baseline (in memory)", args.baseline_src)):
            run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "epoch_time.py"), str(corpus), str(dev)],
                                 capture_output=True, text=True, env=attncli(source)[1])
            found = re.search(r"s_per_update=([\d.]+)", run.stdout)
            results[name].append(found.group(1) if found else f"failed ({run.stderr[-200:]!r})")
    for name, values in results.items():
        print(f"| | {name} | {' | '.join(values)} |", flush=True)


if __name__ == "__main__":
    main()
