"""Train a model from a parallel corpus: tokenizer, batches, optimisation, validation, saving.

`train()` never prints; it reports through `on_event(TrainEvent)` so the caller decides how to
show progress (the CLI draws a rich progress bar on stderr). The best model so far is always on
disk, written atomically, so an interruption loses at most the work since the last validation.
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from .batch import Batch, bucketed_batches, make_batch
from .config import ModelConfig, TrainConfig
from .corpus import SentencePair, read_pairs
from .errors import CorpusError
from .loss import smoothed_cross_entropy
from .model import Seq2Seq
from .modelfile import save_model
from .search import greedy_search
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


class TrainingInterrupted(Exception):
    """Raised when Ctrl-C/SIGTERM stopped training; the best model so far is saved."""

    def __init__(self, result: TrainResult) -> None:
        super().__init__("training interrupted")
        self.result = result


@dataclass
class EncodedCorpus:
    src: list[list[int]]
    tgt: list[list[int]]
    skipped: int = 0


def train_tokenizers(pairs: Sequence[SentencePair], config: TrainConfig) -> tuple[Tokenizer, Tokenizer]:
    """One joint SentencePiece model for both sides, or one per side."""
    if config.joint_vocab:
        joint = Tokenizer.train((text for pair in pairs for text in (pair.source, pair.target)), config.vocab_size)
        return joint, joint
    src = Tokenizer.train((pair.source for pair in pairs), config.vocab_size)
    tgt = Tokenizer.train((pair.target for pair in pairs), config.vocab_size)
    return src, tgt


def encode_corpus(pairs: Sequence[SentencePair], src_tok: Tokenizer, tgt_tok: Tokenizer,
                  max_len: int | None = None) -> EncodedCorpus:
    """Piece ids of every pair; pairs with a side longer than `max_len` pieces are left out."""
    src = src_tok.encode_batch([pair.source for pair in pairs])
    tgt = tgt_tok.encode_batch([pair.target for pair in pairs])
    if max_len is None:
        return EncodedCorpus(src, tgt)
    keep = [i for i in range(len(src)) if len(src[i]) <= max_len and len(tgt[i]) <= max_len]
    return EncodedCorpus([src[i] for i in keep], [tgt[i] for i in keep], len(src) - len(keep))


def sequence_loss(model: Seq2Seq, batch: Batch, label_smoothing: float) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy per target token and the number of tokens.

    Only real (non-padding) positions go through the output layer and the softmax, the most
    expensive part of a step.
    """
    attentional, _ = model.decoder(batch.tgt_in, model.encode(batch.src_ids, batch.src_lengths))
    real = batch.tgt_out != PAD_ID                                          # (batch, tgt_len)
    logits = model.decoder.logits(attentional[real])                        # (tokens, vocab)
    return smoothed_cross_entropy(logits, batch.tgt_out[real], label_smoothing), int(real.sum())


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
    """Translate already-encoded sources in length-sorted batches; results in input order."""
    from .search import search

    model.eval()
    outputs = [""] * len(src)
    lengths = [len(s) for s in src]
    for indices in bucketed_batches(lengths, lengths, batch_tokens):
        batch = make_batch([src[i] for i in indices])
        for index, hypothesis in zip(indices, search(model, batch, beam_size, length_penalty)):
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


