"""Where a model's attention links the words of its own translations, with no gold alignment needed.

For each model, aligns dev source lines FIRST..LAST with `attncli inspect alignment --format pharaoh`
(the model's own beam-search translation, its attention's argmax links) and counts
- the sentences whose first target word links to the last source word (usually the final `.` or
  `?`: the kind of sentence, not the word translated), and
- the links that join words at about the same place in their sentences (relative positions within
  a quarter of the length), a rough sign of a readable, diagonal-ish alignment.

    .venv/bin/python benchmarks/attention_shape.py --dev ../shared/corpora/tatoeba-es-en/dev.tsv \
        --lines 201 300 models/es-en OTHER_MODEL
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def links_of(line: str) -> list[tuple[int, int]]:
    """Pharaoh `i-j` links (source word i, target word j) of one line."""
    return [tuple(map(int, link.split("-"))) for link in line.split()]


def shape(sources: list[str], pharaoh: list[str]) -> tuple[int, int, int]:
    """(sentences whose target word 0 links to the last source word, near-diagonal links, links)."""
    first_to_last = near = total = 0
    for source, line in zip(sources, pharaoh):
        links = links_of(line)
        if not links:
            continue
        source_words, target_words = len(source.split()), max(j for _, j in links) + 1
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
    with open(args.dev, encoding="utf-8") as dev:
        sources = [line.split("\t")[0] for line in dev.read().splitlines()][args.lines[0] - 1:args.lines[1]]
    print(f"| model | first target word → last source word (of {len(sources)}) | near-diagonal links |")
    print("|---|---:|---:|")
    for model in args.models:
        pharaoh = subprocess.run([sys.executable, "-m", "attncli", "inspect", "alignment", "--model", model,
                                  "--format", "pharaoh"], input="\n".join(sources) + "\n", capture_output=True,
                                 text=True, check=True).stdout.splitlines()
        first_to_last, near, total = shape(sources, pharaoh)
        print(f"| {model} | {first_to_last} | {near} / {total} |")


if __name__ == "__main__":
    main()
