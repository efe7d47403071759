"""The two passes over a training corpus file, each in memory that does not grow with the file.

1. `scan`: count the pairs (every line checked), hold out the dev pairs when no --dev is given, and
   draw the seeded sample SentencePiece is trained on (reservoir sampling: one pass, at most
   SPM_SAMPLE_PAIRS pairs in memory).
2. `encode`: tokenize the training pairs in chunks (SentencePiece encodes a chunk on both cores)
   and append them to the cache (corpus_cache.CacheBuilder), counting duplicates on the way.

Both send "data" events (pairs, pairs/s, share of the file, time left) at most twice a second.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .alignment import parse_pharaoh
from .corpus import SentencePair, check_readable_file, decode_line, read_blocks
from .corpus_cache import CacheBuilder, pair_hashes
from .errors import CorpusError
from .events import TrainEvent
from .tokenizer import Tokenizer

SPM_SAMPLE_PAIRS = 1_000_000     # pairs SentencePiece is trained on, at most (2 million sentences, joint)
DEV_FRACTION, DEV_LIMIT = 0.01, 2000   # without --dev: hold out 1% of the pairs, at most 2000, at least 1
ENCODE_CHUNK = 20_000            # pairs tokenized per SentencePiece call


class PassMeter:
    """Throttled "data" events for one pass over a file."""

    def __init__(self, what: str, path: Path, on_event: Callable[[TrainEvent], None], every_s: float = 0.5) -> None:
        self.what, self.on_event, self.every_s = what, on_event, every_s
        self.total = max(path.stat().st_size, 1)
        self.start = self.last = time.monotonic()

    def tick(self, pairs: int, bytes_read: int, force: bool = False) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s and not force:
            return
        self.last, elapsed, fraction = now, now - self.start, min(bytes_read / self.total, 1.0)
        left = elapsed * (1 - fraction) / fraction if fraction else 0.0
        self.on_event(TrainEvent("data", message=self.what, pairs=pairs, pairs_per_s=pairs / max(elapsed, 1e-9),
                                 fraction=fraction, elapsed_s=elapsed, seconds_left=left))


class Reservoir:
    """A seeded uniform random sample of at most `size` pairs of a stream, with their positions.

    Li's algorithm L: after the first `size` pairs, the gap to the next pair that enters the
    sample is drawn directly, so the pairs passed over cost nothing (no random number, no object
    per pair): reading a corpus of millions of pairs does a few thousand steps here."""

    def __init__(self, size: int, seed: str) -> None:
        self.size, self.rng = size, random.Random(seed)
        self.items: list[tuple[int, SentencePair]] = []
        self.weight = 1.0
        self.next = 0                  # position of the next pair to take

    def offer_block(self, first: int, sources: Sequence[str], targets: Sequence[str]) -> None:
        """Offer the pairs of a block whose first pair has position `first`."""
        end = first + len(sources)
        while self.size and self.next < end:
            position = self.next
            pair = (position, SentencePair(sources[position - first], targets[position - first]))
            if len(self.items) < self.size:
                self.items.append(pair)
                if len(self.items) < self.size:
                    self.next += 1
                else:
                    self._step()
            else:
                self.items[self.rng.randrange(self.size)] = pair
                self._step()

    def _step(self) -> None:
        """From the pair just taken, draw the weight and the gap to the next one to take."""
        self.weight *= math.exp(math.log(1.0 - self.rng.random()) / self.size)
        gap = math.floor(math.log(1.0 - self.rng.random()) / math.log(1.0 - self.weight)) if self.weight < 1.0 else 0
        self.next += gap + 1


class DuplicateCounter:
    """Repeated pairs among those added, in bounded memory: exact while at most LIMIT distinct
    hashes are kept, beyond that estimated from the hashes whose lowest `level` bits are 0 (every
    copy of a pair is in or out of that sample together), scaled up."""

    LIMIT = 1 << 18

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.level = 0

    def add(self, hashes: np.ndarray) -> None:
        """Count the pairs of these pair_hashes."""
        mask = np.uint64((1 << self.level) - 1)
        self.counts.update(hashes[(hashes & mask) == 0].tolist())
        while len(self.counts) > self.LIMIT:
            self.level += 1
            self.counts = Counter({key: n for key, n in self.counts.items() if not key & ((1 << self.level) - 1)})

    def duplicates(self) -> int:
        return (sum(self.counts.values()) - len(self.counts)) << self.level


@dataclass
class CorpusScan:
    pairs: int                                 # pairs in the file
    held_out: dict[int, SentencePair]          # position -> pair: the dev pairs (empty with --dev)
    sample: list[SentencePair]                 # training pairs to train SentencePiece on


def scan(path: Path, seed: int, hold_out: bool, sample_size: int, on_event: Callable[[TrainEvent], None]) -> CorpusScan:
    """Pass 1: count and check every pair; draw the dev pairs (when `hold_out`) and the sample."""
    meter = PassMeter("reading", path, on_event)
    dev = Reservoir(DEV_LIMIT if hold_out else 0, f"{seed}:dev")
    sample = Reservoir(sample_size, f"{seed}:sentencepiece")
    count = read = 0
    for sources, targets, read in read_blocks(path):
        dev.offer_block(count, sources, targets)
        sample.offer_block(count, sources, targets)
        count += len(sources)
        meter.tick(count, read)
    meter.tick(count, read, force=True)
    if count == 0:
        raise CorpusError(f"{path}: no source<TAB>target pairs in the file.")
    held_out: dict[int, SentencePair] = {}
    if hold_out:
        if count < 2:
            raise CorpusError("the corpus needs at least two pairs to hold one out for --dev.")
        dev.rng.shuffle(dev.items)
        held_out = dict(sorted(dev.items[:max(1, min(DEV_LIMIT, int(count * DEV_FRACTION)))]))
    return CorpusScan(count, held_out, [pair for position, pair in sample.items if position not in held_out])


def guide_lines(path: Path | None, pairs: int) -> Iterator[str | None]:
    """Each pair's Pharaoh line of a --guide-alignments file (checked), or None forever without one;
    a file with another number of lines than `pairs` stops the run, naming both counts."""
    if path is None:
        while True:
            yield None
    check_readable_file(path)
    line_no = 0
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            line = decode_line(raw, path, line_no)
            parse_pharaoh(line, f"{path}:{line_no}: ")
            if line_no <= pairs:
                yield line
    if line_no != pairs:
        raise CorpusError(f"{path}: has {line_no} lines but the corpus has {pairs} pairs (one line of links per pair).")
    while True:
        yield None


@dataclass
class EncodeCounts:
    kept: int = 0
    skipped: int = 0            # longer than --max-len
    duplicates: int = 0         # estimated beyond DuplicateCounter.LIMIT distinct pairs


def encode(path: Path, corpus: CorpusScan, tokenizers: tuple[Tokenizer, Tokenizer], max_len: int,
           guide_path: Path | None, builder: CacheBuilder, on_event: Callable[[TrainEvent], None]) -> EncodeCounts:
    """Pass 2: tokenize every training pair (not held out, at most `max_len` pieces a side) into
    `builder`, with its guide line; the guide file is read alongside and checked to the end.

    SentencePiece encodes chunk k on its own threads (it releases the GIL) while this thread
    reads and splits the text of chunk k+1 and stores chunk k-1: both cores stay busy."""
    meter = PassMeter("encoding", path, on_event)
    counts, repeats = EncodeCounts(), DuplicateCounter()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for sources, targets, guides, read in _training_chunks(path, corpus, guide_path):
            encoded = pool.submit(_tokenize, tokenizers, sources, targets)
            if pending is not None:
                _store(*pending[0].result(), pending[1], max_len, builder, counts, repeats)
                meter.tick(counts.kept + counts.skipped, pending[2])
            pending = (encoded, guides, read)
        if pending is not None:
            _store(*pending[0].result(), pending[1], max_len, builder, counts, repeats)
            meter.tick(counts.kept + counts.skipped, pending[2], force=True)
    counts.duplicates = repeats.duplicates()
    return counts


def _training_chunks(path: Path, corpus: CorpusScan,
                     guide_path: Path | None) -> Iterator[tuple[list[str], list[str], list[str | None], int]]:
    """(sources, targets, guide lines, bytes read) of the pairs not held out, ENCODE_CHUNK at a time."""
    guides = guide_lines(guide_path, corpus.pairs)
    position = 0
    for sources, targets, read in read_blocks(path):
        lines = [next(guides) for _ in sources]
        keep = [i for i in range(len(sources)) if position + i not in corpus.held_out]
        position += len(sources)
        for start in range(0, len(keep), ENCODE_CHUNK):
            part = keep[start:start + ENCODE_CHUNK]
            yield [sources[i] for i in part], [targets[i] for i in part], [lines[i] for i in part], read
    next(guides)                       # reads the guide file to its end: checks its line count


def _tokenize(tokenizers: tuple[Tokenizer, Tokenizer], sources: list[str], targets: list[str]) -> tuple[list, list]:
    return tokenizers[0].encode_batch(sources), tokenizers[1].encode_batch(targets)


def _store(src: list[list[int]], tgt: list[list[int]], guides: list[str | None], max_len: int,
           builder: CacheBuilder, counts: EncodeCounts, repeats: DuplicateCounter) -> None:
    """Count a chunk's duplicates; append its pairs of at most `max_len` pieces a side to the cache."""
    hashes, total = pair_hashes(src, tgt), len(src)
    repeats.add(hashes)
    keep = [i for i in range(total) if len(src[i]) <= max_len and len(tgt[i]) <= max_len]
    if len(keep) < total:
        src, tgt, guides, hashes = [src[i] for i in keep], [tgt[i] for i in keep], [guides[i] for i in keep], hashes[keep]
    builder.add(src, tgt, hashes, [line or "" for line in guides] if builder.guides else None)
    counts.kept += len(keep)
    counts.skipped += total - len(keep)
