"""Train a model from a parallel corpus: tokenizer, batches, optimisation, validation, saving.

`train()` never prints; it reports through `on_event(TrainEvent)` so the caller decides how to
show progress (the CLI draws a rich progress bar on stderr). The best model so far is always on
disk, written atomically. The training state (weights, Adam, RNG, position, history) is saved
beside it at every validation and when Ctrl-C stops the run at an update boundary, so
`train(..., resume=True)` continues to the same result as a run that was never stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import random
import re
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch

from .alignment import guide_attention, parse_pharaoh
from .batch import Batch, bucketed_batches, make_batch
from .checkpoint import (TrainState, check_fingerprint, discard_train_state, load_train_state, run_fingerprint,
                         save_train_state, state_dir_for)
from .config import ModelConfig, TrainConfig
from .corpus import SentencePair, check_readable_file, read_pairs
from .errors import CorpusError, ModelFileError, OptionError
from .loss import smoothed_cross_entropy
from .model import Seq2Seq
from .modelfile import WEIGHTS_FILE, LoadedModel, load_model, resolve_model_path, save_model
from .tokenizer import PAD_ID, Tokenizer


@dataclass
class TrainEvent:
    """What happened: kind is "start", "step", "validation" or "end"; other fields as they apply."""

    kind: str
    epoch: int = 0
    step: int = 0
    total_steps: int = 0          # estimated updates until the epoch limit
    loss: float = 0.0
    tokens_per_s: float = 0.0
    elapsed_s: float = 0.0
    seconds_left: float = 0.0     # estimate: the nearer of the time and epoch limits
    learning_rate: float = 0.0
    dev_loss: float = 0.0
    dev_bleu: float = 0.0
    dev_chrf: float = 0.0
    improved: bool = False
    message: str = ""


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
    stop_reason: str
    history: list[dict] = field(default_factory=list)
    state_dir: Path | None = None   # the saved training state, if kept (interrupted or --max-minutes)


class TrainingInterrupted(Exception):
    """Raised when Ctrl-C/SIGTERM stopped training; the best model so far is saved, and the
    training state in `result.state_dir` (None if nothing was saved yet) for `resume=True`."""

    def __init__(self, result: TrainResult) -> None:
        super().__init__("training interrupted")
        self.result = result


@dataclass
class EncodedCorpus:
    src: list[list[int]]
    tgt: list[list[int]]
    skipped: int = 0
    guides: list[str] | None = None   # Pharaoh links of each pair, for guided alignment


def train_tokenizers(pairs: Sequence[SentencePair], config: TrainConfig) -> tuple[Tokenizer, Tokenizer]:
    """One joint SentencePiece model for both sides, or one per side."""
    try:
        if config.joint_vocab:
            joint = Tokenizer.train((text for pair in pairs for text in (pair.source, pair.target)), config.vocab_size)
            return joint, joint
        src = Tokenizer.train((pair.source for pair in pairs), config.vocab_size)
        tgt = Tokenizer.train((pair.target for pair in pairs), config.vocab_size)
        return src, tgt
    except RuntimeError as exc:                 # SentencePiece reports bad settings as RuntimeError
        message = " ".join(str(exc).split())
        needed = re.search(r"smaller than required_chars\. \d+ vs (\d+)", message)
        if needed:
            raise OptionError(f"--vocab-size must be at least {needed.group(1)} for this corpus "
                              f"(one piece per distinct character), got {config.vocab_size}.") from None
        raise OptionError(f"SentencePiece could not be trained with --vocab-size {config.vocab_size} ({message}).") from None


def adopt_architecture(config: TrainConfig, start: LoadedModel) -> TrainConfig:
    """`config` with the vocabulary and architecture of the model a fine-tuning run starts from."""
    arch = start.model.config
    joint = start.src_tokenizer is start.tgt_tokenizer
    return dataclasses.replace(
        config, vocab_size=arch.src_vocab_size, joint_vocab=joint, embed_size=arch.embed_size,
        hidden_size=arch.hidden_size, encoder_layers=arch.encoder_layers, decoder_layers=arch.decoder_layers,
        input_feeding=arch.input_feeding, tied_output=arch.tied_output)


def encode_corpus(pairs: Sequence[SentencePair], src_tok: Tokenizer, tgt_tok: Tokenizer,
                  max_len: int | None = None, guides: Sequence[str] | None = None) -> EncodedCorpus:
    """Piece ids of every pair; pairs with a side longer than `max_len` pieces are left out."""
    src = src_tok.encode_batch([pair.source for pair in pairs])
    tgt = tgt_tok.encode_batch([pair.target for pair in pairs])
    keep = [i for i in range(len(src)) if max_len is None or (len(src[i]) <= max_len and len(tgt[i]) <= max_len)]
    return EncodedCorpus([src[i] for i in keep], [tgt[i] for i in keep], len(src) - len(keep),
                         [guides[i] for i in keep] if guides is not None else None)


def read_guides(path: Path | str, num_pairs: int) -> list[str]:
    """Guide alignments: one Pharaoh line (`i-j` source-target word links) per corpus pair."""
    from .corpus import decode_line

    path = Path(path)
    check_readable_file(path)
    lines = []
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            line = decode_line(raw, path, line_no)
            parse_pharaoh(line, f"{path}:{line_no}: ")
            lines.append(line)
    if len(lines) != num_pairs:
        raise CorpusError(f"{path}: has {len(lines)} lines but the corpus has {num_pairs} pairs (one line of links per pair).")
    return lines


def make_training_batch(data: EncodedCorpus, indices: Sequence[int], src_tok: Tokenizer, tgt_tok: Tokenizer) -> Batch:
    """The batch of pairs `indices`, with guide attention when the corpus has guide alignments."""
    src = [data.src[i] for i in indices]
    tgt = [data.tgt[i] for i in indices]
    if data.guides is None:
        return make_batch(src, tgt)
    guides = [guide_attention(parse_pharaoh(data.guides[i])[1], src_tok.word_of_pieces(data.src[i]),
                              tgt_tok.word_of_pieces(data.tgt[i])) for i in indices]
    return make_batch(src, tgt, guides)


def sequence_loss(model: Seq2Seq, batch: Batch, label_smoothing: float,
                  guide_weight: float = 0.0) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy per target token and the number of tokens.

    Only real (non-padding) positions go through the output layer and the softmax, the most
    expensive part of a step. With a guide in the batch, `guide_weight` times the cross-entropy
    between the guide and the attention (guided alignment, Chen et al. 2016) is added, averaged
    over the guided target pieces.
    """
    attentional, weights = model.decoder(batch.tgt_in, model.encode(batch.src_ids, batch.src_lengths))
    real = batch.tgt_out != PAD_ID                                          # (batch, tgt_len)
    logits = model.decoder.logits(attentional[real])                        # (tokens, vocab)
    loss = smoothed_cross_entropy(logits, batch.tgt_out[real], label_smoothing)
    if batch.guide is not None and guide_weight > 0:
        guided = batch.guide.sum(-1) > 0                                    # (batch, tgt_len)
        if bool(guided.any()):
            log_weights = torch.log(weights[guided].float().clamp(min=1e-9))  # (guided, src_len)
            loss = loss + guide_weight * -(batch.guide[guided] * log_weights).sum(-1).mean()
    return loss, int(real.sum())


