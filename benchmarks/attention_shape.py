"""Where a model's attention links the words of its own translations, with no gold alignment needed.

For each model, aligns dev source lines FIRST..LAST with the model's own beam-search translation
(what `attncli inspect alignment` shows; plain argmax links, as `--format pharaoh` gives them for a
model without stored link settings) and counts
- the sentences whose first target word links to the last source word (usually the final `.` or
  `?`: the kind of sentence, not the word translated), and
- the links that join words at about the same place in their sentences (relative positions within
  a quarter of the length), a rough sign of a readable, diagonal-ish alignment.

    .venv/bin/python benchmarks/attention_shape.py --dev ../shared/corpora/tatoeba-es-en/dev.tsv \
        --lines 201 300 models/es-en OTHER_MODEL
"""

from __future__ import annotations

import argparse
from typing import Iterable

from attncli.alignment import Alignment, align_lines
from attncli.corpus import read_pairs
from attncli.translator import Translator


def shape(alignments: Iterable[Alignment]) -> tuple[int, int, int]:
    """(sentences whose target word 0 links to the last source word, near-diagonal links, links)."""
    first_to_last = near = total = 0
    for alignment in alignments:
        links = alignment.links()
        source_words, target_words = len(alignment.src_words), len(alignment.tgt_words)
        first_to_last += source_words > 1 and (source_words - 1, 0) in links
        near += sum(abs(i / source_words - j / target_words) < 0.25 for i, j in links)
        total += len(links)
    return first_to_last, near, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--dev", required=True, help="source<TAB>target file; only the sources are read")
    parser.add_argument("--lines", type=int, nargs=2, default=(201, 300), metavar=("FIRST", "LAST"))
    args = parser.parse_args()
    sources = [pair.source for pair in read_pairs(args.dev)[args.lines[0] - 1:args.lines[1]]]
    print(f"| model | first target word → last source word (of {len(sources)}) | near-diagonal links |")
    print("|---|---:|---:|")
    for model in args.models:
        alignments = align_lines(Translator.load(model), sources, args.dev)
        first_to_last, near, total = shape(alignment for alignment in alignments if alignment is not None)
        print(f"| {model} | {first_to_last} | {near} / {total} |")


if __name__ == "__main__":
    main()
