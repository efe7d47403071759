"""Train a model from a parallel corpus: the update step, the run around it, and `train()`.

`train()` never prints; it reports through `on_event(TrainEvent)` so the caller decides how to
show progress (the CLI draws a rich progress bar on stderr). The best model so far is always on
disk, written atomically. The training state (checkpoint.TrainState: weights, Adam, RNG and the
run's `Progress`) is saved beside it at every validation and when Ctrl-C stops the run at an
update boundary, so `train(..., resume=True)` continues to the same result as a run that was
never stopped.

    train()                 checks, data, model; then a short loop over
      TrainingRun           one run's model, optimizer, data and Progress:
        .train_epoch()        updates (train_step) with the checks that follow each
        .validate()           dev scores, best model saved, patience and learning-rate decay
        .finish()             checkpoint averaging, the training state kept or removed
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import random
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .batch import Batch, epoch_batches
from .checkpoint import (BestScores, Progress, TrainState, check_fingerprint, discard_train_state,
                         load_train_state, run_fingerprint, save_train_state, state_dir_for)
from .config import TrainConfig
from .corpus import check_readable_file
from .errors import ModelFileError, OptionError
from .devices import resolve_device
from .distributed import Ranks, threads_per_process
from .events import TrainEvent
from .loss import drop_words, sequence_loss
from .model import Seq2Seq
from .model_info import ModelInfo, SearchDefaults
from .modelfile import (CONFIG_FILE, WEIGHTS_FILE, LoadedModel, load_model, read_source_words, resolve_model_path,
                        save_model, update_model_info)
from .run_lock import run_lock
from .schedule import judge, scheduled_rate, validation_due
from .stopping import StopReason, StopRequests
from .tokenizer import Tokenizer
from .training_data import TrainingData, corpus_words, make_training_batch, prepare_data, unseen_dev_words_warning
from .training_precision import autocast, check_resumable_on, loss_scaler, resolve_train_precision
from .validation import dev_scores
from .watch import WatchedPair, check_watch_lengths, snapshot, watched_pairs, with_dev_references


@dataclass
class TrainResult:
    model_dir: Path
    best_bleu: float
    best_chrf: float
    best_dev_loss: float
    best_step: int
    steps: int
    epochs_done: float
    elapsed_s: float
    parameters: int
    skipped_pairs: int
    stop_reason: str              # `stop` described for people
    history: list[dict] = field(default_factory=list)
    state_dir: Path | None = None   # the saved training state, if kept (interrupted or --max-minutes)
    stop: StopReason | None = None
    precision: str = "float32"


class TrainingInterrupted(Exception):
    """Raised when Ctrl-C/SIGTERM stopped training; the best model so far is saved, and the
    training state in `result.state_dir` (None if nothing was saved yet) for `resume=True`."""

    def __init__(self, result: TrainResult) -> None:
        super().__init__("training interrupted")
        self.result = result


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def train_step(model: Seq2Seq, optimizer: torch.optim.Optimizer, batch: Batch, config: TrainConfig,
               precision: str, learning_rate: float, ranks: Ranks = Ranks(),
               present: bool = True, scaler: torch.amp.GradScaler | None = None) -> tuple[torch.Tensor, int]:
    """One update on `batch`: forward in `precision`, backward, gradients summed over `ranks`
    (each rank's mean loss weighted by its share of the target tokens), clip, Adam. A rank with
    no pairs in this update (`present` False) runs `batch` with weight 0. (loss, target tokens)."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
    if config.word_dropout > 0.0:
        batch = dataclasses.replace(batch, src_ids=drop_words(batch.src_ids, config.word_dropout),
                                    tgt_in=drop_words(batch.tgt_in, config.word_dropout))
    with autocast(precision, batch.src_ids.device):
        loss, tokens = sequence_loss(model, batch, config.label_smoothing, config.guide_weight)
    tokens = tokens if present else 0
    optimizer.zero_grad(set_to_none=True)
    weighted = loss * ranks.weight(tokens)
    (scaler.scale(weighted) if scaler is not None else weighted).backward()
    ranks.sum_gradients(model)               # every rank then sees the same sums: the same scaler decisions
    if scaler is not None:
        scaler.unscale_(optimizer)           # clip the true gradients
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
    if scaler is not None:
        scaler.step(optimizer)               # skipped when a gradient overflowed; then the scale shrinks
        scaler.update()
    else:
        optimizer.step()
    return loss.detach(), tokens


class TokenRate:
    """Target tokens per second over windows of at least two seconds."""

    def __init__(self) -> None:
        self.tokens, self.since, self.rate = 0, time.monotonic(), 0.0

    def add(self, tokens: int) -> float:
        self.tokens += tokens
        now = time.monotonic()
        if now - self.since >= 2.0 or self.rate == 0.0:
            self.rate = self.tokens / max(now - self.since, 1e-9)
            self.tokens, self.since = 0, now
        return self.rate


@dataclass
class RunSetup:
    """What a run is made of, fixed before its first update."""

    config: TrainConfig
    data: TrainingData
    model: Seq2Seq
    out_dir: Path
    fingerprint: dict
    info: ModelInfo               # the model card written into config.json
    on_event: Callable[[TrainEvent], None]
    guard: StopRequests
    watched: list[WatchedPair] = field(default_factory=list)   # sentences whose attention is recorded
    ranks: Ranks = field(default_factory=Ranks)                # the processes training this model together
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    source_words: frozenset[str] | None = None                 # for the model folder (rank 0's)


class TrainingRun:
    """One training run: the model, its optimizer and data, and the `Progress` the checkpoint saves."""

    def __init__(self, setup: RunSetup, precision: str, saved: TrainState | None = None) -> None:
        self.setup, self.config, self.model = setup, setup.config, setup.model
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.config.learning_rate, fused=True)
        self.ranks = setup.ranks
        self.progress = Progress(precision=precision, processes=self.ranks.world)
        self.best_states: list[dict[str, torch.Tensor]] = []      # for --average-last
        self.state_dir = state_dir_for(setup.out_dir)
        self.batches: tuple[int, list[np.ndarray]] = (-1, [])     # (epoch, its batches), made once per epoch
        self.time_limit = self.config.max_minutes * 60.0 if self.config.max_minutes > 0 else math.inf
        if saved is not None:
            self.restore(saved)
        self.scaler = loss_scaler(self.progress.precision, setup.device, self.progress.loss_scale,
                                  self.progress.scale_growth)
        self.start = time.monotonic() - self.progress.elapsed_s
        self.rate = TokenRate()
        self.finishing = False

    def restore(self, saved: TrainState) -> None:
        """Continue from a saved state: weights, Adam, RNG (dropout masks) and progress."""
        if saved.model_config != self.model.config.to_dict():
            raise ModelFileError(f"{self.state_dir}: the saved model settings do not match this run.")
        self.model.load_state_dict(saved.model_state)
        optimizer_state = self.optimizer.state_dict()
        optimizer_state["state"] = saved.optimizer_state
        self.optimizer.load_state_dict(optimizer_state)
        torch.set_rng_state(saved.torch_rng)
        self.progress, self.best_states = saved.progress, saved.best_states

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def learning_rate(self) -> float:
        return scheduled_rate(self.config, self.progress.step + 1, self.progress.lr_scale)   # of the next update

    def epoch_batches(self, number: int) -> list[np.ndarray]:
        """The batches of epoch `number` in training order: the same on every run with this seed."""
        if self.batches[0] != number:
            self.batches = (-1, [])                              # freed before the next are made
            train = self.setup.data.train
            self.batches = (number, epoch_batches(train.src_lengths, train.tgt_lengths,
                                                  self.config.batch_tokens * self.ranks.world, self.config.seed, number))
        return self.batches[1]

    @property
    def steps_per_epoch(self) -> int:
        """Updates in the current epoch (epochs differ by a few: batches are cut per sort chunk)."""
        return len(self.epoch_batches(self.progress.epoch))

    def checkpoint_state(self) -> TrainState:
        """What --resume needs, as of now."""
        data = self.setup.data
        progress = dataclasses.replace(self.progress, elapsed_s=self.elapsed())
        if self.scaler is not None:
            progress = dataclasses.replace(progress, loss_scale=self.scaler.get_scale(),
                                           scale_growth=int(self.scaler.state_dict()["_growth_tracker"]))
        return TrainState(self.setup.fingerprint, self.model.config.to_dict(), progress, self.model.state_dict(),
                          self.optimizer.state_dict()["state"], torch.get_rng_state(), data.src_tok.model_proto,
                          data.tgt_tok.model_proto, self.best_states)

    def train_epoch(self) -> StopReason | None:
        """Updates until the epoch ends or a stop is due; advances to the next epoch if none is."""
        batches = self.epoch_batches(self.progress.epoch)
        while self.progress.batches_done < len(batches):
            self.update(batches[self.progress.batches_done])
            stop = self.after_update(end_of_epoch=self.progress.batches_done == len(batches))
            if stop is not None:
                return stop
        self.progress.epoch, self.progress.batches_done = self.progress.epoch + 1, 0
        return None

    def update(self, indices: Sequence[int]) -> None:
        """One update on the pairs `indices` (this rank's share of them), applied entirely or not at
        all (Ctrl-C waits for it)."""
        data, progress, ranks = self.setup.data, self.progress, self.ranks
        self.check_stop_requests()
        with self.setup.guard.critical():
            share = ranks.share(indices)
            if ranks.world > 1 or self.setup.device.type == "cuda":   # dropout by rank and update (a GPU's
                torch.manual_seed(self.config.seed * 1_000_003 + progress.step * 1009 + ranks.rank)  # RNG is not saved)
            resampling = (data.resampler, self.config.seed * 1009 + progress.step) if data.resampler else None
            batch = make_training_batch(data.train, share if len(share) else indices[:1], data.src_tok, data.tgt_tok,
                                        resampling)
            loss, tokens = train_step(self.model, self.optimizer, batch.to(self.setup.device), self.config,
                                      progress.precision, self.learning_rate(), ranks,
                                      present=len(share) > 0, scaler=self.scaler)
            progress.step += 1
            progress.batches_done += 1
        self.report_step(float(loss), tokens)
        self.check_stop_requests()

    def check_stop_requests(self) -> None:
        """A safe point: stop here (KeyboardInterrupt) if Ctrl-C or SIGTERM reached this process,
        or, training with several, any of them: all ranks stop at the same update."""
        if self.ranks.world == 1:
            self.setup.guard.check()
        elif self.ranks.any(self.setup.guard.requested):
            raise KeyboardInterrupt

    def report_step(self, loss: float, tokens: int) -> None:
        progress, elapsed = self.progress, self.elapsed()
        total_steps = self.steps_per_epoch * self.config.epochs
        seconds_left = min((total_steps - progress.step) * elapsed / progress.step, max(self.time_limit - elapsed, 0))
        self.setup.on_event(TrainEvent(
            "step", epoch=progress.epoch, step=progress.step, total_steps=total_steps, loss=loss,
            tokens_per_s=self.rate.add(tokens), elapsed_s=elapsed, learning_rate=self.learning_rate(),
            seconds_left=seconds_left, precision=progress.precision))

    def after_update(self, end_of_epoch: bool) -> StopReason | None:
        """Validation and stopping checks that follow the latest update; a stop reason, or None.
        Rank 0 decides; the other ranks take its decision and learning-rate scale."""
        stop = self.checks_after_update(end_of_epoch) if self.ranks.main else None
        if self.ranks.world > 1:
            stop, self.progress.lr_scale = self.ranks.broadcast((stop, self.progress.lr_scale))
        return stop

    def checks_after_update(self, end_of_epoch: bool) -> StopReason | None:
        """`after_update` on rank 0 (or alone).

        A validation already in the history for this update (the run was stopped after it) is
        not repeated; this is what lets a resumed run pick up exactly here.
        """
        progress, config = self.progress, self.config
        validated = bool(progress.history) and progress.history[-1]["step"] == progress.step
        last_update = end_of_epoch and progress.epoch >= config.epochs          # the run ends with a validation
        if validation_due(progress.step, self.steps_per_epoch, end_of_epoch, config) or last_update:
            if not validated:
                self.validate()
                validated = True
            if progress.bad_validations >= config.patience:
                return StopReason.PATIENCE
        if self.elapsed() >= self.time_limit:
            if progress.step > 0 and not validated:
                self.validate()
            return StopReason.MAX_MINUTES
        return None

    def validate(self, checkpoint: bool = True) -> None:
        """Dev loss, greedy BLEU/chrF; save the model if they improved, and the training state."""
        setup, progress = self.setup, self.progress
        epoch = min(progress.epoch, self.config.epochs)          # past the last epoch when averaging
        with setup.guard.interruptible():
            scores = dev_scores(self.model, setup.data.dev, setup.data.dev_references, setup.data.tgt_tok,
                                self.config.batch_tokens)
            watched = self.watch_snapshot()
        self.model.train()
        with setup.guard.critical():
            verdict = judge(scores.bleu, scores.loss, progress.best.bleu, progress.best.loss, progress.lowest_loss,
                            progress.step, self.config)
            progress.lowest_loss = min(progress.lowest_loss, scores.loss)
            if verdict.progress:
                progress.bad_validations = 0
            elif verdict.counts:
                progress.bad_validations += 1
                progress.lr_scale *= self.config.lr_decay
            progress.history.append({
                "step": progress.step, "epoch": epoch, "elapsed_s": round(self.elapsed(), 1),
                "dev_loss": round(scores.loss, 4), "dev_bleu": round(scores.bleu, 2), "dev_chrf": round(scores.chrf, 2),
                "precision": progress.precision,
                # the rate of the update that follows (none after the averaged weights' validation)
                "learning_rate": self.learning_rate() if checkpoint else None,
                "lr_decayed": verdict.counts and self.config.lr_decay < 1.0,
                **({"watch": watched} if watched else {})})
            if verdict.best:
                progress.best = BestScores(scores.bleu, scores.chrf, scores.loss, progress.step)
                self.best_states.append(copy.deepcopy(self.model.state_dict()))
                del self.best_states[: -self.config.average_last]
                self.save_best()
            elif (setup.out_dir / CONFIG_FILE).is_file():      # the model stays; its card gets this validation
                update_model_info(setup.out_dir, lambda info: dataclasses.replace(info, history=progress.history))
            if checkpoint:
                save_train_state(self.state_dir, self.checkpoint_state())
        setup.on_event(TrainEvent("validation", epoch=epoch, step=progress.step, dev_loss=scores.loss,
                                  dev_bleu=scores.bleu, dev_chrf=scores.chrf, improved=verdict.best,
                                  elapsed_s=self.elapsed(), precision=progress.precision, message=verdict.note))

    def watch_snapshot(self) -> list[dict]:
        """The attention of the watched sentences as the model is now (in eval mode), or []."""
        if not self.setup.watched:
            return []
        from .torch_runtime import TorchTranslator

        data = self.setup.data
        translator = TorchTranslator(LoadedModel(self.model, data.src_tok, data.tgt_tok), "float32",   # this model, now
                                     self.setup.device)     # where it is: building a translator moves the model
        with torch.inference_mode():
            return snapshot(translator, self.setup.watched)

    def save_best(self) -> None:
        """Write the model folder with the current weights and the run's summary."""
        setup, progress, best = self.setup, self.progress, self.progress.best
        summary = dataclasses.replace(
            setup.info, best={"dev_bleu": round(best.bleu, 2), "dev_chrf": round(best.chrf, 2),
                              "dev_loss": round(best.loss, 4), "step": best.step,
                              "epoch": min(progress.epoch, self.config.epochs)},
            training_seconds=round(self.elapsed(), 1), training_precision=progress.precision, history=progress.history)
        save_model(setup.out_dir, self.model, setup.data.src_tok, setup.data.tgt_tok, summary,
                   fp16=self.config.fp16_weights, source_words=setup.source_words)

    def finish(self, stop: StopReason) -> None:
        """After the last update: average the kept best weights (saved only if better on dev);
        remove the training state, unless the time limit stopped the run (it can be continued).
        Rank 0's work: the other ranks hold no model folder or state."""
        if not self.ranks.main:
            return
        if len(self.best_states) > 1:
            with self.setup.guard.critical():
                save_train_state(self.state_dir, self.checkpoint_state())   # averaging changes the weights
            self.finishing = True
            averaged = {name: torch.stack([state[name].float() for state in self.best_states]).mean(0)
                        for name in self.best_states[0]}
            self.model.load_state_dict(averaged)
            self.validate(checkpoint=False)
        if stop is not StopReason.MAX_MINUTES:
            discard_train_state(self.state_dir)

    def save_interrupted(self) -> None:
        """Ctrl-C: keep the state for --resume, unless a second Ctrl-C tore it mid-update or
        the run was already finishing (averaged weights are not a state to resume from)."""
        if self.setup.guard.consistent and not self.finishing and self.ranks.main:
            try:
                save_train_state(self.state_dir, self.checkpoint_state())
            except KeyboardInterrupt:    # a second Ctrl-C: the state of the last validation stays
                pass

    def result(self, stop: StopReason) -> TrainResult:
        progress, best = self.progress, self.progress.best
        kept = stop in (StopReason.INTERRUPTED, StopReason.MAX_MINUTES) and self.state_dir.is_dir()
        return TrainResult(
            self.setup.out_dir, best.bleu, best.chrf, best.loss, best.step, progress.step,
            progress.epoch - 1 + (progress.batches_done / self.steps_per_epoch if progress.batches_done else 0.0),
            self.elapsed(),
            self.model.num_parameters(), self.setup.data.train.skipped, stop.describe(self.config), progress.history,
            self.state_dir if kept else None, stop, progress.precision)


