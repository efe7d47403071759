"""The two passes over a training corpus file, each in memory that does not grow with the file.

1. `scan`: count the pairs (every line checked), hold out the dev pairs when no --dev is given, and
   draw the seeded sample SentencePiece is trained on (reservoir sampling: one pass, at most
   SPM_SAMPLE_PAIRS pairs in memory).
2. `encode`: tokenize the training pairs in chunks and append them to the cache
   (corpus_cache.CacheBuilder); a large file is cut into one range per core, each encoded by its
   own process (SentencePiece's own threads barely help: building the id lists holds the GIL);
   then count the duplicates from the hashes written.

Both send "data" events (pairs, pairs/s, share of the file, time left) at most twice a second.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .alignment import format_pharaoh, parse_pharaoh
from .corpus import FilePoint, SentencePair, check_readable_file, decode_line, read_blocks
from .corpus_cache import CacheBuilder, pair_hashes
from .errors import CorpusError, OptionError
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
    points: list[FilePoint]                    # the end of every block read: where pass 2 may split the file


def scan(path: Path, seed: int, hold_out: bool, sample_size: int, on_event: Callable[[TrainEvent], None]) -> CorpusScan:
    """Pass 1: count and check every pair; draw the dev pairs (when `hold_out`) and the sample."""
    meter = PassMeter("reading", path, on_event)
    dev = Reservoir(DEV_LIMIT if hold_out else 0, f"{seed}:dev")
    sample = Reservoir(sample_size, f"{seed}:sentencepiece")
    points: list[FilePoint] = []
    for block in read_blocks(path):
        first = points[-1].pairs if points else 0
        dev.offer_block(first, block.sources, block.targets)
        sample.offer_block(first, block.sources, block.targets)
        points.append(block.end)
        meter.tick(block.end.pairs, block.end.offset)
    count = points[-1].pairs if points else 0
    meter.tick(count, points[-1].offset if points else 0, force=True)
    if count == 0:
        raise CorpusError(f"{path}: no source<TAB>target pairs in the file.")
    held_out: dict[int, SentencePair] = {}
    if hold_out:
        if count < 2:
            raise CorpusError("the corpus needs at least two pairs to hold one out for --dev.")
        dev.rng.shuffle(dev.items)
        held_out = dict(sorted(dev.items[:max(1, min(DEV_LIMIT, int(count * DEV_FRACTION)))]))
    return CorpusScan(count, held_out, [pair for position, pair in sample.items if position not in held_out], points)


def write_aligner_guides(path: Path, corpus: CorpusScan, out: Path, on_event: Callable[[TrainEvent], None]) -> None:
    """Pass 1b (--aligner-guide): the built-in aligner's word links (word_aligner.py) for the
    training pairs, written to `out` as a --guide-alignments file: a Pharaoh line for each pair
    of the file, empty for the held-out dev pairs. The aligner holds the corpus in memory."""
    from .word_aligner import MAX_PAIRS, align_corpus

    training_pairs = corpus.pairs - len(corpus.held_out)
    if training_pairs > MAX_PAIRS:
        raise OptionError(f"--aligner-guide aligns at most {MAX_PAIRS:,} pairs in memory and {path} has "
                          f"{training_pairs:,}: give --guide-alignments from an aligner such as eflomal or fast_align.")
    training: list[tuple[str, str]] = []
    for block in read_blocks(path):
        first = block.end.pairs - len(block.sources)
        training += [(source, target) for k, (source, target) in enumerate(zip(block.sources, block.targets))
                     if first + k not in corpus.held_out]
    on_event(TrainEvent("start", message=f"aligning the words of {len(training):,} pairs (built-in aligner)"))
    links = iter(align_corpus(training))
    with open(out, "w", encoding="utf-8") as handle:
        for position in range(corpus.pairs):
            pair_links = () if position in corpus.held_out else sorted(next(links))
            handle.write(format_pharaoh(pair_links) + "\n")


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
           guide_path: Path | None, builder: CacheBuilder, on_event: Callable[[TrainEvent], None],
           workers: int | None = None) -> EncodeCounts:
    """Pass 2: tokenize every training pair (not held out, at most `max_len` pieces a side) into
    `builder`, with its guide line; the guide file is read alongside and checked to the end.

    The file is cut into `workers` ranges (default: one per core for files of PARALLEL_BYTES or
    more, without guide alignments) encoded by as many processes; their parts are appended in
    file order, so the cache is the same whatever the number of workers."""
    meter = PassMeter("encoding", path, on_event)
    if workers is None:
        big = path.stat().st_size >= PARALLEL_BYTES and guide_path is None
        workers = min(os.cpu_count() or 1, MAX_WORKERS) if big else 1
    if workers > 1 and guide_path is None and len(corpus.points) > 1:
        counts = _encode_in_processes(path, corpus, tokenizers, max_len, builder, meter, workers)
    else:
        counts = EncodeCounts()
        for sources, targets, guides, point in _training_chunks(path, corpus, guide_path, FilePoint(), None):
            _store(*_tokenize(tokenizers, sources, targets), guides, max_len, builder, counts)
            meter.tick(counts.kept + counts.skipped, point.offset)
    meter.tick(counts.kept + counts.skipped, path.stat().st_size, force=True)
    counts.duplicates = count_duplicates(builder)
    return counts


PARALLEL_BYTES = 64 << 20   # smaller files are encoded in this process (starting workers costs ~1 s)
MAX_WORKERS = 8


def count_duplicates(builder: CacheBuilder, chunk: int = 1 << 20) -> int:
    """Repeated pairs among those written, from the hashes file, in bounded memory."""
    repeats = DuplicateCounter()
    builder.flush()
    for start in range(0, builder.pairs, chunk):
        repeats.add(np.fromfile(builder.folder / "hashes", dtype=np.uint64, count=chunk, offset=8 * start))
    return repeats.duplicates()


def _training_chunks(path: Path, corpus: CorpusScan, guide_path: Path | None, start: FilePoint,
                     stop: int | None) -> Iterator[tuple[list[str], list[str], list[str | None], FilePoint]]:
    """(sources, targets, guide lines, the point reached) of the pairs not held out, ENCODE_CHUNK at a time."""
    guides = guide_lines(guide_path, corpus.pairs)
    for block in read_blocks(path, start=start, stop=stop):
        first = block.end.pairs - len(block.sources)
        lines = [next(guides) for _ in block.sources]
        keep = [i for i in range(len(block.sources)) if first + i not in corpus.held_out]
        for begin in range(0, len(keep), ENCODE_CHUNK):
            part = keep[begin:begin + ENCODE_CHUNK]
            yield ([block.sources[i] for i in part], [block.targets[i] for i in part], [lines[i] for i in part],
                   block.end)
    if stop is None:
        next(guides)                   # reads the guide file to its end: checks its line count


def _tokenize(tokenizers: tuple[Tokenizer, Tokenizer], sources: list[str], targets: list[str],
              threads: int = -1) -> tuple[list, list]:
    return tokenizers[0].encode_batch(sources, threads), tokenizers[1].encode_batch(targets, threads)


def _store(src: list[list[int]], tgt: list[list[int]], guides: list[str | None], max_len: int,
           builder: CacheBuilder, counts: EncodeCounts) -> None:
    """Append a chunk's pairs of at most `max_len` pieces a side to the cache."""
    total = len(src)
    keep = [i for i in range(total) if len(src[i]) <= max_len and len(tgt[i]) <= max_len]
    if len(keep) < total:
        src, tgt, guides = [src[i] for i in keep], [tgt[i] for i in keep], [guides[i] for i in keep]
    builder.add(src, tgt, pair_hashes(src, tgt), [line or "" for line in guides] if builder.guides else None)
    counts.kept += len(keep)
    counts.skipped += total - len(keep)


