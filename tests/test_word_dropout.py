"""--word-dropout: training pieces replaced by <unk> at the given rate; off by default, and a run
without it draws no extra random numbers (so earlier runs and resumes stay as they were)."""

from __future__ import annotations

import json
from dataclasses import replace

import torch

from attncli.loss import drop_words
from attncli.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from attncli.training import train
from conftest import TINY, assert_one_line_error


def test_drop_words_replaces_real_pieces_at_the_rate_and_keeps_the_markers():
    torch.manual_seed(0)
    ids = torch.randint(4, 1000, (200, 50))
    ids[:, 0], ids[:, 40], ids[:, 41:] = BOS_ID, EOS_ID, PAD_ID
    dropped = drop_words(ids, 0.25)
    changed = dropped != ids
    assert bool((dropped[changed] == UNK_ID).all())
    assert not bool(changed[:, 0].any()) and not bool(changed[:, 40:].any())    # BOS, EOS, padding kept
    assert abs(float(changed[:, 1:40].float().mean()) - 0.25) < 0.01


def test_rate_zero_changes_nothing_and_draws_no_random_numbers():
    ids = torch.randint(4, 1000, (3, 7))
    state = torch.get_rng_state()
    assert drop_words(ids, 0.0) is ids
    assert torch.equal(torch.get_rng_state(), state)


def test_word_dropout_changes_training_and_is_recorded(corpus_files, tmp_path):
    config = replace(TINY, epochs=1, dropout=0.0)
    plain = train(corpus_files[0], corpus_files[1], tmp_path / "plain", config)
    dropped = train(corpus_files[0], corpus_files[1], tmp_path / "dropped", replace(config, word_dropout=0.3))
    assert plain.best_dev_loss != dropped.best_dev_loss
    card = json.loads((tmp_path / "dropped" / "config.json").read_text(encoding="utf-8"))
    assert card["info"]["train_config"]["word_dropout"] == 0.3


def test_a_rate_out_of_range_is_a_one_line_error(run_cli, corpus_files, tmp_path):
    result = run_cli(["train", corpus_files[0], "--out", tmp_path / "m", "--word-dropout", "1.5"])
    assert_one_line_error(result, "--word-dropout", "[0, 1)")
