"""The built-in word aligner (fast_align's model, both directions, grow-diag-final-and) and the
training runs its links guide (--aligner-guide, the recipe's choice below 30,000 pairs)."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from attncli.word_aligner import align_corpus, grow_diag_final_and, word_key
from conftest import assert_one_line_error


def test_word_key_ignores_case_and_edge_punctuation():
    assert word_key("¿Dónde") == word_key("dónde") == "dónde"
    assert word_key("negro.") == "negro" and word_key("l'homme,") == "l'homme"
    assert word_key("...") == "..." and word_key("?") == "?"


def toy_translation(pairs: int, seed: int = 0) -> tuple[list[tuple[str, str]], list[set[tuple[int, int]]]]:
    """Word-by-word translations (sK -> tK) with local reordering (adjacent words swapped) and an
    untranslated target word now and then ("the"), with their true links (source i, target j)."""
    rng = random.Random(seed)
    corpus, truth = [], []
    for _ in range(pairs):
        words = [rng.randrange(30) for _ in range(rng.randint(3, 8))]
        order = list(range(len(words)))
        for k in range(0, len(order) - 1, 2):
            if rng.random() < 0.3:
                order[k], order[k + 1] = order[k + 1], order[k]
        target, links = [], set()
        for i in order:
            if rng.random() < 0.15:
                target.append("the")
            links.add((i, len(target)))
            target.append(f"t{words[i]}")
        corpus.append((" ".join(f"s{w}" for w in words), " ".join(target)))
        truth.append(links)
    return corpus, truth


def test_the_aligner_finds_word_by_word_links_through_reordering():
    corpus, truth = toy_translation(500)
    found = align_corpus(corpus)
    right = sum(len(links & gold) for links, gold in zip(found, truth))
    assert right / sum(map(len, found)) > 0.95          # precision
    assert right / sum(map(len, truth)) > 0.95          # recall
    assert all(i < len(s.split()) and j < len(t.split()) for links, (s, t) in zip(found, corpus) for i, j in links)


def test_empty_sides_and_an_empty_corpus_get_no_links():
    assert align_corpus([]) == []
    assert align_corpus([("a b", ""), ("", "x y"), ("a", "x")]) == [set(), set(), {(0, 0)}]


def test_grow_diag_final_and_grows_from_the_intersection():
    forward = {(0, 0), (1, 1), (2, 1)}          # one source word per target word
    reverse = {(0, 0), (1, 1), (2, 2)}          # one target word per source word
    assert grow_diag_final_and(forward, reverse, 3, 3) == {(0, 0), (1, 1), (2, 1), (2, 2)}
    assert grow_diag_final_and({(0, 1)}, {(1, 0)}, 2, 2) == {(0, 1), (1, 0)}     # final-and: both unaligned


def cache_meta(folder: Path) -> list[dict]:
    return [json.loads(meta.read_text()) for meta in folder.glob("*/meta.json")]


@pytest.mark.parametrize("option, source, chosen", [([], "aligner 1", True), (["--no-aligner-guide"], None, False)])
def test_small_corpora_train_guided_by_the_aligner(run_cli, tmp_path, corpus_files, monkeypatch, option, source, chosen):
    monkeypatch.setenv("ATTNCLI_CACHE_DIR", str(tmp_path / "cache"))
    result = run_cli(["train", corpus_files[0], "--dev", corpus_files[1], "--out", tmp_path / "m", "--epochs", "1",
                      "--vocab-size", "300", "--embed-size", "32", "--hidden-size", "32", "--threads", "1", *option])
    assert result.exit_code in (0, None), result.stderr
    assert ("attention guided by the built-in aligner" in result.stderr) is chosen
    assert [meta["guide_source"] for meta in cache_meta(tmp_path / "cache")] == [source]
    stored = json.loads((tmp_path / "m" / "config.json").read_text())["info"]["train_config"]
    assert stored["aligner_guide"] is chosen


def test_given_links_and_the_aligner_guide_together_are_an_error(run_cli, tmp_path, corpus_files):
    links = tmp_path / "links.align"
    links.write_text("0-0\n" * 360)
    result = run_cli(["train", corpus_files[0], "--out", tmp_path / "m", "--guide-alignments", links, "--aligner-guide"])
    assert_one_line_error(result, "--guide-alignments or --aligner-guide", code=1)
    assert not (tmp_path / "m").exists()


def test_a_corpus_cached_without_links_gets_a_cache_with_them(tmp_path, corpus_files):
    """The same corpus and options with and without the aligner's links are two caches: a run
    that wants links never reads the twin that has none (nor the other way round)."""
    from attncli.config import TrainConfig
    from attncli.training_data import prepare_data

    config = TrainConfig(vocab_size=300, embed_size=32, hidden_size=32)
    unguided = prepare_data(corpus_files[0], corpus_files[1], None, replace(config, aligner_guide=False), None,
                            cache_dir=tmp_path)
    guided = prepare_data(corpus_files[0], corpus_files[1], None, config, None, cache_dir=tmp_path)
    again = prepare_data(corpus_files[0], corpus_files[1], None, replace(config, aligner_guide=False), None,
                         cache_dir=tmp_path)
    assert unguided.train.guide_text is None and again.train.guide_text is None
    assert guided.train.guide_text is not None and guided.train.guide(0)
    assert sorted(str(meta["guide_source"]) for meta in cache_meta(tmp_path)) == ["None", "aligner 1"]


def test_a_corpus_too_large_for_the_aligner_is_one_line(run_cli, tmp_path, corpus_files, monkeypatch):
    monkeypatch.setattr("attncli.word_aligner.MAX_PAIRS", 100)
    monkeypatch.setenv("ATTNCLI_CACHE_DIR", str(tmp_path / "cache"))
    result = run_cli(["train", corpus_files[0], "--out", tmp_path / "m", "--aligner-guide", "--vocab-size", "300"])
    assert_one_line_error(result, "--aligner-guide", "100", "--guide-alignments", code=1)
    assert not (tmp_path / "m").exists() and not list((tmp_path / "cache").glob("*/meta.json"))


def test_a_corpus_too_large_for_the_aligner_trains_unguided_when_nobody_asked_for_it(run_cli, tmp_path, corpus_files,
                                                                                      monkeypatch):
    monkeypatch.setattr("attncli.word_aligner.MAX_PAIRS", 100)
    monkeypatch.setenv("ATTNCLI_CACHE_DIR", str(tmp_path / "cache"))
    result = run_cli(["train", corpus_files[0], "--dev", corpus_files[1], "--out", tmp_path / "m", "--epochs", "1",
                      "--vocab-size", "300", "--embed-size", "32", "--hidden-size", "32", "--threads", "1"])
    assert result.exit_code in (0, None), result.stderr
    assert "no aligner guide (it aligns at most 100 pairs)" in result.stderr
    assert (tmp_path / "m" / "model.safetensors").exists()