@dataclass(frozen=True)
class RunRequest:
    """What `train` was asked for, besides the TrainConfig: the files, the folder and the run's mode."""

    corpus_path: Path
    dev_path: Path | None
    out_dir: Path
    guide_path: Path | None = None
    init_from: str | None = None
    resume: bool = False
    overwrite: bool = False
    cache_dir: Path | None = None
    stop_signals: tuple[int, ...] = (signal.SIGINT,)


def train(corpus_path: Path | str, dev_path: Path | str | None, out_dir: Path | str, config: TrainConfig,
          on_event: Callable[[TrainEvent], None] = lambda event: None, resume: bool = False,
          stop_signals: Sequence[int] = (signal.SIGINT,), guide_path: Path | str | None = None,
          init_from: Path | str | None = None, overwrite: bool = False,
          cache_dir: Path | str | None = None, device: str = "auto") -> TrainResult:
    """Train a model on `corpus_path`, validate on `dev_path`, keep the best in `out_dir`.

    An existing model in `out_dir` is replaced only with `overwrite` (or by the run it belongs
    to, on `resume`); one run at a time holds `out_dir` (run_lock.py).

    The training state is saved in `state_dir_for(out_dir)` (`OUT.train-state`) at every
    validation and when a signal in `stop_signals` or a KeyboardInterrupt stops the run (at an
    update boundary); `resume=True` continues from it and ends with the same model, history and
    scores as a run that was never stopped. The state is removed when the run finishes, and kept
    after a --max-minutes stop, so that run can be continued with a larger limit.
    `guide_path` (one Pharaoh line per corpus pair, e.g. from a statistical aligner) adds the
    guided-alignment term to the loss, weighted by `config.guide_weight`.
    `init_from` (a model folder or shipped name) fine-tunes that model: its weights are the start,
    its SentencePiece models and architecture replace those of `config`.
    The corpus is encoded once into `cache_dir` (default: corpus_cache.default_root()) and read
    from there pair by pair; a later run on the same corpus reuses it.
    `device` is devices.resolve_device's choice; started by torchrun, the processes train
    one model together (distributed.py) and only rank 0 reports through `on_event`.
    """
    config.validate()
    request = RunRequest(Path(corpus_path), Path(dev_path) if dev_path is not None else None, Path(out_dir),
                         Path(guide_path) if guide_path is not None else None,
                         str(init_from) if init_from is not None else None, resume, overwrite,
                         Path(cache_dir) if cache_dir is not None else None, tuple(stop_signals))
    torch_device = Ranks.local_device(resolve_device(device))      # under torchrun: this process's GPU
    resolve_train_precision(config.train_precision, torch_device)    # refused here, not after reading the data
    ranks = Ranks.join(torch_device)
    try:
        result = _train_joined(request, config, on_event if ranks.main else lambda event: None, ranks, torch_device)
    except TrainingInterrupted:
        ranks.leave()              # all ranks stopped at the same update (a failed rank: torchrun stops the rest)
        raise
    ranks.leave()
    return result


