"""Read parallel corpora: UTF-8 files with one `source<TAB>target` pair per line.

Malformed input stops the run with an error naming `path:line` (we do not silently skip: a corpus
with a stray tab usually has a column shifted, and a model trained on it is quietly worse).
Lines are split on "\\n" only, never on Unicode line separators, so line numbers match `wc -l`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import CorpusError


@dataclass(frozen=True)
class SentencePair:
    source: str
    target: str


def check_readable_file(path: Path) -> None:
    """Raise CorpusError unless `path` is an existing, readable regular file."""
    if not path.exists():
        raise CorpusError(f"{path}: no such file.")
    if path.is_dir():
        raise CorpusError(f"{path}: is a directory, expected a source<TAB>target file.")
    if not os.access(path, os.R_OK):
        raise CorpusError(f"{path}: permission denied.")


def decode_line(raw: bytes, path: Path | str, line_no: int) -> str:
    """Decode one line of bytes as UTF-8, naming the line if it is not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{path}:{line_no}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})."
        ) from None
    if line_no == 1 and text.startswith("\ufeff"):
        text = text[1:]
    return text.rstrip("\r\n")


def parse_pair(line: str, path: Path | str, line_no: int) -> SentencePair:
    """Split `source<TAB>target`; exactly one tab and two non-empty sides."""
    fields = line.split("\t")
    if len(fields) != 2:
        what = "no tab" if len(fields) == 1 else f"{len(fields) - 1} tabs"
        raise CorpusError(f"{path}:{line_no}: expected source<TAB>target, found {what}.")
    source, target = fields[0].strip(), fields[1].strip()
    if not source or not target:
        side = "source" if not source else "target"
        raise CorpusError(f"{path}:{line_no}: the {side} side is empty.")
    return SentencePair(source, target)


def iter_pairs(path: Path | str) -> Iterator[SentencePair]:
    """Stream the pairs of a corpus file; empty lines are skipped, anything else malformed stops."""
    return (pair for pair, _ in iter_pairs_read(path))


def iter_pairs_read(path: Path | str) -> Iterator[tuple[SentencePair, int]]:
    """`iter_pairs` with the bytes of the file read so far after each pair (for progress bars)."""
    path = Path(path)
    check_readable_file(path)
    read = 0
    try:
        with open(path, "rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                read += len(raw)
                line = decode_line(raw, path, line_no)
                if not line.strip():
                    continue
                yield parse_pair(line, path, line_no), read
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror or exc}).") from None


def read_pairs(path: Path | str) -> list[SentencePair]:
    """All pairs of a corpus file; an empty corpus is an error."""
    pairs = list(iter_pairs(path))
    if not pairs:
        raise CorpusError(f"{path}: no source<TAB>target pairs in the file.")
    return pairs
