"""The encoded corpus on disk (corpus_cache.py, corpus_passes.py) and the epoch batches built from
its lengths (batch.py): what is written equals what the tokenizers give, training from the memory
map equals training from memory, a cache is reused only when sound and current, and a full disk
leaves nothing behind."""

from __future__ import annotations

import errno
import json
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, assert_one_line_error

from attncli import corpus_cache
from attncli.batch import bucketed_batches, epoch_batches, length_batches
from attncli.config import TrainConfig
from attncli.corpus import read_pairs
from attncli.corpus_cache import EncodedPairs, pair_hashes
from attncli.modelfile import load_model
from attncli.training import train
from attncli.training_data import prepare_data

QUICK = TrainConfig(**{**TINY.to_dict(), "epochs": 1, "watch": ()})


def greedy_reference(order, src, tgt, budget):
    """The token batching rule written as a plain loop over pairs (the former implementation)."""
    batches, current, widest = [], [], 0
    for index in order:
        width = max(widest, src[index], tgt[index]) + 1
        if current and (len(current) + 1) * width > budget:
            batches.append(current)
            current, width = [], max(src[index], tgt[index]) + 1
        current.append(index)
        widest = width - 1
    return batches + ([current] if current else [])


def test_length_batches_follow_the_greedy_rule():
    rng = np.random.default_rng(0)
    src, tgt = rng.integers(1, 60, 3000), rng.integers(1, 60, 3000)
    order = np.lexsort((tgt, src))
    for budget in (1, 50, 700, 4096):
        got = [batch.tolist() for batch in length_batches(order, src, tgt, budget)]
        assert got == greedy_reference(order.tolist(), src, tgt, budget)
    assert bucketed_batches(src.tolist(), tgt.tolist(), 700) == greedy_reference(order.tolist(), src, tgt, 700)


@pytest.mark.parametrize("workers", [2, 3])
def test_decoding_batches_for_workers_are_even_and_a_multiple_of_them(workers):
    """The plain cut's count rounded up to a multiple of `workers`, each batch within the budget,
    every sentence once in length order, and the cap as small as that count allows."""
    rng = np.random.default_rng(2)
    lengths = rng.integers(1, 60, 1001)
    order = np.lexsort((lengths, lengths))
    plain = bucketed_batches(lengths.tolist(), lengths.tolist(), 1600)
    batches = bucketed_batches(lengths.tolist(), lengths.tolist(), 1600, workers)
    assert len(batches) == -(-len(plain) // workers) * workers
    assert sum(batches, []) == order.tolist()
    costs = [len(batch) * (lengths[batch].max() + 1) for batch in batches]
    assert max(costs) <= 1600
    assert len(length_batches(order, lengths, lengths, int(max(costs)) - 1)) > len(batches)
    assert min(costs) > 0.5 * max(costs)                 # no batch of a sentence or two left for last


def test_epoch_batches_cover_every_pair_once_in_a_seeded_order():
    rng = np.random.default_rng(1)
    src, tgt = rng.integers(1, 40, 5000).astype(np.uint16), rng.integers(1, 40, 5000).astype(np.uint16)
    batches = epoch_batches(src, tgt, 600, seed=3, epoch=2, chunk=1000)
    assert sorted(np.concatenate(batches).tolist()) == list(range(5000))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * (max(src[batch].max(), tgt[batch].max()) + 1) <= 600
    again = epoch_batches(src, tgt, 600, seed=3, epoch=2, chunk=1000)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again)) and len(batches) == len(again)
    other = epoch_batches(src, tgt, 600, seed=3, epoch=3, chunk=1000)
    assert [b.tolist() for b in other] != [b.tolist() for b in batches]