def _train_joined(request: RunRequest, config: TrainConfig, on_event: Callable[[TrainEvent], None],
                  ranks: Ranks, device: torch.device) -> TrainResult:
    """`train` once this process knows its rank: checks, then the lock (rank 0) and the run."""
    start_model = load_model(resolve_model_path(request.init_from)) if request.init_from is not None else None
    if start_model is not None:
        config = config.adopting(start_model.model.config, start_model.src_tokenizer is start_model.tgt_tokenizer)
    clock_start = time.monotonic()
    torch.set_num_threads(config.threads or threads_per_process())
    set_seed(config.seed)
    watched = watched_pairs(config.watch, config.watch_file)  # a bad --watch fails before anything runs
    if ranks.main:
        check_output_folder(request.out_dir, request.overwrite or request.resume)
    with run_lock(request.out_dir) if ranks.main else nullcontext():
        return _train_locked(request, config, on_event, start_model, clock_start, watched, ranks, device)


def _train_locked(request: RunRequest, config: TrainConfig, on_event: Callable[[TrainEvent], None],
                  start_model: LoadedModel | None, clock_start: float, watched: list[WatchedPair],
                  ranks: Ranks, device: torch.device) -> TrainResult:
    """`train` once `out_dir` is checked and locked: data, model, the run."""
    for path in (request.corpus_path, request.dev_path):
        if path is not None:
            check_readable_file(path)
    start_dir = resolve_model_path(request.init_from) if request.init_from is not None else None
    init_weights = start_dir / WEIGHTS_FILE if start_dir is not None else None
    fingerprint = run_fingerprint(request.corpus_path, request.dev_path, config, request.guide_path, init_weights)
    saved = saved_run(request.out_dir, fingerprint, request.resume, request.overwrite, discard=ranks.main)
    if saved is not None:
        check_same_processes(saved, ranks.world, state_dir_for(request.out_dir))
        check_time_left(saved, config.max_minutes)
        check_resumable_on(saved.progress.precision, device, state_dir_for(request.out_dir))
        config = config.resuming(saved.model_config)
    data = prepare_ranked(request, config, starting_tokenizers(saved, start_model), on_event, ranks)
    config = data.config                                     # with the recipe's choices
    if ranks.world > 1:
        on_event(TrainEvent("note", message=f"{ranks.world} processes: each update reads {ranks.world} × "
                                            f"{config.batch_tokens:,} tokens (--batch-tokens per process)"))
    model = Seq2Seq(config.model_config(len(data.src_tok), len(data.tgt_tok)))
    if start_model is not None and saved is None:
        model.load_state_dict(start_model.model.state_dict())
        on_event(TrainEvent("start", message=f"starting from the weights of {request.init_from}"))
    info = ModelInfo(train_config=config.to_dict(), corpus=str(request.corpus_path),
                     dev=str(request.dev_path) if request.dev_path is not None else None,
                     guide_alignments=str(request.guide_path) if request.guide_path is not None else None,
                     init_from=request.init_from, defaults=SearchDefaults(config.beam, config.length_penalty))
    source_words = run_source_words(data, start_dir, on_event) if ranks.main else None
    watched = with_dev_references(watched, data.dev_pairs)
    check_watch_lengths(watched, data.src_tok, data.tgt_tok)
    if watched:
        info = dataclasses.replace(info, watch=tuple(watched))
    guard = StopRequests(request.stop_signals, immediate=ranks.world == 1)
    setup = RunSetup(config, data, model.to(device), request.out_dir, fingerprint, info, on_event, guard, watched,
                     ranks, device, source_words)
    run = TrainingRun(setup, resolve_train_precision(config.train_precision, device), saved)
    run.start = clock_start - run.progress.elapsed_s          # reading and encoding count as training time
    if saved is not None:
        on_event(TrainEvent("start", epoch=run.progress.epoch, step=run.progress.step,
                            message=f"resuming at update {run.progress.step} (epoch {run.progress.epoch})"))
    return run_to_end(run, resumed=saved is not None)