def train(corpus_path: Path | str, dev_path: Path | str | None, out_dir: Path | str, config: TrainConfig,
          on_event: Callable[[TrainEvent], None] = lambda event: None) -> TrainResult:
    """Train a model on `corpus_path`, validate on `dev_path`, keep the best in `out_dir`."""
    config.validate()
    start = time.monotonic()
    torch.set_num_threads(config.threads or os.cpu_count() or 1)
    set_seed(config.seed)
    out_dir = Path(out_dir)

    on_event(TrainEvent("start", message=f"reading {corpus_path}"))
    train_pairs = read_pairs(corpus_path)
    random.Random(config.seed).shuffle(train_pairs)         # the files are sorted by length
    if dev_path is None:
        train_pairs, dev_pairs = split_dev(train_pairs)
    else:
        dev_pairs = read_pairs(dev_path)
    on_event(TrainEvent("start", message=f"training SentencePiece ({config.vocab_size} pieces)"))
    src_tok, tgt_tok = train_tokenizers(train_pairs, config)
    train_data = encode_corpus(train_pairs, src_tok, tgt_tok, config.max_len)
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
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, fused=True)
    src_lengths = [len(s) for s in train_data.src]
    tgt_lengths = [len(t) for t in train_data.tgt]
    steps_per_epoch = len(bucketed_batches(src_lengths, tgt_lengths, config.batch_tokens))
    total_steps = steps_per_epoch * config.epochs
    time_limit = config.max_minutes * 60.0 if config.max_minutes > 0 else math.inf

    lr_scale = 1.0
    step = 0
    best = {"bleu": -1.0, "chrf": 0.0, "loss": math.inf, "step": 0}
    best_states: list[dict[str, torch.Tensor]] = []
    history: list[dict] = []
    bad_validations = 0
    stop_reason = f"reached --epochs {config.epochs}"
    window_tokens, window_start = 0, time.monotonic()
    tokens_per_s = 0.0
    info = {"train_config": config.to_dict(), "corpus": str(corpus_path), "dev": str(dev_path),
            "defaults": {"beam_size": config.beam_size, "length_penalty": config.length_penalty}}

    def learning_rate() -> float:
        warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
        return config.learning_rate * warmup * lr_scale

    def validate(epoch: int) -> bool:
        """Dev loss, greedy BLEU/chrF; save the model if BLEU improved. Returns True to stop."""
        nonlocal lr_scale, bad_validations
        dev_loss = evaluate_loss(model, dev_data, config.batch_tokens)
        hypotheses = decode_corpus(model, dev_data.src, tgt_tok)
        bleu, chrf = bleu_chrf(hypotheses, dev_references)
        model.train()
        improved = (bleu, -dev_loss) > (best["bleu"], -best["loss"])
        record = {"step": step, "epoch": epoch, "elapsed_s": round(time.monotonic() - start, 1),
                  "dev_loss": round(dev_loss, 4), "dev_bleu": round(bleu, 2), "dev_chrf": round(chrf, 2)}
        history.append(record)
        if improved:
            best.update(bleu=bleu, chrf=chrf, loss=dev_loss, step=step)
            best_states.append(copy.deepcopy(model.state_dict()))
            del best_states[: -config.average_last]
            bad_validations = 0
            save_best(epoch)
        else:
            bad_validations += 1
            lr_scale *= config.lr_decay
        on_event(TrainEvent("validation", epoch=epoch, step=step, dev_loss=dev_loss, dev_bleu=bleu,
                            dev_chrf=chrf, improved=improved, elapsed_s=time.monotonic() - start))
        return bad_validations >= config.patience

    def save_best(epoch: int) -> None:
        summary = dict(info, best={"dev_bleu": round(best["bleu"], 2), "dev_chrf": round(best["chrf"], 2),
                                   "dev_loss": round(best["loss"], 4), "step": best["step"], "epoch": epoch},
                       training_seconds=round(time.monotonic() - start, 1), history=history)
        save_model(out_dir, model, src_tok, tgt_tok, summary, fp16=config.save_fp16)

    model.train()
    epoch = 0
    interrupted = False
    try:
        for epoch in range(1, config.epochs + 1):
            rng = random.Random(config.seed * 1000 + epoch)
            batches = bucketed_batches(src_lengths, tgt_lengths, config.batch_tokens, rng)
            stop = False
            for indices in batches:
                batch = make_batch([train_data.src[i] for i in indices], [train_data.tgt[i] for i in indices])
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                    loss, tokens = sequence_loss(model, batch, config.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
                optimizer.step()
                step += 1
                window_tokens += tokens
                now = time.monotonic()
                if now - window_start >= 2.0:
                    tokens_per_s = window_tokens / (now - window_start)
                    window_tokens, window_start = 0, now
                elapsed = now - start
                steps_left = total_steps - step
                seconds_per_step = elapsed / step
                on_event(TrainEvent("step", epoch=epoch, step=step, total_steps=total_steps, loss=float(loss.detach()),
                                    tokens_per_s=tokens_per_s, elapsed_s=elapsed, learning_rate=learning_rate(),
                                    seconds_left=min(steps_left * seconds_per_step, max(time_limit - elapsed, 0))))
                if config.valid_every and step % config.valid_every == 0 and validate(epoch):
                    stop, stop_reason = True, f"no dev improvement in {config.patience} validations"
                if elapsed >= time_limit:
                    stop, stop_reason = True, f"reached --max-minutes {config.max_minutes:g}"
                if stop:
                    break
            if not stop and not config.valid_every and validate(epoch):
                stop, stop_reason = True, f"no dev improvement in {config.patience} validations"
            elif stop and stop_reason.startswith("reached --max-minutes") and (not history or history[-1]["step"] != step):
                validate(epoch)
            if stop:
                break
        if len(best_states) > 1:
            average_best(model, best_states, validate_average=lambda: validate(epoch))
    except KeyboardInterrupt:
        interrupted = True
        stop_reason = "interrupted"
    elapsed = time.monotonic() - start
    result = TrainResult(out_dir, best["bleu"], best["chrf"], best["loss"], best["step"], step,
                         epoch - 1 + (1.0 if not interrupted else 0.0), elapsed, model.num_parameters(),
                         train_data.skipped, stop_reason, history)
    if interrupted:
        raise TrainingInterrupted(result)
    on_event(TrainEvent("end", step=step, elapsed_s=elapsed, message=stop_reason))
    return result


def average_best(model: Seq2Seq, states: list[dict[str, torch.Tensor]], validate_average: Callable[[], bool]) -> None:
    """Average the weights of the kept best checkpoints; validation saves it only if it is better."""
    averaged = {name: torch.stack([state[name].float() for state in states]).mean(0) for name in states[0]}
    model.load_state_dict(averaged)
    validate_average()
