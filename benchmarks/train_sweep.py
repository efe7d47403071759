"""Dev BLEU/chrF of training variants at an equal wall-clock budget (for the findings table).

Each variant is `attncli train` on the same corpus with the base options plus its own, for
`--minutes`, then `attncli evaluate` on the dev set with beam 5. Runs go `--parallel` at a time
with `--threads` each, so every variant trains under the same conditions; the table is printed
on stdout (progress and each run's log go to stderr / the work folder).

    .venv/bin/python benchmarks/train_sweep.py --minutes 20 --parallel 2 --threads 1 \
        --work /tmp/sweep > sweep.md

Short budgets rank how fast a variant learns, not where it ends: read the table as that.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from attncli.modelfile import read_model_info

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpora" / "tatoeba-es-en"
ATTNCLI = str(Path(sys.executable).parent / "attncli")

# The shipped es-en recipe's sizes (its 8,000 pieces and no lexical model, which the recipe would
# change for a budget of 90 minutes or less); each variant changes one thing.
BASE = ["--embed-size", "256", "--hidden-size", "384", "--dropout", "0.25", "--vocab-size", "8000",
        "--no-lexical-model", "--seed", "1", "--overwrite"]
VARIANTS = {
    "base (shipped recipe)": [],
    "vocabulary 4k": ["--vocab-size", "4000"],
    "vocabulary 16k": ["--vocab-size", "16000"],
    "separate vocabularies (8k each)": ["--no-joint-vocab"],
    "no label smoothing": ["--label-smoothing", "0"],
    "dropout 0.1": ["--dropout", "0.1"],
    "tied output embeddings (embed 384)": ["--tied-output", "--embed-size", "384"],
    "batches of 8192 tokens": ["--batch-tokens", "8192"],
}
NOT_BY_DEFAULT = {"separate vocabularies (8k each)", "batches of 8192 tokens"}   # run with --only or --all


def log(message: str) -> None:
    print(f"[sweep {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_variant(name: str, extra: list[str], args: argparse.Namespace) -> dict:
    folder = args.work / name.split(" (")[0].replace(" ", "-")
    command = [ATTNCLI, "train", str(args.train), "--dev", str(args.dev), "--out", str(folder),
               "--max-minutes", str(args.minutes), "--threads", str(args.threads), *BASE, *extra]
    log(f"{name}: {' '.join(command[1:])}")
    with open(folder.with_suffix(".log"), "w") as log_file:
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=log_file, check=True)
    result = subprocess.run([ATTNCLI, "evaluate", str(args.dev), "--model", str(folder), "--beam", "5",
                             "--json", "--threads", str(args.threads)], capture_output=True, text=True, check=True)
    history = [h for h in read_model_info(folder).history or [] if "dev_bleu" in h]
    scores = json.loads(result.stdout)
    log(f"{name}: BLEU {scores['bleu']:.2f}")
    return {"name": name, "bleu": scores["bleu"], "chrf": scores["chrf"],
            "updates": history[-1]["step"] if history else 0, "size_mb": (folder / "model.safetensors").stat().st_size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=CORPUS / "train.tsv")
    parser.add_argument("--dev", type=Path, default=CORPUS / "dev.tsv")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget of each variant")
    parser.add_argument("--parallel", type=int, default=2, help="variants trained at once")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per variant")
    parser.add_argument("--only", nargs="+", help="run only these variants (names as in the table)")
    parser.add_argument("--all", action="store_true", help=f"also run {' and '.join(sorted(NOT_BY_DEFAULT))}")
    parser.add_argument("--work", type=Path, required=True, help="folder for the models and logs")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    unknown = set(args.only or []) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variant(s): {', '.join(sorted(unknown))}; known: {', '.join(VARIANTS)}")
    chosen = {name: extra for name, extra in VARIANTS.items()
              if (name in args.only if args.only else args.all or name not in NOT_BY_DEFAULT)}
    with ThreadPoolExecutor(args.parallel) as pool:
        results = list(pool.map(lambda item: run_variant(*item, args), chosen.items()))
    print(f"| variant ({args.minutes:g} min, {args.threads} thread(s), {args.parallel} at a time) "
          "| dev BLEU (beam 5) | chrF | updates | weights MB |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['name']} | {r['bleu']:.2f} | {r['chrf']:.2f} | {r['updates']} | {r['size_mb']:.0f} |")


if __name__ == "__main__":
    main()
