"""The encoded corpus on disk: training pairs as piece ids in flat binary arrays that training reads
pair by pair (pread), so memory does not grow with the corpus; kept for the next run on the same data.

A cache folder holds (this module is the one owner of the layout):

    meta.json              what the folder was built from, its counts, and each file's size and
                           CRC-32; written last, so a folder without a valid one is not a cache
    src.spm, tgt.spm       the SentencePiece models the ids come from
    dev.tsv                the dev pairs held out of the corpus (when no --dev was given)
    src.ids, tgt.ids       piece ids of every kept pair, concatenated (uint16; uint32 for more
                           than 65,536 pieces)
    src.offsets, ...       int64, pairs + 1 each: pair i is ids[offsets[i]:offsets[i + 1]]
    src.lengths, ...       pieces per pair (uint16; uint32 above 65,535 --max-len), read into memory
    hashes                 uint64 per pair (pair_hashes): finds dev pairs that are training pairs
    guides.text, guides.offsets   each pair's Pharaoh line (with --guide-alignments, or the
                           built-in aligner's: meta.json's "guide_source" says which)

Where: --cache-dir, else $ATTNCLI_CACHE_DIR, else the user cache folder (platformdirs; on Linux
~/.cache/attncli/corpora). Reuse: a run takes a folder built from the same corpus file (absolute
path, size, modification time), seed, --max-len, guide file and dev choice (held out or --dev),
with the guide links the run needs (none, the file's or the built-in aligner's), whose
SentencePiece models are the ones the run needs (trained with the same --vocab-size, or
the recipe's, and --joint-vocab, or the very models of a resumed or fine-tuned run). Each use checks every file's size
and CRC-32: a damaged folder is removed and rebuilt, never read. A build writes into a temporary
folder that is renamed into place once complete, so a crash or a full disk leaves nothing a later
run would trust. The KEEP most recently used folders stay; older ones go when a new one is made.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .corpus import SentencePair
from .errors import CorpusError

CACHE_VERSION = 1
UNREADABLE = (OSError, ValueError, KeyError, TypeError, AttributeError)   # a meta.json that cannot be used
KEEP = 3                      # cache folders kept; the least recently used beyond this are removed
META = "meta.json"
BUILDING = ".building-"       # prefix of folders being written
CRC_BLOCK = 1 << 22
IN_MEMORY_BYTES = 256 << 20   # a cache this small is read into memory; larger ones pair by pair (pread)


def default_root() -> Path:
    """$ATTNCLI_CACHE_DIR, else attncli's `corpora` folder in the user cache folder."""
    if os.environ.get("ATTNCLI_CACHE_DIR"):
        return Path(os.environ["ATTNCLI_CACHE_DIR"])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("attncli")) / "corpora"


_ODD = np.uint64(0x9E3779B97F4A7C15)      # the polynomial's base (odd: every power is a distinct unit)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit (low bits sample well)."""
    values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def _side_hashes(ids: Sequence[Sequence[int]]) -> np.ndarray:
    """(pairs,) uint64: a polynomial hash of each id sequence (non-empty), with its length."""
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.uint64, count=int(lengths.sum()))
    starts = np.cumsum(lengths) - lengths
    powers = np.power(_ODD, (np.arange(len(flat)) - np.repeat(starts, lengths)).astype(np.uint64))
    return _mix(np.add.reduceat((flat + np.uint64(1)) * powers, starts) + lengths.astype(np.uint64))


def pair_hashes(src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]]) -> np.ndarray:
    """(pairs,) uint64 hash of each encoded pair, the same in every process and run; pairs that
    tokenize alike hash alike. Vectorised: no Python step per pair."""
    if not len(src):
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return _mix(_side_hashes(src) * np.uint64(3) + _side_hashes(tgt))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as handle:
        while block := handle.read(CRC_BLOCK):
            crc = zlib.crc32(block, crc)
    return crc


def cannot_write(root: Path, exc: OSError) -> CorpusError:
    if exc.errno == 28:        # ENOSPC
        return CorpusError(f"{root}: no space left on the device for the encoded corpus "
                           "(free some space, or choose another folder with --cache-dir).")
    return CorpusError(f"{root}: cannot write the encoded corpus there ({exc.strerror or exc}; "
                       "--cache-dir chooses another folder).")