def _split(points: list[FilePoint], parts: int) -> list[tuple[FilePoint, int]]:
    """At most `parts` ranges (start, stop byte) of about equal size, cut at block ends."""
    size = points[-1].offset
    cuts = sorted({min(points, key=lambda p: abs(p.offset - size * k / parts)) for k in range(1, parts)},
                  key=lambda p: p.offset)
    starts = [FilePoint()] + [cut for cut in cuts if 0 < cut.offset < size]
    return [(start, stop.offset) for start, stop in zip(starts, starts[1:] + [points[-1]])]


@dataclass
class _Range:
    """What one encoding process needs (picklable: it crosses to a spawned process)."""

    path: Path
    start: FilePoint
    stop: int
    held_out: dict[int, SentencePair]
    protos: tuple[bytes, bytes]
    joint: bool
    max_len: int
    root: Path
    vocab_size: int
    slot: int


_PROGRESS = None    # in an encoding process: the shared array of (bytes, pairs) per range


def _start_worker(progress) -> None:
    global _PROGRESS
    _PROGRESS = progress


def _encode_range(task: _Range) -> tuple[Path, int, int, dict[str, int]]:
    """In an encoding process: one range of the file into a part folder; (folder, kept, skipped, ends)."""
    src_tok = Tokenizer(task.protos[0])
    tokenizers = (src_tok, src_tok if task.joint else Tokenizer(task.protos[1]))
    builder = CacheBuilder(task.root, task.vocab_size, task.max_len, guides=False)
    counts = EncodeCounts()
    corpus = CorpusScan(0, task.held_out, [], [])
    for sources, targets, guides, point in _training_chunks(task.path, corpus, None, task.start, task.stop):
        _store(*_tokenize(tokenizers, sources, targets, threads=1), guides, task.max_len, builder, counts)
        if _PROGRESS is not None:
            _PROGRESS[2 * task.slot], _PROGRESS[2 * task.slot + 1] = point.offset - task.start.offset, counts.kept + counts.skipped
    builder.flush()
    return builder.folder, counts.kept, counts.skipped, dict(builder.ends)