@torch.inference_mode()
def evaluate_loss(model: Seq2Seq, corpus: EncodedCorpus, batch_tokens: int) -> float:
    """Mean per-token cross-entropy on `corpus` (no label smoothing)."""
    model.eval()
    total, tokens = 0.0, 0
    for indices in bucketed_batches([len(s) for s in corpus.src], [len(t) for t in corpus.tgt], batch_tokens):
        batch = make_batch([corpus.src[i] for i in indices], [corpus.tgt[i] for i in indices])
        loss, count = sequence_loss(model, batch, 0.0)
        total += float(loss) * count
        tokens += count
    return total / max(tokens, 1)


@torch.inference_mode()
def decode_corpus(model: Seq2Seq, src: Sequence[Sequence[int]], tgt_tok: Tokenizer,
                  batch_tokens: int = 3000, beam_size: int = 1, length_penalty: float = 1.0) -> list[str]:
    """Translate already-encoded sources in length-sorted batches, with the model's float32
    arithmetic (validation ranks checkpoints of the model itself); results in input order."""
    from .search import search
    from .search_decoder import SearchDecoder

    model.eval()
    decoder = SearchDecoder(model.decoder, "float32")       # built once: it copies the current weights
    outputs = [""] * len(src)
    lengths = [len(s) for s in src]
    for indices in bucketed_batches(lengths, lengths, batch_tokens):
        batch = make_batch([src[i] for i in indices])
        for index, hypothesis in zip(indices, search(model, batch, beam_size, length_penalty, decoder)):
            outputs[index] = tgt_tok.decode(hypothesis.token_ids)
    return outputs


