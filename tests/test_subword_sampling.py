"""--subword-sampling: each update sees its pairs in a segmentation drawn from the SentencePiece
unigram model (Kudo 2018), the same text in other pieces, in proportion to the segmentation's
probability to the alpha; seeded by update and pair, so runs, resumes and processes repeat it;
chosen by the recipe for small corpora, off when 0."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import replace

import pytest

from attncli.subword_sampling import LONGEST_WORD, Resampler, SegmentationSampler
from attncli.tokenizer import UNK_ID, Tokenizer
from attncli.training import train
from conftest import SLICE, TINY, assert_one_line_error


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    lines = SLICE.read_text(encoding="utf-8").splitlines()
    return Tokenizer.train((side for line in lines for side in line.split("\t")), 300)


SENTENCES = ["¿Por qué estáis bailando?", "Estoy harto de él.", "Tom no es un ladrón.", "Tengo un perro."]


def test_a_draw_keeps_the_text_and_seeds_draw_differently(tokenizer):
    sampler = SegmentationSampler(tokenizer, 0.5)
    for ids in tokenizer.encode_batch(SENTENCES):
        draws = [sampler.draw(ids, seed, max_len=100) for seed in range(10)]
        assert {tokenizer.decode(draw) for draw in draws} == {tokenizer.decode(ids)}
        assert len({tuple(draw) for draw in draws}) > 1
        assert draws == [sampler.draw(ids, seed, max_len=100) for seed in range(10)]   # a seed repeats its draw


def test_a_large_alpha_draws_sentencepieces_own_segmentation(tokenizer):
    sampler = SegmentationSampler(tokenizer, 1000.0)
    for ids in tokenizer.encode_batch(SENTENCES):
        assert sampler.draw(ids, 3, max_len=100) == ids


def test_segmentations_are_drawn_in_proportion_to_their_probability_to_the_alpha(tokenizer):
    """Every segmentation of one word, enumerated, against 4,000 draws: each frequency within four
    standard errors of its probability (rare segmentations included)."""
    alpha, word = 0.5, "perro"
    scores = {piece: score for piece, (_, score) in SegmentationSampler(tokenizer, alpha).pieces.items()}

    def segmentations(text: str) -> list[list[str]]:
        if not text:
            return [[]]
        return [[text[:end]] + rest for end in range(1, len(text) + 1) if text[:end] in scores
                for rest in segmentations(text[end:])]

    exact = {tuple(s): math.exp(alpha * sum(scores[p] for p in s)) for s in segmentations("\u2581" + word)}
    total = sum(exact.values())
    sampler = SegmentationSampler(tokenizer, alpha)
    rng = random.Random(0)
    drawn = Counter(tuple(tokenizer.pieces(sampler.draw_word("\u2581" + word, rng))) for _ in range(4000))
    assert set(drawn) <= set(exact) and len(exact) > 3
    for segmentation, mass in exact.items():
        p = mass / total
        assert abs(drawn[segmentation] / 4000 - p) <= 4 * math.sqrt(p * (1 - p) / 4000) + 1e-3, segmentation


def test_unknown_pieces_long_words_and_draws_over_max_len_keep_their_segmentation(tokenizer):
    sampler = SegmentationSampler(tokenizer, 0.1)
    with_unknown, plain, unspaced = tokenizer.encode_batch(["Tengo un 🐕.", "Estoy harto de él.",
                                                            "Estoyhartodeélytengounperromuygrande."])
    assert UNK_ID in with_unknown
    longer = [seed for seed in range(20) if len(sampler.draw(plain, seed, max_len=100)) > len(plain)]
    assert longer                                                          # alpha 0.1 splits words up
    for seed in range(5):
        assert sampler.draw(with_unknown, seed, max_len=100) == with_unknown
        assert sampler.draw(unspaced, seed, max_len=100) == unspaced           # one word of 37 letters
    for seed in longer:
        assert sampler.draw(plain, seed, max_len=len(plain)) == plain


def test_words_up_to_the_longest_are_drawn_and_longer_ones_kept(tokenizer):
    sampler = SegmentationSampler(tokenizer, 0.1)
    for letters, drawn in ((LONGEST_WORD, True), (LONGEST_WORD + 1, False)):
        ids = tokenizer.encode("a" * letters)
        draws = {tuple(sampler.draw(ids, seed, max_len=1000)) for seed in range(10)}
        assert (draws != {tuple(ids)}) == drawn


def test_a_pair_is_drawn_alike_in_any_batch():
    """Seeds come from the update and the pair's index, so processes sharing a batch draw what one would."""
    lines = SLICE.read_text(encoding="utf-8").splitlines()[:300]
    tok = Tokenizer.train((side for line in lines for side in line.split("\t")), 300)
    resampler = Resampler(tok, tok, 0.5, 100)
    src = tok.encode_batch([line.split("\t")[0] for line in lines[:6]])
    tgt = tok.encode_batch([line.split("\t")[1] for line in lines[:6]])
    whole = resampler.pairs(range(6), src, tgt, update_seed=11)
    halves = [resampler.pairs(range(rank, 6, 2), src[rank::2], tgt[rank::2], update_seed=11) for rank in (0, 1)]
    for rank, (half_src, half_tgt) in enumerate(halves):
        assert whole[0][rank::2] == half_src and whole[1][rank::2] == half_tgt


def test_sampling_changes_training_repeats_with_the_seed_and_is_recorded(corpus_files, tmp_path):
    config = replace(TINY, epochs=1, dropout=0.0)
    plain = train(corpus_files[0], corpus_files[1], tmp_path / "plain", replace(config, subword_sampling=0.0))
    runs = [train(corpus_files[0], corpus_files[1], tmp_path / f"sampled{i}", replace(config, subword_sampling=0.5))
            for i in range(2)]
    assert runs[0].best_dev_loss == runs[1].best_dev_loss != plain.best_dev_loss
    card = json.loads((tmp_path / "sampled0" / "config.json").read_text(encoding="utf-8"))
    assert card["info"]["train_config"]["subword_sampling"] == 0.5


@pytest.mark.parametrize("alpha", ["-1", "1e308"])
def test_an_alpha_out_of_range_is_a_one_line_error(run_cli, corpus_files, tmp_path, alpha):
    result = run_cli(["train", corpus_files[0], "--out", tmp_path / "m", "--subword-sampling", alpha])
    assert_one_line_error(result, "--subword-sampling", "[0, 1000]")
