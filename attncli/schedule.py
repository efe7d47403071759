"""When to validate, what counts as progress, and what a validation does to the learning rate.

A schedule that cannot starve a small corpus (issue: 2,500 pairs stopped after 88 updates, the
learning rate halved to 4.7e-07 during warm-up, while dev loss was still falling):
- validate once per epoch, or every MIN_VALID_INTERVAL updates when epochs are shorter than that
  (`--valid-every N` overrides), so validations are far enough apart to mean something;
- progress is a higher dev BLEU *or* a dev loss at least LOSS_PROGRESS (relative) below the lowest
  so far: while BLEU is still 0, a falling loss is progress. (On the shipped es-en run the one
  validation where BLEU fell, epoch 14, had its loss 0.9% lower: still no progress, so the
  learning rate halves there as it did.)
- no learning-rate decay and no patience count before `settle_updates` (the warm-up, and at least
  SETTLE_UPDATES updates): early validations only record and save.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import TrainConfig

MIN_VALID_INTERVAL = 100     # updates between validations at least, when validating per epoch
SETTLE_UPDATES = 1000        # no decay or early stop before this many updates (or the warm-up)
LOSS_PROGRESS = 0.02         # a dev loss this much (relative) below the lowest so far is progress


def validation_due(step: int, steps_per_epoch: int, end_of_epoch: bool, config: TrainConfig) -> bool:
    """Whether update `step` is followed by a validation."""
    if step <= 0:
        return False
    if config.valid_every:
        return step % config.valid_every == 0
    if steps_per_epoch >= MIN_VALID_INTERVAL:
        return end_of_epoch
    return step % MIN_VALID_INTERVAL == 0


def settle_updates(config: TrainConfig) -> int:
    return max(config.warmup_steps, SETTLE_UPDATES)


@dataclass(frozen=True)
class Verdict:
    """What one validation means for the run."""

    best: bool             # the best model so far (BLEU, then loss): save it
    progress: bool         # BLEU rose or the loss fell enough: patience starts again
    counts: bool           # a validation without progress that counts (after settling): decay, patience
    note: str              # why the learning rate did or did not change, for the progress line


def judge(bleu: float, loss: float, best_bleu: float, best_loss: float, lowest_loss: float,
          step: int, config: TrainConfig) -> Verdict:
    """The verdict on a validation with dev `bleu` and `loss` after update `step`."""
    best = (bleu, -loss) > (best_bleu, -best_loss)
    progress = bleu > best_bleu or loss < lowest_loss * (1.0 - LOSS_PROGRESS)
    if progress:
        return Verdict(best, True, False, "")
    if step < settle_updates(config):
        return Verdict(best, False, False, f"no progress; lr kept until update {settle_updates(config)}")
    if config.lr_decay < 1.0:
        return Verdict(best, False, True, f"no progress: lr x{config.lr_decay:g}")
    return Verdict(best, False, True, "no progress")


def scheduled_rate(config: TrainConfig, update: int, lr_scale: float) -> float:
    """The learning rate of update number `update` (1-based): linear warm-up, times the decay so far."""
    warmup = min(1.0, update / config.warmup_steps) if config.warmup_steps else 1.0
    return config.learning_rate * warmup * lr_scale