def _encode_in_processes(path: Path, corpus: CorpusScan, tokenizers: tuple[Tokenizer, Tokenizer], max_len: int,
                         builder: CacheBuilder, meter: PassMeter, workers: int) -> EncodeCounts:
    """Encode the ranges of the file in `workers` spawned processes (the parent may hold torch's
    threads: spawn, never fork), showing their progress; append their parts in order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, wait

    ranges = _split(corpus.points, workers)
    context = multiprocessing.get_context("spawn")
    progress = context.Array("q", 2 * len(ranges), lock=False)
    tasks = [_Range(path, start, stop, {p: pair for p, pair in corpus.held_out.items() if start.pairs <= p},
                    (tokenizers[0].model_proto, tokenizers[1].model_proto), tokenizers[0] is tokenizers[1], max_len,
                    builder.root, max(len(tokenizers[0]), len(tokenizers[1])), slot)
             for slot, (start, stop) in enumerate(ranges)]
    with ProcessPoolExecutor(len(tasks), mp_context=context, initializer=_start_worker, initargs=(progress,)) as pool:
        futures = [pool.submit(_encode_range, task) for task in tasks]
        while wait(futures, timeout=0.5).not_done:
            meter.tick(sum(progress[1::2]), sum(progress[0::2]))
    failures = [future.exception() for future in futures if future.exception() is not None]
    parts = [future.result() for future in futures if future.exception() is None]
    counts = EncodeCounts()
    try:
        if failures:
            raise failures[0]
        for folder, kept, skipped, ends in parts:
            builder.append_part(folder, kept, ends)
            counts.kept += kept
            counts.skipped += skipped
    finally:
        for folder, *_ in parts:
            shutil.rmtree(folder, ignore_errors=True)
    return counts