def prepare_ranked(request: RunRequest, config: TrainConfig, tokenizers: tuple[Tokenizer, Tokenizer] | None,
                   on_event: Callable[[TrainEvent], None], ranks: Ranks) -> TrainingData:
    """The run's data; with several processes rank 0 encodes the corpus first and the others
    then read the same cache, so one SentencePiece model and one encoding serve all."""
    def prepare() -> TrainingData:
        return prepare_data(request.corpus_path, request.dev_path, request.guide_path, config, tokenizers, on_event,
                            request.cache_dir)

    data = prepare() if ranks.main else None
    ranks.barrier()
    return data if data is not None else prepare()


def run_to_end(run: TrainingRun, resumed: bool) -> TrainResult:
    """The training loop: epochs until a stop, then the finish; Ctrl-C saves the state and raises."""
    model, progress, config = run.model, run.progress, run.config
    model.train()
    stop: StopReason | None = None
    with run.setup.guard:
        try:
            if resumed:
                stop = run.after_update(end_of_epoch=progress.batches_done == run.steps_per_epoch)
            while stop is None and run.progress.epoch <= config.epochs:
                stop = run.train_epoch()
            stop = stop or StopReason.EPOCHS
            run.ranks.check_in_step(run.model)
            run.finish(stop)
        except KeyboardInterrupt:
            run.save_interrupted()
            raise TrainingInterrupted(run.result(StopReason.INTERRUPTED)) from None
    run.setup.on_event(TrainEvent("end", step=run.progress.step, elapsed_s=run.elapsed(), message=stop.describe(config)))
    return run.result(stop)