class CacheBuilder:
    """Writes one cache folder: pairs appended chunk by chunk to the array files, then `commit`
    renames the complete folder into place. Any write error removes the partial folder."""

    def __init__(self, root: Path, vocab_size: int, max_len: int, guides: bool) -> None:
        self.root = root
        self.token_dtype = np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)
        self.length_dtype = np.dtype(np.uint16 if max_len < 1 << 16 else np.uint32)
        self.guides = guides
        try:
            root.mkdir(parents=True, exist_ok=True)
            self.folder = Path(tempfile.mkdtemp(prefix=f"{BUILDING}{os.getpid()}-", dir=root))
            names = ["src.ids", "tgt.ids", "src.offsets", "tgt.offsets", "src.lengths", "tgt.lengths", "hashes"]
            names += ["guides.text", "guides.offsets"] if guides else []
            self.files = {name: open(self.folder / name, "wb") for name in names}
        except OSError as exc:
            self.abort()
            raise cannot_write(root, exc) from None
        self.crcs = dict.fromkeys(self.files, 0)
        self.ends = {"src": 0, "tgt": 0, "guides": 0}     # ids (bytes for guides) written so far
        self.pairs = 0
        for name in ("src.offsets", "tgt.offsets") + (("guides.offsets",) if guides else ()):
            self._write(name, np.zeros(1, dtype=np.int64))

    def _write(self, name: str, array: np.ndarray) -> None:
        data = array.tobytes()
        try:
            self.files[name].write(data)
        except OSError as exc:
            self.abort()
            raise cannot_write(self.root, exc) from None
        self.crcs[name] = zlib.crc32(data, self.crcs[name])

    def _add_side(self, side: str, ids: Sequence[Sequence[int]]) -> None:
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        total = int(lengths.sum())
        self._write(f"{side}.ids", np.fromiter(itertools.chain.from_iterable(ids), dtype=self.token_dtype, count=total))
        self._write(f"{side}.offsets", self.ends[side] + np.cumsum(lengths))
        self._write(f"{side}.lengths", lengths.astype(self.length_dtype))
        self.ends[side] += total

    def add(self, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]], hashes: np.ndarray,
            guides: Sequence[str] | None = None) -> None:
        """Append pairs: their piece ids, hashes and (with guides) Pharaoh lines."""
        self._add_side("src", src)
        self._add_side("tgt", tgt)
        self._write("hashes", hashes.astype(np.uint64))
        if self.guides:
            encoded = [line.encode() for line in guides or ()]
            sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
            self._write("guides.text", np.frombuffer(b"".join(encoded), dtype=np.uint8))
            self._write("guides.offsets", self.ends["guides"] + np.cumsum(sizes))
            self.ends["guides"] += int(sizes.sum())
        self.pairs += len(src)

    def flush(self) -> None:
        """Write out what the files buffer (so they can be read while building)."""
        try:
            for handle in self.files.values():
                handle.flush()
        except OSError as exc:
            self.abort()
            raise cannot_write(self.root, exc) from None

    def append_part(self, part: Path, pairs: int, ends: dict[str, int], block: int = 1 << 22) -> None:
        """Append the pairs another builder wrote into folder `part` (uncommitted, flushed): ids
        and lengths as they are, offsets moved by what this folder holds already."""
        for name in self.files:
            side = name.split(".")[0]
            kind = np.int64 if name.endswith(".offsets") else None
            with open(part / name, "rb") as source:
                if kind is not None:
                    source.seek(8)                         # the part's leading 0
                while data := source.read(block):
                    if kind is None:
                        self._write(name, np.frombuffer(data, dtype=np.uint8))
                    else:
                        self._write(name, np.frombuffer(data, dtype=kind) + self.ends[side])
        for side, added in ends.items():
            self.ends[side] += added
        self.pairs += pairs

    def commit(self, meta: dict[str, Any], src_spm: bytes, tgt_spm: bytes,
               held_out: Sequence[SentencePair] | None) -> tuple[Path, dict[str, Any]]:
        """Finish the files, write the models, the dev pairs and meta.json; rename into place. The
        folder and its meta; if another process committed the same cache meanwhile (the same
        corpus and options, read at the same time), that one, and this build is dropped: a
        cache in use is never replaced by its twin."""
        try:
            for handle in self.files.values():
                handle.close()
            (self.folder / "src.spm").write_bytes(src_spm)
            (self.folder / "tgt.spm").write_bytes(tgt_spm)
            if held_out is not None:
                (self.folder / "dev.tsv").write_text("".join(f"{p.source}\t{p.target}\n" for p in held_out), encoding="utf-8")
            files = {name: {"size": (self.folder / name).stat().st_size, "crc32": self.crcs.get(name)}
                     for name in sorted(os.listdir(self.folder))}
            for name, entry in files.items():
                if entry["crc32"] is None:
                    entry["crc32"] = file_crc(self.folder / name)
            meta = dict(meta, version=CACHE_VERSION, pairs=self.pairs, token_dtype=self.token_dtype.name,
                        length_dtype=self.length_dtype.name, spm_sha256=[sha256(src_spm), sha256(tgt_spm)], files=files)
            (self.folder / META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
            final = self.root / folder_name(meta)
            twin = _sound_twin(final, meta)
            if twin is not None:
                self.abort()
                return final, twin
            _replace_folder(self.folder, final)
        except OSError as exc:
            self.abort()
            raise cannot_write(self.root, exc) from None
        remove_old(self.root, keep=final)
        return final, meta

    def abort(self) -> None:
        for handle in getattr(self, "files", {}).values():
            handle.close()
        if hasattr(self, "folder"):
            shutil.rmtree(self.folder, ignore_errors=True)


IDENTITY = ("version", "data", "spm_sha256", "guide_source")    # meta fields that make two caches the same


def folder_name(meta: dict[str, Any]) -> str:
    """A cache's folder name, from what it was built from: the same inputs, the same folder (a
    second build of it is dropped: CacheBuilder.commit). Caches without guide links from the
    built-in aligner keep the names they had before it existed."""
    identity = [meta["data"], meta["spm_sha256"]] + ([meta["guide_source"]] if meta.get("guide_source") else [])
    return sha256(json.dumps(identity).encode())[:16]


def _sound_twin(final: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
    """The meta of a sound cache at `final` built from the same inputs as `meta`, or None."""
    try:
        existing = json.loads((final / META).read_text(encoding="utf-8"))
        same = all(existing.get(key) == meta.get(key) for key in IDENTITY)
        return existing if same and damage(final, existing) is None else None
    except UNREADABLE:
        return None


def _replace_folder(built: Path, final: Path) -> None:
    """Rename `built` to `final`, replacing an older folder of that name (a run still reading it
    keeps its open files)."""
    if final.exists():
        old = final.with_name(f"{BUILDING}old-{os.getpid()}-{final.name}")
        os.replace(final, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(built, final)


def remove_old(root: Path, keep: Path) -> None:
    """Remove cache folders beyond the KEEP most recently used (meta.json's time is the last use),
    and folders left half-written by processes that are gone."""
    caches = []
    for folder in root.iterdir():
        if folder.name.startswith(BUILDING):
            pid = folder.name[len(BUILDING):].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)
        elif (folder / META).is_file() and folder != keep:
            caches.append(((folder / META).stat().st_mtime, folder))
    for _, folder in sorted(caches, reverse=True)[KEEP - 1:]:
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def damage(folder: Path, meta: dict[str, Any]) -> str | None:
    """What is wrong with a cache folder's files (missing, truncated, changed), or None."""
    for name, entry in meta["files"].items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != entry["size"]:
            return f"{name} has {path.stat().st_size:,} bytes, not {entry['size']:,}"
        if file_crc(path) != entry["crc32"]:
            return f"{name} has changed (CRC-32)"
    return None


def find(root: Path, data: dict[str, Any], accept: Callable[[dict[str, Any]], bool],
         warn: Callable[[str], None]) -> tuple[Path, dict[str, Any]] | None:
    """A sound cache folder built from `data` whose meta `accept` takes; a damaged one is
    removed (and `warn` told), so the caller rebuilds it."""
    if not root.is_dir():
        return None
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(BUILDING) or not (folder / META).is_file():
            continue
        try:
            meta = json.loads((folder / META).read_text(encoding="utf-8"))
            if meta.get("version") != CACHE_VERSION or meta.get("data") != data or not accept(meta):
                continue
            problem = damage(folder, meta)
        except UNREADABLE as exc:
            problem = f"{META} is unreadable ({exc})"
        if problem is None:
            os.utime(folder / META)                     # the last use, for remove_old
            return folder, meta
        warn(f"the encoded corpus in {folder} is damaged ({problem}); encoding the corpus again.")
        shutil.rmtree(folder, ignore_errors=True)
    return None


class ArrayFile:
    """One array file of a cache, read by position with pread: nothing is mapped, so reading
    pairs all over a large cache does not make them part of this process's memory (memory-mapped
    pages would count in its resident size until the kernel drops them)."""

    def __init__(self, path: Path, dtype: Any) -> None:
        self.dtype = np.dtype(dtype)
        self.fd = os.open(path, os.O_RDONLY)
        self.length = os.fstat(self.fd).st_size // self.dtype.itemsize

    def __len__(self) -> int:
        return self.length

    def read(self, start: int, count: int) -> np.ndarray:
        """(count,) elements from element `start`."""
        data = os.pread(self.fd, int(count) * self.dtype.itemsize, int(start) * self.dtype.itemsize)
        return np.frombuffer(data, dtype=self.dtype)

    def __del__(self) -> None:
        if hasattr(self, "fd"):
            os.close(self.fd)


class MemoryArray:
    """An array in memory with ArrayFile's `read` (tests compare the two paths)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = np.asarray(array)

    def __len__(self) -> int:
        return len(self.array)

    def read(self, start: int, count: int) -> np.ndarray:
        return self.array[start:start + count]


@dataclass
class EncodedPairs:
    """Training pairs as piece ids: lengths in memory, ids (and guide lines) read on demand from
    the cache's files, so memory does not grow with the corpus."""

    src_lengths: np.ndarray        # (pairs,) pieces of each source
    tgt_lengths: np.ndarray        # (pairs,) pieces of each target
    src_ids: ArrayFile | MemoryArray          # (all source pieces,) concatenated
    tgt_ids: ArrayFile | MemoryArray
    src_offsets: ArrayFile | MemoryArray      # (pairs + 1,) int64
    tgt_offsets: ArrayFile | MemoryArray
    hashes: ArrayFile | MemoryArray           # (pairs,) uint64, pair_hashes of each pair
    skipped: int = 0               # pairs left out for --max-len
    guide_text: ArrayFile | MemoryArray | None = None      # (bytes,) uint8: Pharaoh lines, concatenated
    guide_offsets: ArrayFile | MemoryArray | None = None   # (pairs + 1,) int64

    @classmethod
    def open(cls, folder: Path, meta: dict[str, Any]) -> "EncodedPairs":
        """The pairs of a cache folder; read into memory when its arrays take at most
        IN_MEMORY_BYTES (a batch then costs ~1.5 ms less to gather than with pread)."""
        guides = "guides.text" in meta["files"]
        pairs = cls(np.fromfile(folder / "src.lengths", dtype=meta["length_dtype"]),
                   np.fromfile(folder / "tgt.lengths", dtype=meta["length_dtype"]),
                   ArrayFile(folder / "src.ids", meta["token_dtype"]), ArrayFile(folder / "tgt.ids", meta["token_dtype"]),
                   ArrayFile(folder / "src.offsets", np.int64), ArrayFile(folder / "tgt.offsets", np.int64),
                   ArrayFile(folder / "hashes", np.uint64), meta["skipped"],
                   ArrayFile(folder / "guides.text", np.uint8) if guides else None,
                   ArrayFile(folder / "guides.offsets", np.int64) if guides else None)
        return pairs.in_memory() if sum(entry["size"] for entry in meta["files"].values()) <= IN_MEMORY_BYTES else pairs

    def in_memory(self) -> "EncodedPairs":
        """The same pairs with every array read into memory."""
        def load(part: Any) -> Any:
            return MemoryArray(part.read(0, len(part))) if isinstance(part, ArrayFile) else part

        return EncodedPairs(*(load(getattr(self, name)) for name in self.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.src_lengths)

    def src(self, index: int) -> list[int]:
        start, end = self.src_offsets.read(index, 2)
        return self.src_ids.read(start, end - start).tolist()

    def tgt(self, index: int) -> list[int]:
        start, end = self.tgt_offsets.read(index, 2)
        return self.tgt_ids.read(start, end - start).tolist()

    def guide(self, index: int) -> str | None:
        """Pair `index`'s Pharaoh line, or None without guide alignments."""
        if self.guide_text is None or self.guide_offsets is None:
            return None
        start, end = self.guide_offsets.read(index, 2)
        return self.guide_text.read(start, end - start).tobytes().decode()

    def count_shared(self, hashes: np.ndarray, chunk: int = 1 << 20) -> int:
        """How many of the pairs with `hashes` (pair_hashes) are also training pairs, reading
        the training hashes in chunks."""
        wanted = np.unique(hashes)
        found: list[np.ndarray] = []
        for start in range(0, len(self.hashes), chunk):
            block = self.hashes.read(start, chunk)
            found.append(block[np.isin(block, wanted)])
        return int(np.isin(hashes, np.concatenate(found) if found else wanted[:0]).sum())
