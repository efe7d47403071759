"""The source words a model was trained on, so that translating can say which words of its input
the model never saw. On a small corpus that is the commonest reason for a wrong translation (2,000
Tatoeba es-en pairs: 63% of the dev sentences hold a word the training pairs lack): the model
guesses such a word from its pieces, and the user should know which words were guesses.

A word is a run of letters, digits and combining marks with at least one letter, casefolded and
NFKC-normalised (as SentencePiece normalises); punctuation and apostrophes separate words
("l'avez" is "l", "avez"). Scripts written without spaces (Chinese, Japanese, Thai, ...) count each character as a
word. The model folder stores the set (modelfile.SOURCE_WORDS_FILE) unless the corpus has more
than MAX_WORDS of them or more than training_data.WORDS_MAX_PAIRS pairs; without it there is no
note. Training also warns when many dev sentences hold words the set lacks
(training_data.unseen_dev_words_warning). This module imports neither torch nor NumPy.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from itertools import islice
from typing import Callable, Iterable, Iterator, Sequence

MAX_WORDS = 300_000          # a larger vocabulary is not stored (the file would outweigh its use)
NOTE_SHOWN = 12              # the note names at most this many words
DECODE_CHUNK = 10_000        # training pairs decoded per SentencePiece call

_UNSPACED = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"


@cache
def _word_pattern() -> re.Pattern:
    """A character of an unspaced script, or a run of letters, digits and combining marks (vowel
    signs, diacritics: "हिन्दी" is one word), built on first use (the marks of the BMP: ~15 ms)."""
    marks = "".join(re.escape(chr(code)) for code in range(0x300, 0x10000)
                    if unicodedata.category(chr(code))[0] == "M" and not re.match(f"[{_UNSPACED}]", chr(code)))
    return re.compile(rf"[{_UNSPACED}]|(?:(?![{_UNSPACED}])(?:[^\W_]|[{marks}]))+")


def word_keys(text: str) -> list[str]:
    """The words of `text` as the set stores them, in order."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return [word for word in _word_pattern().findall(text) if any(char.isalpha() for char in word)]


def training_words(sources: Iterable[str], limit: int = MAX_WORDS) -> frozenset[str] | None:
    """The words of these training sentences, or None if there are more than `limit`."""
    words: set[str] = set()
    for sentence in sources:
        words.update(word_keys(sentence))
        if len(words) > limit:
            return None
    return frozenset(words)


def decoded(decode_batch: Callable[[list[list[int]]], list[str]], rows: Iterable[list[int]]) -> Iterator[str]:
    """The text of encoded sentences, decoded DECODE_CHUNK at a time."""
    rows = iter(rows)
    while chunk := list(islice(rows, DECODE_CHUNK)):
        yield from decode_batch(chunk)


def unseen(known: frozenset[str], text: str) -> list[str]:
    """The words of `text` that are not in `known`, in order, each once."""
    return list(dict.fromkeys(word for word in word_keys(text) if word not in known))


def unseen_note(words: Sequence[str]) -> str:
    """The line that names the input words the model never saw in training."""
    shown = ", ".join(words[:NOTE_SHOWN]) + (f" and {len(words) - NOTE_SHOWN:,} more" if len(words) > NOTE_SHOWN else "")
    if len(words) == 1:
        return f"1 word of the input never occurred in this model's training corpus ({shown}): its translation is a guess."
    return (f"{len(words):,} words of the input never occurred in this model's training corpus ({shown}): "
            "their translations are guesses.")


def parse_words(text: str) -> frozenset[str]:
    """The set from its file's text: one word per line."""
    return frozenset(line for line in text.split("\n") if line)


def format_words(words: Iterable[str]) -> str:
    """The file's text: the words sorted, one per line."""
    return "".join(word + "\n" for word in sorted(words))
