"""Peak memory of `attncli train` on a large corpus (issue: bounded memory on big files).

Builds a corpus of about SIZE megabytes by repeating the shuffled Tatoeba es-en pairs (each copy
numbered, so no two lines are equal), then runs `attncli train` on it for one short time limit in
a child process and prints its peak RSS, wall time and the corpus size.

    .venv/bin/python benchmarks/large_corpus.py --megabytes 1024 --minutes 1
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TATOEBA = ROOT.parent / "shared" / "corpora" / "tatoeba-es-en"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--minutes", type=float, default=1.0, help="attncli train --max-minutes")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="attncli-large-"))
    workdir.mkdir(parents=True, exist_ok=True)
    corpus = workdir / "large.tsv"
    start = time.time()
    pairs = build_corpus(corpus, args.megabytes)
    print(f"corpus: {corpus.stat().st_size / 1e6:,.0f} MB, {pairs:,} pairs ({time.time() - start:.0f} s to write)", file=sys.stderr)
    command = [str(Path(sys.executable).parent / "attncli"), "train", str(corpus), "--out", str(workdir / "model"),
               "--max-minutes", str(args.minutes), "--epochs", "1"]
    start = time.time()
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.time() - start
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("| corpus MB | pairs | exit | wall s | peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {corpus.stat().st_size / 1e6:,.0f} | {pairs:,} | {result.returncode} | {wall:,.0f} | {peak_mib:,.0f} |")
    if result.returncode:
        print(result.stderr[-2000:], file=sys.stderr)


if __name__ == "__main__":
    main()