def bleu_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, float]:
    import sacrebleu

    return (sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score,
            sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score)


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def split_dev(pairs: list[SentencePair], fraction: float = 0.01, limit: int = 2000) -> tuple[list[SentencePair], list[SentencePair]]:
    """Hold out the last `fraction` (at most `limit`, at least 1) of shuffled pairs as dev."""
    size = max(1, min(limit, int(len(pairs) * fraction)))
    if len(pairs) < 2:
        raise CorpusError("the corpus needs at least two pairs to hold one out for --dev.")
    return pairs[:-size], pairs[-size:]


class StopRequests:
    """Ctrl-C (SIGINT) and the other `signals` during training: stop at the next safe point.

    The first signal only sets `requested`; the loop raises KeyboardInterrupt at the next update
    boundary, so an update is applied entirely or not at all, and the state saved for --resume is
    exactly the state of an uninterrupted run at that update. Inside `interruptible()` (the dev
    set decoding, which changes nothing that is saved) a signal stops at once. A second signal
    also stops at once; if it lands inside `critical()` the in-memory state may be half updated,
    `consistent` turns False and that state is not saved (the one saved at the last validation
    stays). Handlers are installed only in the main thread and restored on exit.
    """

    def __init__(self, signals: Sequence[int]) -> None:
        self.signals = tuple(signals)
        self.requested = False
        self.consistent = True
        self._immediate = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def _handle(self, signum: int, frame: object) -> None:
        if self._immediate or self.requested:
            self.requested = True
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """A safe point: stop here if a signal came in."""
        if self.requested:
            raise KeyboardInterrupt

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A section that may be abandoned midway: it changes nothing that is saved."""
        self.check()
        self._immediate = True
        try:
            yield
        finally:
            self._immediate = False

    @contextmanager
    def critical(self) -> Iterator[None]:
        """A section that changes the saved state; being interrupted inside it tears that state."""
        try:
            yield
        except KeyboardInterrupt:
            self.consistent = False
            raise


def train(corpus_path: Path | str, dev_path: Path | str | None, out_dir: Path | str, config: TrainConfig,
          on_event: Callable[[TrainEvent], None] = lambda event: None, resume: bool = False,
          stop_signals: Sequence[int] = (signal.SIGINT,), guide_path: Path | str | None = None,
          init_from: Path | str | None = None) -> TrainResult:
    """Train a model on `corpus_path`, validate on `dev_path`, keep the best in `out_dir`.

    The training state is saved in `state_dir_for(out_dir)` (`OUT.train-state`) at every
    validation and when a signal in `stop_signals` or a KeyboardInterrupt stops the run (at an
    update boundary); `resume=True` continues from it and ends with the same model, history and
    scores as a run that was never stopped. The state is removed when the run finishes, and kept
    after a --max-minutes stop, so that run can be continued with a larger limit.
    `guide_path` (one Pharaoh line per corpus pair, e.g. from a statistical aligner) adds the
    guided-alignment term to the loss, weighted by `config.guide_weight`.
    `init_from` (a model folder or shipped name) fine-tunes that model: its weights are the start,
    its SentencePiece models and architecture replace those of `config`.
    """
    config.validate()
    start_model, init_weights = None, None
    if init_from is not None:
        init_dir = resolve_model_path(init_from)
        start_model, init_weights = load_model(init_dir), init_dir / WEIGHTS_FILE
        config = adopt_architecture(config, start_model)
    clock_start = time.monotonic()
    torch.set_num_threads(config.threads or os.cpu_count() or 1)
    set_seed(config.seed)
    out_dir = Path(out_dir)
    state_dir = state_dir_for(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OptionError(f"--out {out_dir}: is a file, not a model folder.")
    try:        # fail now rather than at the first validation, after minutes of training
        out_dir.absolute().parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OptionError(f"--out {out_dir}: cannot create its parent folder ({exc.strerror or exc}).") from None
    if not os.access(out_dir.absolute().parent, os.W_OK):
        raise OptionError(f"--out {out_dir}: cannot write in {out_dir.absolute().parent}.")
    check_readable_file(Path(corpus_path))
    if dev_path is not None:
        check_readable_file(Path(dev_path))
    fingerprint = run_fingerprint(corpus_path, dev_path, config, guide_path, init_weights)
    saved: TrainState | None = None
    if resume:
        saved = load_train_state(state_dir)
        check_fingerprint(saved.fingerprint, fingerprint, state_dir)
    elif state_dir.exists():
        raise OptionError(f"{state_dir}: holds an unfinished run for --out {out_dir}; "
                          "add --resume to continue it, or delete the folder to start over.")
    start = clock_start - (saved.elapsed_s if saved else 0.0)

    on_event(TrainEvent("start", message=f"reading {corpus_path}"))
    train_pairs = read_pairs(corpus_path)
    guides = read_guides(guide_path, len(train_pairs)) if guide_path is not None else None
    order = list(range(len(train_pairs)))
    random.Random(config.seed).shuffle(order)               # the files are sorted by length
    train_pairs = [train_pairs[i] for i in order]
    if guides is not None:
        guides = [guides[i] for i in order]
    if dev_path is None:
        train_pairs, dev_pairs = split_dev(train_pairs)
        guides = guides[: len(train_pairs)] if guides is not None else None
    else:
        dev_pairs = read_pairs(dev_path)
    if saved is None and start_model is not None:
        src_tok, tgt_tok = start_model.src_tokenizer, start_model.tgt_tokenizer
    elif saved is None:
        on_event(TrainEvent("start", message=f"training SentencePiece ({config.vocab_size} pieces)"))
        src_tok, tgt_tok = train_tokenizers(train_pairs, config)
    else:
        src_tok, tgt_tok = Tokenizer(saved.src_spm), Tokenizer(saved.tgt_spm)
    train_data = encode_corpus(train_pairs, src_tok, tgt_tok, config.max_len, guides)
    if not train_data.src:
        raise CorpusError(f"{corpus_path}: no pair is at most {config.max_len} pieces long (--max-len).")
    dev_data = encode_corpus(dev_pairs, src_tok, tgt_tok)
    dev_references = [pair.target for pair in dev_pairs]

    model_config = ModelConfig(
        src_vocab_size=len(src_tok), tgt_vocab_size=len(tgt_tok), embed_size=config.embed_size,
        hidden_size=config.hidden_size, encoder_layers=config.encoder_layers,
        decoder_layers=config.decoder_layers, dropout=config.dropout,
        input_feeding=config.input_feeding, tied_output=config.tied_output)
    model = Seq2Seq(model_config)
    if start_model is not None and saved is None:
        model.load_state_dict(start_model.model.state_dict())
        on_event(TrainEvent("start", message=f"starting from the weights of {init_from}"))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, fused=True)
    src_lengths = [len(s) for s in train_data.src]
    tgt_lengths = [len(t) for t in train_data.tgt]
    steps_per_epoch = len(bucketed_batches(src_lengths, tgt_lengths, config.batch_tokens))
    total_steps = steps_per_epoch * config.epochs
    time_limit = config.max_minutes * 60.0 if config.max_minutes > 0 else math.inf

    # The run's position and everything else `TrainState` saves; a fresh run starts at update 0.
    epoch, batches_done, step = 1, 0, 0
    lr_scale = 1.0
    best = {"bleu": -1.0, "chrf": 0.0, "loss": math.inf, "step": 0}
    best_states: list[dict[str, torch.Tensor]] = []
    history: list[dict] = []
    bad_validations = 0
    if saved is not None:
        if saved.model_config != model_config.to_dict():
            raise ModelFileError(f"{state_dir}: the saved model settings do not match this run.")
        model.load_state_dict(saved.model_state)
        optimizer_state = optimizer.state_dict()
        optimizer_state["state"] = saved.optimizer_state
        optimizer.load_state_dict(optimizer_state)
        torch.set_rng_state(saved.torch_rng)              # dropout continues with the same masks
        epoch, batches_done, step = saved.epoch, saved.batches_done, saved.step
        lr_scale, bad_validations = saved.lr_scale, saved.bad_validations
        best, best_states, history = dict(saved.best), saved.best_states, saved.history
        on_event(TrainEvent("start", epoch=epoch, step=step, message=f"resuming at update {step} (epoch {epoch})"))

    window_tokens, window_start = 0, time.monotonic()
    tokens_per_s = 0.0
    info = {"train_config": config.to_dict(), "corpus": str(corpus_path), "dev": str(dev_path),
            "guide_alignments": str(guide_path) if guide_path is not None else None,
            "init_from": str(init_from) if init_from is not None else None,
            "defaults": {"beam_size": config.beam_size, "length_penalty": config.length_penalty}}
    guard = StopRequests(stop_signals)

    def learning_rate() -> float:
        warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
        return config.learning_rate * warmup * lr_scale

    def epoch_batches(number: int) -> list[list[int]]:
        """The batches of epoch `number` in training order: the same on every run with this seed."""
        return bucketed_batches(src_lengths, tgt_lengths, config.batch_tokens, random.Random(config.seed * 1000 + number))

    def current_state() -> TrainState:
        return TrainState(fingerprint, model_config.to_dict(), epoch, batches_done, step, lr_scale, bad_validations,
                          dict(best), history, time.monotonic() - start, model.state_dict(),
                          optimizer.state_dict()["state"], torch.get_rng_state(), src_tok.model_proto,
                          tgt_tok.model_proto, best_states)

    def validate(epoch: int, checkpoint: bool = True) -> None:
        """Dev loss, greedy BLEU/chrF; save the model if BLEU improved, and the training state."""
        nonlocal lr_scale, bad_validations
        with guard.interruptible():
            dev_loss = evaluate_loss(model, dev_data, config.batch_tokens)
            hypotheses = decode_corpus(model, dev_data.src, tgt_tok)
            bleu, chrf = bleu_chrf(hypotheses, dev_references)
        model.train()
        with guard.critical():
            improved = (bleu, -dev_loss) > (best["bleu"], -best["loss"])
            history.append({"step": step, "epoch": epoch, "elapsed_s": round(time.monotonic() - start, 1),
                            "dev_loss": round(dev_loss, 4), "dev_bleu": round(bleu, 2), "dev_chrf": round(chrf, 2)})
            if improved:
                best.update(bleu=bleu, chrf=chrf, loss=dev_loss, step=step)
                best_states.append(copy.deepcopy(model.state_dict()))
                del best_states[: -config.average_last]
                bad_validations = 0
                save_best(epoch)
            else:
                bad_validations += 1
                lr_scale *= config.lr_decay
            if checkpoint:
                save_train_state(state_dir, current_state())
        on_event(TrainEvent("validation", epoch=epoch, step=step, dev_loss=dev_loss, dev_bleu=bleu,
                            dev_chrf=chrf, improved=improved, elapsed_s=time.monotonic() - start))

    def save_best(epoch: int) -> None:
        summary = dict(info, best={"dev_bleu": round(best["bleu"], 2), "dev_chrf": round(best["chrf"], 2),
                                   "dev_loss": round(best["loss"], 4), "step": best["step"], "epoch": epoch},
                       training_seconds=round(time.monotonic() - start, 1), history=history)
        save_model(out_dir, model, src_tok, tgt_tok, summary, fp16=config.save_fp16)

    def after_update(end_of_epoch: bool) -> str | None:
        """Validation and stopping checks that follow update `step`; a stop reason, or None.

        A validation already in `history` for this update (the run was stopped after it) is not
        repeated; this is what lets a resumed run pick up exactly here.
        """
        validated = bool(history) and history[-1]["step"] == step
        due = step % config.valid_every == 0 if config.valid_every else end_of_epoch
        if due and step > 0:
            if not validated:
                validate(epoch)
                validated = True
            if bad_validations >= config.patience:
                return f"no dev improvement in {config.patience} validations"
        if time.monotonic() - start >= time_limit:
            if step > 0 and not validated:
                validate(epoch)
            return f"reached --max-minutes {config.max_minutes:g}"
        return None

    model.train()
    stop_reason: str | None = None
    interrupted = finishing = False
    with guard:
        try:
            if saved is not None:
                stop_reason = after_update(batches_done == steps_per_epoch)
            while stop_reason is None and epoch <= config.epochs:
                batches = epoch_batches(epoch)
                while stop_reason is None and batches_done < len(batches):
                    guard.check()
                    indices = batches[batches_done]
                    with guard.critical():
                        batch = make_training_batch(train_data, indices, src_tok, tgt_tok)
                        for group in optimizer.param_groups:
                            group["lr"] = learning_rate()
                        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                            loss, tokens = sequence_loss(model, batch, config.label_smoothing, config.guide_weight)
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
                        optimizer.step()
                        step += 1
                        batches_done += 1
                    window_tokens += tokens
                    now = time.monotonic()
                    if now - window_start >= 2.0:
                        tokens_per_s = window_tokens / (now - window_start)
                        window_tokens, window_start = 0, now
                    elapsed = now - start
                    on_event(TrainEvent("step", epoch=epoch, step=step, total_steps=total_steps, loss=float(loss.detach()),
                                        tokens_per_s=tokens_per_s, elapsed_s=elapsed, learning_rate=learning_rate(),
                                        seconds_left=min((total_steps - step) * elapsed / step, max(time_limit - elapsed, 0))))
                    guard.check()
                    stop_reason = after_update(batches_done == len(batches))
                if stop_reason is None:
                    epoch, batches_done = epoch + 1, 0
            stop_reason = stop_reason or f"reached --epochs {config.epochs}"
            if len(best_states) > 1:
                with guard.critical():
                    save_train_state(state_dir, current_state())  # averaging changes the weights
                finishing = True
                average_best(model, best_states, lambda: validate(min(epoch, config.epochs), checkpoint=False))
            finishing = True
            if not stop_reason.startswith("reached --max-minutes"):
                discard_train_state(state_dir)                    # finished: nothing to resume
        except KeyboardInterrupt:
            interrupted = True
            stop_reason = "interrupted"
            if not finishing and guard.consistent:
                try:
                    save_train_state(state_dir, current_state())
                except KeyboardInterrupt:    # a second Ctrl-C: the state of the last validation stays
                    pass
    elapsed = time.monotonic() - start
    result = TrainResult(out_dir, best["bleu"], best["chrf"], best["loss"], best["step"], step,
                         epoch - 1 + batches_done / steps_per_epoch, elapsed, model.num_parameters(),
                         train_data.skipped, stop_reason, history)
    if interrupted:
        result.state_dir = state_dir if state_dir.is_dir() else None
        raise TrainingInterrupted(result)
    if stop_reason.startswith("reached --max-minutes"):
        result.state_dir = state_dir
    on_event(TrainEvent("end", step=step, elapsed_s=elapsed, message=stop_reason))
    return result


def average_best(model: Seq2Seq, states: list[dict[str, torch.Tensor]], validate_average: Callable[[], None]) -> None:
    """Average the weights of the kept best checkpoints; validation saves it only if it is better."""
    averaged = {name: torch.stack([state[name].float() for state in states]).mean(0) for name in states[0]}
    model.load_state_dict(averaged)
    validate_average()
