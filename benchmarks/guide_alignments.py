"""Write eflomal's grow-diag-final-and links for every pair of the fr-en training corpus.

These are the *guide* alignments for `attncli train --guide-alignments`: an unsupervised
statistical aligner's links (never the gold ones), one Pharaoh line per corpus pair. They are made
by `benchmarks/alignment.py` (eflomal in its own virtualenv, cached in benchmarks/.cache/):

    .venv/bin/python benchmarks/alignment.py --skip-attncli       # once: runs eflomal, caches links
    .venv/bin/python benchmarks/guide_alignments.py CORPUS.tsv OUT.align
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import alignment as bench  # noqa: E402  (benchmarks/alignment.py)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="the prepared corpus (benchmarks/prepare_fr_en.py)")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    eflomal = argparse.Namespace(eflomal_model=3, eflomal_length=1.0, eflomal_samplers=3, eflomal_rerun=False,
                                 eflomal_venv=str(bench.EFLOMAL_VENV), eflomal_threads=1, nice=10)  # alignment.py's defaults
    corpus = bench.read_pairs(args.corpus)
    forward_path, reverse_path, _ = bench.run_eflomal(args.corpus, corpus, eflomal)
    forward = bench.read_links(forward_path, 0, len(corpus))
    reverse = bench.read_links(reverse_path, 0, len(corpus))
    lengths = [(len(src.split()), len(tgt.split())) for src, tgt in corpus]
    with open(args.out, "w", encoding="utf-8") as out:
        for f, r, (ls, lt) in zip(forward, reverse, lengths):
            links = bench.grow_diag_final_and(f, r, ls, lt)
            out.write(" ".join(f"{i}-{j}" for i, j in sorted(links)) + "\n")
    print(f"{args.out}: {len(corpus)} lines", file=sys.stderr)


if __name__ == "__main__":
    main()
