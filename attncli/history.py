"""A model's training history, as `attncli inspect history` shows it.

Read from config.json only (`info.history`, `info.watch`, `info.train_config`: no weights, no
torch): the validation records with the learning rate each recorded, and for the
sentences watched during training (`train --watch`) the word-level attention recorded at each
validation, rebuilt as Alignments so that history_view.py draws them as `inspect alignment` does, with
links and AER as `inspect alignment --format pharaoh` and `inspect aer` give them with the plain
link settings (each target word's most attended source word).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .alignment import Alignment, AlignmentScore, PharaohLinks, check_gold_links, parse_pharaoh, score_alignments
from .errors import CorpusError, ModelFileError, OptionError
from .model_info import WHERE, WatchedPair

RECORD_NUMBERS = ("step", "epoch", "elapsed_s", "dev_loss", "dev_bleu", "dev_chrf")


@dataclass(frozen=True)
class RecordedRates:
    """Per history record: the learning rate of the update that follows it (None: not recorded,
    or no update follows an averaged-weights validation) and whether that validation decayed it."""

    after: list
    decayed: list
    note: str              # why some rates are not known ("" when every record has one)


def recorded_rates(records: list[dict[str, Any]]) -> RecordedRates:
    """The learning rates training recorded in each validation record (since 2026-12-01; older runs have none)."""
    after = [record.get("learning_rate") if isinstance(record.get("learning_rate"), Real) else None for record in records]
    decayed = [record.get("lr_decayed") is True for record in records]
    recorded = all("learning_rate" in record for record in records)
    return RecordedRates(after, decayed, "" if recorded else "not shown: this run's history does not record it")


@dataclass(frozen=True)
class TrainingHistory:
    folder: Path
    records: list[dict[str, Any]]        # info.history, checked: the numbers of RECORD_NUMBERS, "watch" if any
    watched: tuple[WatchedPair, ...]     # info.watch (empty: none)
    rates: "RecordedRates"               # the learning rate after each validation, where recorded

    def averaged(self, index: int) -> bool:
        """Whether record `index` is the validation of the averaged weights (train --average-last):
        the one record that repeats the update of the one before it."""
        return index > 0 and self.records[index]["step"] == self.records[index - 1]["step"]

    def alignment(self, index: int, sentence: int) -> Alignment:
        """The attention of watched sentence `sentence` at validation `index`, as an Alignment."""
        return watched_alignment(self.watched[sentence], self.records[index]["watch"][sentence],
                                 f"{WHERE}.history[{index}].watch[{sentence}]")

    def gold(self) -> dict[int, PharaohLinks]:
        """The gold links of the watched sentences that have them, by sentence."""
        return {n: parse_pharaoh(pair.gold, f"{WHERE}.watch[{n}].gold: ")
                for n, pair in enumerate(self.watched) if pair.gold}

    def aer(self, index: int) -> Optional[AlignmentScore]:
        """AER of the links at validation `index` over the watched sentences with gold (None: none)."""
        gold = self.gold()
        if not gold:
            return None
        predicted = [set(self.alignment(index, sentence).links()) for sentence in gold]
        try:
            return score_alignments(list(gold.values()), predicted)
        except CorpusError:                  # no sure gold link and no predicted link: nothing to score
            return None


def read_history(folder: Path) -> TrainingHistory:
    """The history of the model in `folder`; a missing or malformed one is a ModelFileError."""
    from .modelfile import read_model_info

    info = read_model_info(folder)
    if not info.history:
        raise ModelFileError(f"{folder}: config.json has no training history (info.history); "
                             "only models trained by attncli have one.")
    watched = info.watch or ()
    for index, record in enumerate(info.history):
        for key in RECORD_NUMBERS:
            value = record.get(key)
            if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
                raise ModelFileError(f"{WHERE}.history[{index}].{key} must be a number, got {value!r}.")
        if watched and len(record.get("watch") or ()) != len(watched):
            raise ModelFileError(f"{WHERE}.history[{index}].watch must have one entry per sentence of "
                                 f"{WHERE}.watch ({len(watched)}).")
    history = TrainingHistory(folder, info.history, watched, recorded_rates(info.history))
    _check_watched(history)
    return history


def _check_watched(history: TrainingHistory) -> None:
    """Refuse, before anything is shown, a recorded matrix of the wrong shape or gold links
    outside their sentence."""
    gold = history.gold()
    for index in range(len(history.records)):
        for sentence in range(len(history.watched)):
            alignment = history.alignment(index, sentence)
            if sentence in gold and alignment.tgt_words:
                check_gold_links(gold[sentence], alignment, f"{WHERE}.watch[{sentence}].gold: ", ModelFileError)


def watched_alignment(pair: WatchedPair, snapshot: Any, where: str) -> Alignment:
    """An Alignment of the words only (no pieces) from one recorded matrix: rows the target words,
    columns the source's whitespace words and </s>."""
    source = pair.source.split()
    target = snapshot.get("target_words") if isinstance(snapshot, dict) else None
    weights = snapshot.get("weights") if isinstance(snapshot, dict) else None
    if not isinstance(target, list) or not all(isinstance(word, str) for word in target) or not isinstance(weights, list):
        raise ModelFileError(f"{where} must hold target_words and weights.")
    try:
        matrix = np.asarray(weights, dtype=np.float32).reshape(len(target), len(source) + 1)
    except (TypeError, ValueError):
        raise ModelFileError(f"{where}.weights must be {len(target)} rows of {len(source) + 1} numbers "
                             "(source words and </s>).") from None
    return Alignment(source, list(target), [], [], [], [], np.zeros((0, 0), np.float32), matrix, math.nan)


def chosen_validations(history: TrainingHistory, at: Optional[int]) -> list[int]:
    """The records to show the watched sentences at: those of update `at`, else the first, the
    middle and the last."""
    steps = [record["step"] for record in history.records]
    if at is None:
        return sorted({0, (len(steps) - 1) // 2, len(steps) - 1})
    chosen = [index for index, step in enumerate(steps) if step == at]
    if not chosen:
        below = [step for step in steps if step < at]
        above = [step for step in steps if step > at]
        nearest = below[-1:] + above[:1]
        raise OptionError(f"--at {at}: no validation after update {at}; the nearest: "
                          f"update{'s' if len(nearest) > 1 else ''} {' and '.join(map(str, nearest))}.")
    return chosen
