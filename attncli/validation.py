"""Validation of a model during training: dev loss, and greedy dev translations scored by BLEU/chrF."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .batch import bucketed_batches, make_batch
from .config import GPU_DECODE_BATCH_TOKENS
from .loss import sequence_loss
from .model import Seq2Seq
from .tokenizer import Tokenizer
from .training_data import EncodedCorpus


@dataclass(frozen=True)
class DevScores:
    loss: float      # mean per-token cross-entropy, no label smoothing
    bleu: float
    chrf: float


VALIDATION_BATCH_TOKENS = 3000     # greedy dev translation on the CPU, one batch at a time


@torch.inference_mode()
def evaluate_loss(model: Seq2Seq, corpus: EncodedCorpus, batch_tokens: int) -> float:
    """Mean per-token cross-entropy on `corpus` (no label smoothing)."""
    model.eval()
    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    for indices in bucketed_batches([len(s) for s in corpus.src], [len(t) for t in corpus.tgt], batch_tokens):
        batch = make_batch([corpus.src[i] for i in indices], [corpus.tgt[i] for i in indices]).to(device)
        loss, count = sequence_loss(model, batch, 0.0)
        total += float(loss) * count
        tokens += count
    return total / max(tokens, 1)


@torch.inference_mode()
def decode_corpus(model: Seq2Seq, src: Sequence[Sequence[int]], tgt_tok: Tokenizer,
                  batch_tokens: int | None = None, beam_size: int = 1, length_penalty: float = 1.0) -> list[str]:
    """Translate already-encoded sources in length-sorted batches (None: VALIDATION_BATCH_TOKENS, a
    GPU's translation batches there), with the model's float32 arithmetic (validation ranks
    checkpoints of the model itself); results in input order."""
    from .search import search
    from .search_decoder import SearchDecoder

    model.eval()
    decoder = SearchDecoder(model.decoder, "float32")       # built once: it copies the current weights
    device = next(model.parameters()).device
    if batch_tokens is None:
        batch_tokens = GPU_DECODE_BATCH_TOKENS if device.type == "cuda" else VALIDATION_BATCH_TOKENS
    outputs = [""] * len(src)
    lengths = [len(s) for s in src]
    for indices in bucketed_batches(lengths, lengths, batch_tokens):
        batch = make_batch([src[i] for i in indices]).to(device)
        for index, hypothesis in zip(indices, search(model, batch, beam_size, length_penalty, decoder)):
            outputs[index] = tgt_tok.decode(hypothesis.token_ids)
    return outputs


def bleu_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, float]:
    import sacrebleu

    return (sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score,
            sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score)


def dev_scores(model: Seq2Seq, dev: EncodedCorpus, references: Sequence[str], tgt_tok: Tokenizer,
               batch_tokens: int) -> DevScores:
    """Dev loss and greedy BLEU/chrF of `model` (left in eval mode)."""
    loss = evaluate_loss(model, dev, batch_tokens)
    bleu, chrf = bleu_chrf(decode_corpus(model, dev.src, tgt_tok), references)
    return DevScores(loss, bleu, chrf)
