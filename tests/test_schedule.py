"""The validation schedule: when to validate, what counts as progress, when the learning rate decays."""

from __future__ import annotations

import math

import pytest

from attncli.config import TrainConfig
from attncli.schedule import LOSS_PROGRESS, MIN_VALID_INTERVAL, SETTLE_UPDATES, judge, validation_due

CONFIG = TrainConfig(warmup_steps=400)          # the shipped recipe: warm-up 400 < SETTLE_UPDATES


@pytest.mark.parametrize("step, steps_per_epoch, end_of_epoch, valid_every, due", [
    (305, 305, True, 0, True),                                 # long epochs: at each epoch's end
    (300, 305, False, 0, False),
    (8, 8, True, 0, False),                                    # short epochs: not after 8 updates ...
    (MIN_VALID_INTERVAL, 8, False, 0, True),                   # ... but every MIN_VALID_INTERVAL
    (50, 8, True, 25, True), (51, 8, False, 25, False),        # --valid-every wins
    (0, 8, True, 0, False),
])
def test_validation_due(step, steps_per_epoch, end_of_epoch, valid_every, due):
    config = TrainConfig(valid_every=valid_every)
    assert validation_due(step, steps_per_epoch, end_of_epoch, config) is due


def test_a_falling_loss_is_progress_while_bleu_is_zero():
    verdict = judge(bleu=0.0, loss=3.0, best_bleu=0.0, best_loss=3.5, lowest_loss=3.5, step=5000, config=CONFIG)
    assert verdict.progress and verdict.best and not verdict.counts


def test_a_loss_barely_lower_is_no_progress():
    """The shipped es-en run at epoch 14: BLEU 43.74 -> 43.43, loss 1.309 -> 1.2973 (0.9% lower)."""
    verdict = judge(bleu=43.43, loss=1.2973, best_bleu=43.74, best_loss=1.309, lowest_loss=1.309, step=4270, config=CONFIG)
    assert not verdict.progress and verdict.counts and not verdict.best
    assert "lr x0.5" in verdict.note
    assert 1.2973 > 1.309 * (1 - LOSS_PROGRESS)


def test_no_decay_or_patience_before_settling():
    verdict = judge(bleu=0.0, loss=3.6, best_bleu=0.0, best_loss=3.5, lowest_loss=3.5, step=SETTLE_UPDATES - 1, config=CONFIG)
    assert not verdict.progress and not verdict.counts
    assert str(SETTLE_UPDATES) in verdict.note
    long_warmup = TrainConfig(warmup_steps=SETTLE_UPDATES * 2)
    assert not judge(0.0, 3.6, 0.0, 3.5, 3.5, SETTLE_UPDATES + 1, long_warmup).counts


def test_higher_bleu_is_progress_and_best():
    verdict = judge(bleu=10.0, loss=2.0, best_bleu=9.0, best_loss=1.9, lowest_loss=1.9, step=5000, config=CONFIG)
    assert verdict.progress and verdict.best


def test_the_first_validation_is_the_best_so_far():
    verdict = judge(bleu=0.0, loss=4.0, best_bleu=-1.0, best_loss=math.inf, lowest_loss=math.inf, step=100, config=CONFIG)
    assert verdict.best and verdict.progress
