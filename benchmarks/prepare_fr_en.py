"""Build the fr-en alignment training corpus: Tatoeba fr-en tokenized the Hansards way + Hansards train.

The Hansards text (`hansards-fr-en`) is tokenized, has French contractions split (`du` -> `de le`,
`l'` -> `le`) and lowercased sentence-initial words; Tatoeba is raw text. To train one model on
both, this script brings Tatoeba to the Hansards conventions and appends Hansards `train.tsv`
unchanged (the gold dev sentences are part of it on purpose, as is usual for word alignment).

    python benchmarks/prepare_fr_en.py OUT.tsv
    python benchmarks/prepare_fr_en.py OUT10.tsv --hansards-copies 10 --guides OUT.gdfa OUT10.gdfa

`--hansards-copies K` appends Hansards K times: it is 2 % of the pairs but the domain the gold
alignments come from, so oversampling it weights the training towards it. `--guides` takes the
guide links of the one-copy corpus (`guide_alignments.py`) and writes them in the K-copies order.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"

FRENCH_ELISIONS = {"l": "le", "j": "je", "d": "de", "n": "ne", "qu": "que", "c": "ce", "s": "se", "m": "me",
                   "t": "te", "jusqu": "jusque", "lorsqu": "lorsque", "puisqu": "puisque", "quoiqu": "quoique"}
FRENCH_CONTRACTIONS = {"du": "de le", "des": "de les", "au": "à le", "aux": "à les"}
ENGLISH_CONTRACTIONS = [(r"\bcan't\b", "can not"), (r"\bwon't\b", "will not"), (r"\bshan't\b", "shall not"),
                        (r"n't\b", " not"), (r"'re\b", " are"), (r"'ll\b", " will"), (r"'m\b", " am"),
                        (r"'ve\b", " have"), (r"'d\b", " would")]
PUNCTUATION = re.compile(r"([.,!?;:«»\"()\[\]{}…/\-–—%$€&*+=<>])")


def split_punctuation(text: str) -> list[str]:
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return PUNCTUATION.sub(r" \1 ", text).split()


def lower_first(tokens: list[str]) -> list[str]:
    """Hansards lowercases sentence-initial words (except the pronoun I)."""
    if tokens and tokens[0] != "I":
        tokens[0] = tokens[0].lower()
    return tokens


def tokenize_french(text: str) -> str:
    tokens: list[str] = []
    for token in split_punctuation(text):
        parts = token.split("'")
        if len(parts) == 2 and parts[0].lower() in FRENCH_ELISIONS and parts[1]:
            tokens += [FRENCH_ELISIONS[parts[0].lower()] if parts[0].islower() else FRENCH_ELISIONS[parts[0].lower()].capitalize(), parts[1]]
        elif len(parts) == 2 and parts[0].lower() == "aujourd":
            tokens += [parts[0] + "'", parts[1]]
        elif len(parts) > 1:
            tokens += " ' ".join(parts).split()
        else:
            tokens.append(token)
    expanded: list[str] = []
    for token in lower_first(tokens):
        expanded += FRENCH_CONTRACTIONS.get(token, token).split()
    return " ".join(expanded)


def tokenize_english(text: str) -> str:
    for pattern, replacement in ENGLISH_CONTRACTIONS:
        text = re.sub(pattern, replacement, text)
    tokens = []
    for token in split_punctuation(text):
        tokens += " ' ".join(token.split("'")).split() if "'" in token else [token]
    return " ".join(lower_first(tokens))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the corpus to write (TSV)")
    parser.add_argument("--hansards-copies", type=int, default=1, help="append Hansards train.tsv this many times")
    parser.add_argument("--guides", nargs=2, metavar=("ONE_COPY_LINKS", "OUT_LINKS"),
                        help="repeat the guide links of the one-copy corpus the same way")
    args = parser.parse_args()
    pairs = []
    with open(CORPORA / "tatoeba-fr-en" / "train.tsv", encoding="utf-8") as handle:
        for line in handle:
            french, english = line.rstrip("\n").split("\t")
            pairs.append(f"{tokenize_french(french)}\t{tokenize_english(english)}")
    with open(CORPORA / "hansards-fr-en" / "train.tsv", encoding="utf-8") as handle:
        hansards = [line.rstrip("\n") for line in handle]
    random.Random(1).shuffle(pairs)
    with open(args.out, "w", encoding="utf-8") as out:
        for line in pairs + hansards * args.hansards_copies:
            out.write(line + "\n")
    print(f"{args.out}: {len(pairs)} Tatoeba + {args.hansards_copies} x {len(hansards)} Hansards pairs", file=sys.stderr)
    if args.guides:
        with open(args.guides[0], encoding="utf-8") as handle:
            links = handle.read().splitlines()
        if len(links) != len(pairs) + len(hansards):
            sys.exit(f"{args.guides[0]}: {len(links)} lines, but the one-copy corpus has {len(pairs) + len(hansards)} pairs")
        tatoeba_links, hansards_links = links[: len(pairs)], links[len(pairs):]
        with open(args.guides[1], "w", encoding="utf-8") as out:
            for line in tatoeba_links + hansards_links * args.hansards_copies:
                out.write(line + "\n")


if __name__ == "__main__":
    main()
