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

import dataclasses
import math
from dataclasses import dataclass
from numbers import Real

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


# -- the learning rate of a finished run, replayed from its history (`attncli inspect history`) --

# A history record keeps dev BLEU to 2 decimals and dev loss to 4: each may be this far from the
# value `judge` saw.
RECORD_ROUNDING = {"dev_bleu": 0.005, "dev_loss": 0.00005}
# The learning rate is replayed only for runs of this schedule. Their train_config has
# `attention_bias` (TrainConfig since b0236d4, 1 December 2026, four minutes before this schedule)
# and their records `precision`; earlier runs decayed the rate whenever dev BLEU did not rise.
SCHEDULE_MARKER = "attention_bias"


@dataclass(frozen=True)
class ReplayedRates:
    """Per history record: the learning rate of the update that follows it (None: not known, or
    no update follows an averaged-weights validation) and whether that validation decayed it."""

    after: list
    decayed: list
    note: str              # why some or all rates are not known ("" when every one is)


def replay_learning_rates(history: list[dict], train_config: dict | None) -> ReplayedRates:
    """The rates of a run, from its validation records and its train_config, exactly: a validation
    whose verdict could differ within the records' rounding ends the replay (note says where)."""
    unknown = ReplayedRates([None] * len(history), [False] * len(history), "")
    config = _replay_config(history, train_config)
    if isinstance(config, str):
        return dataclasses.replace(unknown, note=config)
    after, decayed, scale, best, lowest = [], [], 1.0, None, math.inf
    for index, record in enumerate(history):
        step, bleu, loss = record["step"], record["dev_bleu"], record["dev_loss"]
        if index and step == history[index - 1]["step"]:          # the averaged weights: no update follows
            after.append(None), decayed.append(False)
            continue
        verdicts = {judge(bleu + sign * RECORD_ROUNDING["dev_bleu"], loss - sign * RECORD_ROUNDING["dev_loss"],
                          -1.0 if best is None else best - sign * RECORD_ROUNDING["dev_bleu"], math.inf,
                          lowest + sign * RECORD_ROUNDING["dev_loss"], step, config).counts for sign in (1, -1)}
        if len(verdicts) > 1:
            note = (f"not known after update {step}: its dev BLEU {bleu:.2f} and loss {loss:.4f}, as the history "
                    "rounds them, do not tell whether the rate decayed there")
            return ReplayedRates(after + [None] * (len(history) - index), decayed + [False] * (len(history) - index), note)
        decays = verdicts.pop() and config.lr_decay < 1.0
        if decays:
            scale *= config.lr_decay                 # as TrainingRun.validate does
        after.append(scheduled_rate(config, step + 1, scale))
        decayed.append(decays)
        best, lowest = bleu if best is None else max(best, bleu), min(lowest, loss)
    return ReplayedRates(after, decayed, "")


def _replay_config(history: list[dict], train_config: dict | None) -> TrainConfig | str:
    """The settings the rates depend on, or why this run's rates cannot be replayed."""
    if not isinstance(train_config, dict) or SCHEDULE_MARKER not in train_config \
            or not all("precision" in record for record in history):
        return "not shown: this run predates the schedule that can be replayed"
    values = {key: train_config.get(key) for key in ("learning_rate", "warmup_steps", "lr_decay")}
    if not all(isinstance(value, Real) and not isinstance(value, bool) for value in values.values()):
        return "not known: train_config lacks learning_rate, warmup_steps or lr_decay"
    return TrainConfig(learning_rate=float(values["learning_rate"]), warmup_steps=int(values["warmup_steps"]),
                       lr_decay=float(values["lr_decay"]))