def write_corpus(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_the_cache_holds_the_tokenizers_encoding(tmp_path, corpus_files):
    """Every pair not held out for dev and at most --max-len pieces long, in file order, as the
    tokenizers encode it, with its guide line; the held-out dev pairs are not training pairs."""
    lines = corpus_files[0].read_text(encoding="utf-8").splitlines()
    guides = tmp_path / "guides.txt"
    guides.write_text("".join(f"0-0 {i % 3}-1\n" for i in range(len(lines))), encoding="utf-8")
    config = TrainConfig(vocab_size=300, max_len=12, seed=5)
    data = prepare_data(corpus_files[0], None, guides, config, None, cache_dir=tmp_path / "cache")
    pairs = read_pairs(corpus_files[0])
    held_out = set(pair_hashes(data.dev.src, data.dev.tgt).tolist())
    assert len(data.dev_pairs) == 3            # 1% of 360 pairs, at least one
    assert train_hashes_differ(data)
    expected, expected_guides, skipped = [], [], 0
    for index, pair in enumerate(pairs):
        src, tgt = data.src_tok.encode_batch([pair.source])[0], data.tgt_tok.encode_batch([pair.target])[0]
        if int(pair_hashes([src], [tgt])[0]) in held_out:
            continue
        if max(len(src), len(tgt)) > 12:
            skipped += 1
            continue
        expected.append((src, tgt))
        expected_guides.append(f"0-0 {index % 3}-1")
    train = data.train
    assert skipped > 0 and train.skipped == skipped and len(train) == len(expected)
    assert [(train.src(i), train.tgt(i)) for i in range(len(train))] == expected
    assert [train.guide(i) for i in range(len(train))] == expected_guides
    assert train.src_lengths.tolist() == [len(s) for s, _ in expected]
    assert train.count_shared(pair_hashes(data.dev.src, data.dev.tgt)) == 0


def train_hashes_differ(data) -> bool:
    """Distinct encoded pairs get distinct hashes (no collision among these few hundred)."""
    train = data.train
    encoded = {(tuple(train.src(i)), tuple(train.tgt(i))) for i in range(len(train))}
    return len(set(train.hashes.read(0, len(train)).tolist())) == len(encoded)


def test_training_from_the_files_equals_training_from_memory(tmp_path, corpus_files, monkeypatch):
    """Pairs read one by one from the cache's files (pread, as for large corpora) train the same
    model as pairs held in memory (as for small ones)."""
    monkeypatch.setattr(corpus_cache, "IN_MEMORY_BYTES", 0)
    opened = []
    real_open = EncodedPairs.open.__func__

    def recording(cls, folder, meta):
        opened.append(real_open(cls, folder, meta))
        return opened[-1]

    monkeypatch.setattr(EncodedPairs, "open", classmethod(recording))
    train(corpus_files[0], corpus_files[1], tmp_path / "mapped", QUICK, cache_dir=tmp_path / "cache")
    assert isinstance(opened[-1].src_ids, corpus_cache.ArrayFile)
    monkeypatch.setattr(corpus_cache, "IN_MEMORY_BYTES", 1 << 30)
    train(corpus_files[0], corpus_files[1], tmp_path / "memory", QUICK, cache_dir=tmp_path / "other-cache")
    assert isinstance(opened[-1].src_ids, corpus_cache.MemoryArray)
    assert_same_weights(tmp_path / "mapped", tmp_path / "memory")


def assert_same_weights(first: Path, second: Path) -> None:
    a, b = load_model(first).model.state_dict(), load_model(second).model.state_dict()
    assert all(np.array_equal(a[name].numpy(), b[name].numpy()) for name in a)


def messages(events, kind="start"):
    return [event.message for event in events if event.kind == kind]


def test_a_second_run_reuses_the_cache(tmp_path, corpus_files):
    cache, events = tmp_path / "cache", []
    train(corpus_files[0], corpus_files[1], tmp_path / "first", QUICK, cache_dir=cache)
    train(corpus_files[0], corpus_files[1], tmp_path / "second", QUICK, on_event=events.append, cache_dir=cache)
    assert any(message.startswith("reusing the encoded corpus in") for message in messages(events))
    assert not any(message.startswith("training SentencePiece") for message in messages(events))
    assert_same_weights(tmp_path / "first", tmp_path / "second")
    assert len([folder for folder in cache.iterdir()]) == 1


def cache_folder(cache: Path) -> Path:
    (folder,) = [folder for folder in cache.iterdir() if (folder / corpus_cache.META).is_file()]
    return folder


@pytest.mark.parametrize("damage", ["truncate", "flip", "meta"])
def test_a_damaged_cache_is_rebuilt_not_read(tmp_path, corpus_files, damage):
    cache = tmp_path / "cache"
    train(corpus_files[0], corpus_files[1], tmp_path / "first", QUICK, cache_dir=cache)
    ids = cache_folder(cache) / "tgt.ids"
    data = bytearray(ids.read_bytes())
    if damage == "truncate":
        ids.write_bytes(data[:-10])
    elif damage == "flip":
        data[len(data) // 2] ^= 1
        ids.write_bytes(data)
    else:
        (cache_folder(cache) / corpus_cache.META).write_text("{not json", encoding="utf-8")
    events = []
    train(corpus_files[0], corpus_files[1], tmp_path / "second", QUICK, on_event=events.append, cache_dir=cache)
    if damage != "meta":
        assert any("is damaged" in message and "tgt.ids" in message for message in messages(events, "warning"))
    assert not any(message.startswith("reusing") for message in messages(events))
    assert_same_weights(tmp_path / "first", tmp_path / "second")


def test_a_changed_corpus_is_encoded_again(tmp_path, corpus_files):
    corpus = write_corpus(tmp_path / "train.tsv", corpus_files[0].read_text(encoding="utf-8").splitlines())
    cache = tmp_path / "cache"
    train(corpus, corpus_files[1], tmp_path / "first", QUICK, cache_dir=cache)
    with open(corpus, "a", encoding="utf-8") as handle:
        handle.write("Hola.\tHello.\n")
    events = []
    train(corpus, corpus_files[1], tmp_path / "second", QUICK, on_event=events.append, cache_dir=cache)
    assert not any(message.startswith("reusing") for message in messages(events))
    assert len(load_model(tmp_path / "second").model_info.train_config) > 0


def test_old_caches_are_removed_beyond_keep(tmp_path, corpus_files):
    cache = tmp_path / "cache"
    for seed in range(corpus_cache.KEEP + 2):
        prepare_data(corpus_files[0], corpus_files[1], None, TrainConfig(vocab_size=300, seed=seed), None, cache_dir=cache)
    folders = [folder for folder in cache.iterdir()]
    assert len(folders) == corpus_cache.KEEP
    seeds = {json.loads((folder / corpus_cache.META).read_text())["data"]["seed"] for folder in folders}
    assert seeds == set(range(2, corpus_cache.KEEP + 2))     # the most recently used


def test_a_full_disk_is_one_line_and_leaves_no_cache(run_cli, tmp_path, corpus_files, monkeypatch):
    written = {"bytes": 0}
    real_write = corpus_cache.CacheBuilder._write

    def filling(self, name, array):
        written["bytes"] += array.nbytes
        if written["bytes"] > 2000 and not isinstance(self.files[name], _FullFile):
            self.files[name].close()
            self.files[name] = _FullFile()      # the disk is full from here on
        real_write(self, name, array)

    monkeypatch.setattr(corpus_cache.CacheBuilder, "_write", filling)
    cache = tmp_path / "cache"
    result = run_cli(["train", corpus_files[0], "--dev", corpus_files[1], "--out", tmp_path / "m", "--epochs", "1",
                      "--vocab-size", "300", "--embed-size", "32", "--hidden-size", "32", "--cache-dir", cache])
    assert_one_line_error(result, str(cache), "no space left", "--cache-dir")
    assert list(cache.iterdir()) == []
    assert not (tmp_path / "m" / "config.json").exists()


class _FullFile:
    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self):
        pass


def test_held_out_dev_pairs_are_a_seeded_sample(tmp_path):
    lines = [f"frase {i}\tphrase {i}" for i in range(1000)]
    random.Random(0).shuffle(lines)
    corpus = write_corpus(tmp_path / "train.tsv", lines)
    first = prepare_data(corpus, None, None, TrainConfig(vocab_size=60, seed=1), None, cache_dir=tmp_path / "a")
    again = prepare_data(corpus, None, None, TrainConfig(vocab_size=60, seed=1), None, cache_dir=tmp_path / "b")
    other = prepare_data(corpus, None, None, TrainConfig(vocab_size=60, seed=2), None, cache_dir=tmp_path / "c")
    assert len(first.dev_pairs) == 10 and first.dev_pairs == again.dev_pairs != other.dev_pairs
    assert len(first.train) == 990 and first.train.count_shared(pair_hashes(first.dev.src, first.dev.tgt)) == 0


def test_blocks_read_what_lines_read_and_errors_keep_their_line(tmp_path):
    """read_blocks decodes whole blocks at once; with tiny blocks (lines cut across reads, a BOM,
    CRLF, blank lines) it gives the pairs of the line-by-line reader, and errors name their line."""
    from attncli.corpus import decode_line, parse_pair, read_blocks
    from attncli.errors import CorpusError

    lines = ["\ufeffuno\tone", "dos \t two\r", "", "  ", "tres\tthree"] + [f"n{i}\tm{i}" for i in range(40)]
    path = tmp_path / "c.tsv"
    path.write_bytes("\n".join(lines).encode())
    expected = [parse_pair(decode_line(line.encode(), path, n), path, n)
                for n, line in enumerate(lines, start=1) if line.strip()]
    for size in (1, 7, 64, 1 << 20):
        got = [(s, t) for block in read_blocks(path, size) for s, t in zip(block.sources, block.targets)]
        assert got == [(p.source, p.target) for p in expected]
    path.write_bytes("\n".join(lines[:20] + ["sin tabulador"] + lines[20:]).encode())
    for size in (5, 1 << 20):
        with pytest.raises(CorpusError, match=r"c\.tsv:21: expected source<TAB>target, found no tab"):
            list(read_blocks(path, size))


def test_the_reservoir_samples_uniformly():
    """Algorithm L skips pairs without looking at them; every position must still be equally likely,
    whatever the blocks are."""
    from collections import Counter

    from attncli.corpus_passes import Reservoir

    hits: Counter[int] = Counter()
    texts = [str(i) for i in range(40)]
    for trial in range(4000):
        reservoir = Reservoir(4, f"trial {trial}")
        for start, end in ((0, 3), (3, 4), (4, 25), (25, 40)):
            reservoir.offer_block(start, texts[start:end], texts[start:end])
        assert sorted(position for position, _ in reservoir.items) == sorted({p for p, _ in reservoir.items})
        assert all(pair.source == str(position) for position, pair in reservoir.items) and len(reservoir.items) == 4
        hits.update(position for position, _ in reservoir.items)
    assert 330 <= min(hits[i] for i in range(40)) and max(hits[i] for i in range(40)) <= 470   # 400 each, sd ~19


def test_encoding_processes_write_what_one_process_writes(tmp_path, corpus_files, monkeypatch):
    """Pass 2 cut into ranges for spawned processes gives the very files one process gives."""
    from attncli import corpus as corpus_module
    from attncli import corpus_passes
    from attncli.corpus_cache import CacheBuilder
    from attncli.tokenizer import Tokenizer

    monkeypatch.setattr(corpus_module, "BLOCK_BYTES", 1500)          # several blocks: places to cut
    path = corpus_files[0]
    scan = corpus_passes.scan(path, 1, True, 1000, lambda event: None)
    assert len(scan.points) > 4 and len(scan.held_out) == 3
    tokenizer = Tokenizer.train((text for pair in scan.sample for text in (pair.source, pair.target)), 300)
    folders = []
    for workers in (1, 3):
        builder = CacheBuilder(tmp_path / f"w{workers}", len(tokenizer), 12, guides=False)
        counts = corpus_passes.encode(path, scan, (tokenizer, tokenizer), 12, None, builder, lambda event: None, workers)
        folders.append(builder.commit({"data": {}, "skipped": counts.skipped}, tokenizer.model_proto, tokenizer.model_proto, None)[0])
        assert counts.skipped > 0
    one, many = (json.loads((folder / corpus_cache.META).read_text()) for folder in folders)
    assert one["files"] == many["files"] and one["pairs"] == many["pairs"] > 100
    assert [p.name for p in (tmp_path / "w3").iterdir()] == [folders[1].name]      # the parts are gone


def test_a_cache_committed_meanwhile_by_another_run_is_used_not_replaced(corpus_files, tmp_path):
    """Two runs on the same corpus at once build the same cache; the second to finish drops its
    copy and uses the first's, which a run may be reading (replacing it made that run fail:
    two `data_sizes.py` variants in parallel)."""
    from attncli import corpus_passes
    from attncli.corpus_cache import META, CacheBuilder
    from attncli.tokenizer import Tokenizer

    scan = corpus_passes.scan(corpus_files[0], 1, False, 1000, lambda event: None)
    tokenizer = Tokenizer.train((text for pair in scan.sample for text in (pair.source, pair.target)), 300)
    builders = [CacheBuilder(tmp_path, len(tokenizer), 12, guides=False) for _ in range(2)]
    for builder in builders:
        corpus_passes.encode(corpus_files[0], scan, (tokenizer, tokenizer), 12, None, builder, lambda event: None)
    first, first_meta = builders[0].commit({"data": {}}, tokenizer.model_proto, tokenizer.model_proto, None)
    meta_file = (first / META).stat()
    second, second_meta = builders[1].commit({"data": {}}, tokenizer.model_proto, tokenizer.model_proto, None)
    assert second == first and second_meta == first_meta
    assert (first / META).stat().st_ino == meta_file.st_ino           # the first cache was not replaced
    assert [p.name for p in tmp_path.iterdir()] == [first.name]      # the second build is gone
