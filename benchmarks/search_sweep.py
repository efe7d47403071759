"""Dev BLEU/chrF of one model over beam sizes and length penalties (for the findings table).

    .venv/bin/python benchmarks/search_sweep.py --model models/es-en \
        --dev ../shared/corpora/tatoeba-es-en/dev.tsv --beams 1 3 5 8 --penalties 0.6 1.0 1.4
"""

from __future__ import annotations

import argparse
import time

from attncli.corpus import read_pairs
from attncli.evaluation import score_translations
from attncli.translator import Translator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="es-en")
    parser.add_argument("--dev", required=True)
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 3, 5, 8])
    parser.add_argument("--penalties", type=float, nargs="+", default=[0.6, 1.0, 1.4])
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    pairs = read_pairs(args.dev)
    sources, references = [p.source for p in pairs], [p.target for p in pairs]
    translator = Translator.load(args.model, args.threads)
    print("| beam | length penalty | BLEU | chrF | sentences/s |")
    print("|---:|---:|---:|---:|---:|")
    for beam in args.beams:
        for penalty in (args.penalties if beam > 1 else [1.0]):
            start = time.monotonic()
            hypotheses = translator.translate(sources, beam_size=beam, length_penalty=penalty, split=False)
            seconds = time.monotonic() - start
            scores = score_translations(hypotheses, references)
            print(f"| {beam} | {penalty:g} | {scores['bleu']:.2f} | {scores['chrf']:.2f} | {len(sources) / seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
