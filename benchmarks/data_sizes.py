"""attncli's defaults against a small sweep and JoeyNMT at several corpus sizes, at equal time.

For each language pair and size: a seeded shuffled slice of the training file (the files are
sorted by length), a dev set (es-en: `dev.tsv`; fr-en, which has no dev file: pairs held out of
the shuffled training file, never in any slice), and a time budget. A pair is SRC-TGT: en-es
reads tatoeba-es-en with its columns swapped (the same slices, the other direction). Every run
trains with **no options but the corpus, dev and the budget** (`attncli train SLICE --dev DEV
--max-minutes M`), plus each variant's options; then `attncli evaluate DEV --beam 5`. JoeyNMT 2.3 runs its RNN
configuration (`../shared/peers/joey/run.sh`, our architecture) for the same minutes with the
vocabulary size attncli's recipe chose for that size (its default 8,000 cannot be trained on a
2,000-pair slice). Runs go `--parallel` at a time with `--threads` each; the table goes to stdout.

    .venv/bin/python benchmarks/data_sizes.py --work /tmp/sizes --parallel 2 --threads 1 > sizes.md
    .venv/bin/python benchmarks/data_sizes.py --work /tmp/sizes --sizes 2000:5 10000:8 --pairs es-en --no-joey

Sizes are PAIRS:MINUTES (0 pairs = the whole file). The full run (4 sizes x 2 pairs x 4 variants +
JoeyNMT) takes hours; `--sizes`, `--pairs`, `--variants` and `--no-joey` cut it down. JoeyNMT
runs in a slot of `--parallel` like the variants, so with `--variants defaults --parallel 2` the
two systems train side by side, each on `--threads` threads.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))     # this tree's attncli, not an installed one
from attncli.config import TrainConfig  # noqa: E402
from attncli.modelfile import read_source_words  # noqa: E402
from attncli.recipe import complete_recipe  # noqa: E402
from attncli.source_words import unseen  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "corpora"
JOEY_DIR = ROOT.parent / "shared" / "peers" / "joey"
ATTNCLI = [sys.executable, "-m", "attncli"]          # this tree's attncli (a snapshot's, when run from one)
ATTNCLI_ENV = dict(os.environ, PYTHONPATH=str(ROOT))
DEFAULT_SIZES = ["2000:5", "10000:8", "30000:15", "0:30"]
HELD_OUT_DEV = 1000          # fr-en dev pairs taken out of the training file
EXAMPLE_WORDS = 5            # examples: dev sentences of at most this many words, in a seeded order

# Variants: options on top of the defaults (each changes what the recipe would choose).
VARIANTS = {
    "defaults": [],
    "vocabulary x2": ["--vocab-size", "{vocab2}"],
    "vocabulary /2": ["--vocab-size", "{vocab_half}"],
    "vocabulary 3/4": ["--vocab-size", "{vocab_3q}"],
    "vocabulary 4,000": ["--vocab-size", "4000"],
    "word dropout 0.2": ["--word-dropout", "0.2"],
    "dropout 0.5": ["--dropout", "0.5"],
    "epochs 300": ["--epochs", "300"],
    "learning rate /2": ["--learning-rate", "{lr_half}"],
    "no subword sampling": ["--subword-sampling", "0"],
    "subword sampling 0.5": ["--subword-sampling", "0.5"],
    "subword sampling 1.0": ["--subword-sampling", "1.0"],
    "lexical model": ["--lexical-model"],
    "no lexical model": ["--no-lexical-model"],
    "aligner guide": ["--aligner-guide"],
    "no aligner guide": ["--no-aligner-guide"],
    "float32 training": ["--train-precision", "float32"],
    "bfloat16 training": ["--train-precision", "bfloat16"],
    "model /2 (embeddings and hidden 128)": ["--embed-size", "128", "--hidden-size", "128"],
    "model x1.5 (embeddings and hidden 384)": ["--embed-size", "384", "--hidden-size", "384"],
    "Sennrich & Zhang-like (2k vocab, tied, dropout 0.3, 2,048 tokens)": [
        "--vocab-size", "2000", "--tied-output", "--dropout", "0.3", "--batch-tokens", "2048"],
}


def log(message: str) -> None:
    print(f"[sizes {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def corpus_lines(pair: str, name: str) -> list[str] | None:
    """The lines of `name` (train.tsv, dev.tsv) for `pair` "src-tgt": from tatoeba-src-tgt, or from
    tatoeba-tgt-src with the columns swapped (the other direction); None when there is no file."""
    source, target = pair.split("-")
    for folder, swap in ((f"tatoeba-{source}-{target}", False), (f"tatoeba-{target}-{source}", True)):
        path = CORPORA / folder / name
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            return ["\t".join(line.split("\t")[1::-1]) for line in lines] if swap else lines
    return None


def corpus_files(pair: str, size: int, work: Path, seed: int) -> tuple[Path, Path, int]:
    """The shuffled training slice and the dev file for `pair` at `size` pairs (0: all)."""
    lines = corpus_lines(pair, "train.tsv")
    if lines is None:
        raise SystemExit(f"data_sizes.py: no tatoeba corpus for {pair} (or its other direction) in {CORPORA}")
    random.Random(seed).shuffle(lines)
    dev_lines = corpus_lines(pair, "dev.tsv")
    if dev_lines is None:
        dev_lines, lines = lines[:HELD_OUT_DEV], lines[HELD_OUT_DEV:]
    dev = work / f"{pair}-dev.tsv"
    dev.write_text("\n".join(dev_lines) + "\n", encoding="utf-8")
    chosen = lines[:size] if size else lines
    train = work / f"{pair}-{len(chosen)}.tsv"
    train.write_text("\n".join(chosen) + "\n", encoding="utf-8")
    return train, dev, len(chosen)


def folder_name(variant: str) -> str:
    """A variant's run folder: its name's letters and digits ("vocabulary /2" -> "vocabulary-half2")."""
    words = variant.split("(")[0].replace("/", "half").replace("&", "and").split()
    return "-".join("".join(c for c in word if c.isalnum()) for word in words).strip("-").lower()


def recipe_choice(pairs: int, minutes: float) -> TrainConfig:
    """What the recipe chooses for `pairs` pairs and a --max-minutes budget."""
    return complete_recipe(TrainConfig(max_minutes=minutes), pairs)[0]


def run_attncli(name: str, options: list[str], train: Path, dev: Path, minutes: float, folder: Path,
                threads: int) -> dict:
    command = [*ATTNCLI, "train", str(train), "--dev", str(dev), "--out", str(folder), "--overwrite",
               "--max-minutes", str(minutes), "--threads", str(threads), *options]
    log(f"{folder.name}: {' '.join(command[1:])}")
    with open(folder.with_suffix(".log"), "w") as log_file:
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=log_file, check=True, env=ATTNCLI_ENV)
    scores = subprocess.run([*ATTNCLI, "evaluate", str(dev), "--model", str(folder), "--beam", "5", "--json",
                             "--threads", str(threads)], capture_output=True, text=True, check=True, env=ATTNCLI_ENV)
    result = json.loads(scores.stdout)
    log(f"{folder.name}: BLEU {result['bleu']:.2f}")
    return {"name": name, "bleu": result["bleu"], "chrf": result["chrf"], "folder": folder}


def short_dev_pairs(dev: Path, seed: int) -> list[tuple[str, str]]:
    """The dev pairs of at most EXAMPLE_WORDS source words, in a seeded random order: examples
    nobody picked by hand."""
    pairs = [line.split("\t")[:2] for line in dev.read_text(encoding="utf-8").splitlines() if "\t" in line]
    random.Random(seed).shuffle(pairs)
    return [(source, target) for source, target in pairs if len(source.split()) <= EXAMPLE_WORDS]


def example_translations(folder: Path, dev: Path, count: int, seed: int, threads: int) -> dict:
    """(source, reference, the model's translation) for the first `count` short dev pairs, and for
    the first `count` of those whose every source word occurs in the training corpus (the model
    folder's source words), with the share of short dev pairs that are so."""
    short = short_dev_pairs(dev, seed)
    known = read_source_words(folder) or frozenset()
    covered = [pair for pair in short if not unseen(known, pair[0])]
    pairs = short[:count] + covered[:count]
    run = subprocess.run([*ATTNCLI, "translate", "--model", str(folder), "--threads", str(threads)],
                         input="".join(source + "\n" for source, _ in pairs), capture_output=True, text=True,
                         check=True, env=ATTNCLI_ENV)
    translated = [(source, target, output) for (source, target), output in zip(pairs, run.stdout.splitlines())]
    return {"any": translated[:count], "covered": translated[count:], "covered_share": len(covered) / max(len(short), 1)}


def run_joey(train: Path, dev: Path, minutes: float, work: Path, vocab: int, args: argparse.Namespace) -> dict:
    workdir = work / "joey"
    shutil.rmtree(workdir, ignore_errors=True)
    env = dict(os.environ, JOEY_VENV=str(args.joey_venv), JOEY_THREADS=str(args.threads),
               VOCAB_SIZE=str(vocab), VALID_FREQ="1000000000", SEED="1")
    log(f"{work.name}: JoeyNMT, {minutes:g} minutes, vocabulary {vocab}")
    run = subprocess.run(["bash", str(JOEY_DIR / "run.sh"), str(train), str(dev), str(dev), str(workdir), str(minutes)],
                         capture_output=True, text=True, env=env)
    figures = dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line and " " not in line.split("=")[0])
    if run.returncode or "joey_bleu" not in figures:
        log(f"{work.name}: JoeyNMT failed ({run.returncode}); see {workdir}")
        return {"name": "JoeyNMT 2.3", "bleu": None, "chrf": None}
    return {"name": "JoeyNMT 2.3", "bleu": float(figures["joey_bleu"]), "chrf": float(figures["joey_chrf"])}


def measure_size(pair: str, size: int, minutes: float, args: argparse.Namespace) -> list[dict]:
    work = args.work / f"{pair}-{size or 'all'}"
    work.mkdir(parents=True, exist_ok=True)
    train, dev, pairs = corpus_files(pair, size, work, args.seed)
    chosen = recipe_choice(pairs, minutes)
    vocab = chosen.vocab_size
    jobs = [(name, [o.format(vocab2=vocab * 2, vocab_half=max(vocab // 2, 500), vocab_3q=max(vocab * 3 // 4, 500),
                             lr_half=chosen.learning_rate / 2) for o in options])
            for name, options in VARIANTS.items() if not args.variants or name in args.variants]
    with ThreadPoolExecutor(args.parallel) as pool:          # JoeyNMT takes a slot like any variant
        futures = [pool.submit(run_attncli, *job, train, dev, minutes, work / folder_name(job[0]), args.threads)
                   for job in jobs]
        if not args.no_joey:
            futures.append(pool.submit(run_joey, train, dev, minutes, work, vocab, args))
        rows = [future.result() for future in futures]
    for row in rows:
        if row["name"] == "defaults" and args.examples:
            row["examples"] = example_translations(row["folder"], dev, args.examples, args.seed, args.threads)
    return [dict(row, pair=pair, pairs=pairs, minutes=minutes) for row in rows]


def table(rows: list[dict]) -> str:
    lines = ["| pair | training pairs | minutes | run | dev BLEU (beam 5) | chrF |", "|---|---:|---:|---|---:|---:|"]
    for r in rows:
        bleu = "—" if r["bleu"] is None else f"{r['bleu']:.2f}"
        chrf = "—" if r["chrf"] is None else f"{r['chrf']:.2f}"
        lines.append(f"| {r['pair']} | {r['pairs']:,} | {r['minutes']:g} | {r['name']} | {bleu} | {chrf} |")
    return "\n".join(lines)


def examples(rows: list[dict]) -> str:
    """The defaults' translations of short dev sentences, two lists per run: any, and those whose
    every word the training corpus holds."""
    parts = []
    for r in rows:
        if r.get("examples"):
            found = r["examples"]
            parts.append(f"\n{r['pair']}, {r['pairs']:,} pairs, defaults (source → translation; reference):")
            parts += [f"- {source} → {output} ({target})" for source, target, output in found["any"]]
            parts.append(f"\nthe same, among the short dev sentences whose every word occurs in the training corpus "
                         f"({found['covered_share']:.0%} of them):")
            parts += [f"- {source} → {output} ({target})" for source, target, output in found["covered"]]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=["es-en", "fr-en"],
                        help="language pairs SRC-TGT (tatoeba-SRC-TGT corpora; en-es reads tatoeba-es-en the other way)")
    parser.add_argument("--sizes", nargs="+", default=DEFAULT_SIZES, help="PAIRS:MINUTES, 0 pairs = all")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), metavar="VARIANT",
                        help=f"only these of: {', '.join(VARIANTS)}")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-joey", action="store_true")
    parser.add_argument("--examples", type=int, default=5,
                        help=f"translate this many dev sentences of at most {EXAMPLE_WORDS} words with each defaults model")
    parser.add_argument("--joey-venv", type=Path, default=Path(os.environ.get(
        "JOEY_VENV", Path.home() / ".cache" / "attncli-peers" / "joey-venv")))
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    if not args.no_joey and not (args.joey_venv / "bin" / "python").exists():
        parser.error(f"no JoeyNMT virtualenv at {args.joey_venv}: bash {JOEY_DIR / 'setup_venv.sh'}, or --no-joey")
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for pair in args.pairs:
        for spec in args.sizes:
            size, minutes = spec.split(":")
            rows += measure_size(pair, int(size), float(minutes), args)
            log("\n" + table(rows))
    from attncli.machine import format_machine_report, machine_report

    print(f"machine: {format_machine_report(machine_report())}")
    print(f"CPU threads per run: {args.threads}, {args.parallel} runs at a time.\n")
    print(table(rows))
    print(examples(rows))


if __name__ == "__main__":
    main()
