"""Build the fr-en alignment training corpus: Tatoeba fr-en tokenized the Hansards way + Hansards train.

The Hansards text (`hansards-fr-en`) is tokenized, has French contractions split (`du` -> `de le`,
`l'` -> `le`) and lowercased sentence-initial words; Tatoeba is raw text. To train one model on
both, this script brings Tatoeba to the Hansards conventions and appends Hansards `train.tsv`
unchanged (the gold dev sentences are part of it on purpose, as is usual for word alignment).

    python benchmarks/prepare_fr_en.py OUT.tsv
"""

from __future__ import annotations

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


def main(out_path: str) -> None:
    pairs = []
    with open(CORPORA / "tatoeba-fr-en" / "train.tsv", encoding="utf-8") as handle:
        for line in handle:
            french, english = line.rstrip("\n").split("\t")
            pairs.append(f"{tokenize_french(french)}\t{tokenize_english(english)}")
    with open(CORPORA / "hansards-fr-en" / "train.tsv", encoding="utf-8") as handle:
        hansards = [line.rstrip("\n") for line in handle]
    random.Random(1).shuffle(pairs)
    with open(out_path, "w", encoding="utf-8") as out:
        for line in pairs + hansards:
            out.write(line + "\n")
    print(f"{out_path}: {len(pairs)} Tatoeba + {len(hansards)} Hansards pairs", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
