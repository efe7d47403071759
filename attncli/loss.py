"""The training loss: label-smoothed cross-entropy (one fused autograd function), plus guided alignment.

The loss over a vocabulary of 8k pieces for ~4k tokens a batch is memory-bound: PyTorch's
`cross_entropy(label_smoothing=...)` makes several full (tokens, vocab) passes forward and
backward. Here the forward keeps the softmax and the backward turns it into the gradient in
place: softmax - (1 - eps) * onehot - eps / vocab. Same value and gradient, fewer passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .tokenizer import EOS_ID, PAD_ID, UNK_ID

if TYPE_CHECKING:
    from .batch import Batch
    from .model import Seq2Seq


class _SmoothedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: Tensor, gold: Tensor, smoothing: float) -> Tensor:  # type: ignore[override]
        """logits (tokens, vocab) float32, gold (tokens,): mean loss over tokens."""
        log_probs = torch.log_softmax(logits, dim=-1)                          # (tokens, vocab)
        nll = -log_probs.gather(1, gold[:, None]).squeeze(1)                   # (tokens,)
        loss = (1.0 - smoothing) * nll
        if smoothing:
            loss = loss - smoothing * log_probs.mean(dim=-1)                   # uniform part
        ctx.save_for_backward(log_probs, gold)
        ctx.smoothing = smoothing
        return loss.mean()

    @staticmethod
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        log_probs, gold = ctx.saved_tensors
        grad = log_probs.exp_()                                                # softmax, in place
        grad.scatter_add_(1, gold[:, None], torch.full_like(gold, -(1.0 - ctx.smoothing), dtype=grad.dtype)[:, None])
        if ctx.smoothing:
            grad.sub_(ctx.smoothing / grad.size(1))
        grad.mul_(grad_output / grad.size(0))
        return grad, None, None


def smoothed_cross_entropy(logits: Tensor, gold: Tensor, smoothing: float = 0.0) -> Tensor:
    """Mean over tokens of label-smoothed cross-entropy; logits (tokens, vocab), gold (tokens,)."""
    return _SmoothedCrossEntropy.apply(logits.float(), gold, float(smoothing))


def drop_words(ids: Tensor, rate: float) -> Tensor:
    """Word dropout (Sennrich & Zhang 2019, for small corpora): each real piece of `ids` (batch,
    len) becomes <unk> with probability `rate`; padding, BOS and EOS stay. The model then cannot
    lean on any one piece being there. No random numbers are drawn at rate 0."""
    if rate <= 0.0:
        return ids
    dropped = (ids > EOS_ID) & (torch.rand(ids.shape, device=ids.device) < rate)   # ids 0-3: PAD UNK BOS EOS
    return ids.masked_fill(dropped, UNK_ID)


def sequence_loss(model: "Seq2Seq", batch: "Batch", label_smoothing: float,
                  guide_weight: float = 0.0) -> tuple[Tensor, int]:
    """Mean cross-entropy per target token and the number of tokens.

    Only real (non-padding) positions go through the output layer and the softmax, the most
    expensive part of a step. With a guide in the batch, `guide_weight` times the cross-entropy
    between the guide and the attention (guided alignment, Chen et al. 2016) is added, summed
    over the guided target pieces and divided by all target tokens, like the word loss: so the
    loss stays a sum over tokens over the token count, and N processes with batch B train what
    one process with batch N·B trains (training.train_step weights each rank by its tokens).
    """
    attentional, weights = model.decoder(batch.tgt_in, model.encode(batch.src_ids, batch.src_lengths))
    real = batch.tgt_out != PAD_ID                                          # (batch, tgt_len)
    logits = model.decoder.logits(attentional[real])                        # (tokens, vocab)
    loss = smoothed_cross_entropy(logits, batch.tgt_out[real], label_smoothing)
    tokens = int(real.sum())
    if batch.guide is not None and guide_weight > 0:
        guided = batch.guide.sum(-1) > 0                                    # (batch, tgt_len)
        if bool(guided.any()):
            log_weights = torch.log(weights[guided].float().clamp(min=1e-9))  # (guided, src_len)
            loss = loss + guide_weight * -(batch.guide[guided] * log_weights).sum() / max(tokens, 1)
    return loss, tokens
