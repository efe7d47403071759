"""Read parallel corpora: UTF-8 files with one `source<TAB>target` pair per line.

Malformed input stops the run with an error naming `path:line` (we do not silently skip: a corpus
with a stray tab usually has a column shifted, and a model trained on it is quietly worse).
Lines are split on "\\n" only, never on Unicode line separators, so line numbers match `wc -l`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import CorpusError


@dataclass(frozen=True, slots=True)
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
    for block in read_blocks(path):
        yield from map(SentencePair, block.sources, block.targets)


BLOCK_BYTES = 1 << 22


@dataclass(frozen=True)
class FilePoint:
    """A place in a corpus file at the start of a line: byte offset, lines and pairs before it."""

    offset: int = 0
    lines: int = 0
    pairs: int = 0


@dataclass
class Block:
    """The pairs of consecutive whole lines of a corpus file, and the point just after them."""

    sources: list[str]
    targets: list[str]
    end: FilePoint


def read_blocks(path: Path | str, block_bytes: int | None = None, start: FilePoint = FilePoint(),
                stop: int | None = None) -> Iterator[Block]:
    """The pairs of a corpus file (from `start` to byte `stop`, a line start; default: all of it)
    in blocks of whole lines.

    A block is decoded and split at once (several times faster than line by line); a block with
    anything unusual (a blank line, bad UTF-8, a wrong number of tabs) is read line by line,
    so errors name their line exactly as `iter_pairs` always did."""
    path = Path(path)
    check_readable_file(path)
    block_bytes = block_bytes or BLOCK_BYTES
    point, rest = start, b""
    try:
        with open(path, "rb") as handle:
            handle.seek(start.offset)
            left = math.inf if stop is None else stop - start.offset
            while left > 0 and (chunk := handle.read(int(min(block_bytes, left)))):
                left -= len(chunk)
                data = rest + chunk
                cut = data.rfind(b"\n") + 1           # just after the last whole line; 0: none ends here yet
                rest = data[cut:]
                if cut:
                    point, block = _block(data[:cut], path, point)
                    yield block
            if rest:
                yield _block(rest, path, point)[1]
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror or exc}).") from None


def _block(data: bytes, path: Path, point: FilePoint) -> tuple[FilePoint, Block]:
    sources, targets = _parse_block(data, path, point.lines)
    end = FilePoint(point.offset + len(data), point.lines + data.count(b"\n"), point.pairs + len(sources))
    return end, Block(sources, targets, end)


def _parse_block(block: bytes, path: Path, lines_before: int) -> tuple[list[str], list[str]]:
    """Sources and targets of the whole lines in `block`, which follow `lines_before` lines."""
    try:
        text = block.decode("utf-8")
        if lines_before == 0 and text.startswith("\ufeff"):
            text = text[1:]
        fields = [line.split("\t") for line in text.removesuffix("\n").split("\n")]
        sources = [field[0].strip() for field in fields]
        targets = [field[1].strip() for field in fields if len(field) == 2]
        if len(targets) == len(fields) and all(sources) and all(targets):
            return sources, targets
    except UnicodeDecodeError:
        pass
    pairs = []                                     # something unusual: line by line, errors by line number
    for line_no, raw in enumerate(block.split(b"\n")[: block.count(b"\n") + (not block.endswith(b"\n"))],
                                  start=lines_before + 1):
        line = decode_line(raw, path, line_no)
        if line.strip():
            pairs.append(parse_pair(line, path, line_no))
    return [pair.source for pair in pairs], [pair.target for pair in pairs]


def read_pairs(path: Path | str) -> list[SentencePair]:
    """All pairs of a corpus file; an empty corpus is an error."""
    pairs = list(iter_pairs(path))
    if not pairs:
        raise CorpusError(f"{path}: no source<TAB>target pairs in the file.")
    return pairs