def check_output_folder(out_dir: Path, may_replace_model: bool) -> None:
    """Fail now rather than at the first validation, after minutes of training."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OptionError(f"--out {out_dir}: is a file, not a model folder.")
    if out_dir.is_dir() and not (out_dir / CONFIG_FILE).is_file() and any(out_dir.iterdir()):
        raise OptionError(f"--out {out_dir}: exists and is not a model folder; refusing to replace it.")
    unfinished = state_dir_for(out_dir).exists()       # its own message follows (saved_run)
    if (out_dir / CONFIG_FILE).is_file() and not may_replace_model and not unfinished:
        raise OptionError(f"--out {out_dir}: holds a model already; add --overwrite to replace it, "
                          "or choose another --out.")
    try:
        out_dir.absolute().parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OptionError(f"--out {out_dir}: cannot create its parent folder ({exc.strerror or exc}).") from None
    if not os.access(out_dir.absolute().parent, os.W_OK):
        raise OptionError(f"--out {out_dir}: cannot write in {out_dir.absolute().parent}.")


def saved_run(out_dir: Path, fingerprint: dict, resume: bool, overwrite: bool = False,
              discard: bool = True) -> TrainState | None:
    """The state of the stopped run to continue (--resume), checked against this run's data and
    options; with `overwrite` (and no resume) a stopped run's state is removed (by the process
    that may `discard` it: rank 0) and this run starts over."""
    state_dir = state_dir_for(out_dir)
    if resume:
        saved = load_train_state(state_dir)
        check_fingerprint(saved.fingerprint, fingerprint, state_dir)
        return saved
    if state_dir.exists() and overwrite:
        if discard:
            discard_train_state(state_dir)
    elif state_dir.exists():
        raise OptionError(f"{state_dir}: holds an unfinished run for --out {out_dir}; "
                          "add --resume to continue it, or --overwrite to start over.")
    return None


def run_source_words(data: TrainingData, start_dir: Path | None,
                     on_event: Callable[[TrainEvent], None]) -> frozenset[str] | None:
    """The words this model is trained on, for its folder: its training sources', and a fine-tuned
    one's start model's too (none if that model has none: the notes would name words it saw);
    warns when many dev sentences hold words outside them."""
    start = read_source_words(start_dir) if start_dir is not None else frozenset()
    words = corpus_words(data.train, data.src_tok) if start is not None else None
    if words is None:
        return None
    words |= start
    if warning := unseen_dev_words_warning(words, [pair.source for pair in data.dev_pairs]):
        on_event(TrainEvent("warning", message=warning))
    return words


def check_same_processes(saved: TrainState, processes: int, state_dir: Path) -> None:
    """Refuse to resume with another number of processes: each takes every N-th pair of a batch,
    so another N would continue another run."""
    if saved.progress.processes != processes:
        raise OptionError(f"--resume: {state_dir} was trained by {saved.progress.processes} process(es), this run "
                          f"has {processes}; resume it with the same number (torchrun --nproc_per_node, or --nproc).")


def check_time_left(saved: TrainState, max_minutes: float) -> None:
    """Refuse to resume a run that has already used the whole --max-minutes (it counts the whole
    run, not this session of it): it would stop before its first update."""
    used = saved.progress.elapsed_s / 60
    if 0 < max_minutes <= used:
        raise OptionError(f"--max-minutes {max_minutes:g}: this run has trained {used:.1f} minutes already, and the "
                          "limit counts the whole run; give a larger one to continue it.")


def starting_tokenizers(saved: TrainState | None, start_model: LoadedModel | None) -> tuple[Tokenizer, Tokenizer] | None:
    """The SentencePiece models of a resumed run or of the model being fine-tuned; None: train new ones."""
    if saved is not None:
        return Tokenizer(saved.src_spm), Tokenizer(saved.tgt_spm)
    if start_model is not None:
        return start_model.src_tokenizer, start_model.tgt_tokenizer
    return None
