"""The training loss: the output layer and label-smoothed cross-entropy in one pass over row
chunks (`output_cross_entropy`), plus guided alignment.

The output layer over a vocabulary of 8k pieces for ~4k tokens a batch is the largest product of
an update, and its (tokens, vocab) logits are memory-bound: written by the product, read by the
softmax, the gradient written and read by two more products, each a pass over ~130 MB (float32).
Here the logits of a chunk of rows (OUTPUT_CHUNK_ELEMENTS, a few MB) are made, turned into the loss
and into the gradient softmax - (1 - eps) * onehot - eps / vocab, and multiplied back into the
gradients of the features, weight and bias while they are in cache; the full logits never exist.
The gradients are computed in the forward pass (the loss is a sum over rows) and scaled by the
upstream gradient in the backward. Measured on an Intel Xeon with AMX (2 threads, tokens 4,096,
vocabulary 8,000, hidden 256): the three bfloat16 products 49 + 26 + 29 ms whole against
15 + 14 + 19 ms in chunks of 512 rows, and the float32 log-softmax 65 ms whole against 29 ms.
(Liger-Kernel's fused linear cross-entropy and Apple's Cut Cross-Entropy do the same on GPUs.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .tokenizer import EOS_ID, PAD_ID, UNK_ID

if TYPE_CHECKING:
    from .batch import Batch
    from .model import Seq2Seq


OUTPUT_CHUNK_ELEMENTS = 1 << 22   # logits per chunk: 524 rows of an 8,000-piece vocabulary, 16 MB in float32


class _OutputCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs: Tensor, weight: Tensor, bias: Tensor | None, gold: Tensor,  # type: ignore[override]
                smoothing: float, dtype: torch.dtype, needs_grad: bool) -> Tensor:
        """inputs (tokens, features), weight (vocab, features), bias (vocab,) or None, gold (tokens,):
        mean label-smoothed cross-entropy of inputs @ weight.T + bias, products in `dtype`; the
        gradients are made only when `needs_grad` (ctx.needs_input_grad ignores torch.no_grad)."""
        tokens, vocab = inputs.size(0), weight.size(0)
        rows = max(1, OUTPUT_CHUNK_ELEMENTS // vocab)
        w = weight.to(dtype)                                                   # (vocab, features)
        total = torch.zeros((), dtype=torch.float32, device=inputs.device)
        grads = _OutputGrads(inputs, weight, bias) if needs_grad else None
        with torch.autocast(inputs.device.type, enabled=False):
            for start in range(0, tokens, rows):
                x = inputs[start:start + rows].to(dtype)                        # (rows, features)
                g = gold[start:start + rows, None]                             # (rows, 1)
                products = x @ w.t()                                           # (rows, vocab) in dtype
                logits = products.float() if bias is None else products.float().add_(bias)   # float32
                loss, grad_logits = _chunk_loss(logits, g, smoothing, dtype if grads is not None else None)
                total += loss
                if grads is not None:
                    grads.add_chunk(start, x, w, grad_logits)
        ctx.tokens, ctx.grads, ctx.input_dtype = max(tokens, 1), grads, inputs.dtype
        return total / ctx.tokens

    @staticmethod
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        scale = grad_output / ctx.tokens
        grads = ctx.grads
        bias = None if grads.bias is None else grads.bias * scale
        return (grads.inputs * scale).to(ctx.input_dtype), grads.weight * scale, bias, None, None, None, None


def _chunk_loss(logits: Tensor, gold: Tensor, smoothing: float,
                grad_dtype: torch.dtype | None) -> tuple[Tensor, Tensor | None]:
    """The summed label-smoothed cross-entropy of logits (rows, vocab) float32, overwritten, for
    gold (rows, 1); and d(sum)/d logits = softmax - (1 - eps) onehot - eps / vocab in `grad_dtype`
    (None: no gradient). Each step is one pass over the chunk, in cache; mixed-dtype operations
    would add hidden copies."""
    vocab = logits.size(1)
    shifted = logits.sub_(logits.amax(dim=-1, keepdim=True))                  # (rows, vocab), max 0
    picked = shifted.gather(1, gold)                                           # (rows, 1)
    mean = shifted.mean(dim=-1, keepdim=True) if smoothing else None           # (rows, 1)
    sums = shifted.exp_().sum(dim=-1, keepdim=True)                            # (rows, 1); shifted is exp now
    log_sums = sums.log()                                                      # log-sum-exp - max
    loss = (1.0 - smoothing) * (log_sums - picked).sum()
    if smoothing:
        loss = loss + smoothing * (log_sums - mean).sum()                       # uniform part
    if grad_dtype is None:
        return loss, None
    grad = shifted.mul_(sums.reciprocal_())                                    # softmax
    if smoothing:
        grad.sub_(smoothing / vocab)
    grad.scatter_add_(1, gold, torch.full(gold.shape, -(1.0 - smoothing), device=grad.device))
    return loss, grad.to(grad_dtype)


class _OutputGrads:
    """The summed (unscaled) float32 gradients of the output layer's inputs, weight and bias, filled chunk by chunk."""

    def __init__(self, inputs: Tensor, weight: Tensor, bias: Tensor | None) -> None:
        self.inputs = torch.empty(inputs.shape, dtype=torch.float32, device=inputs.device)   # (tokens, features)
        self.weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)   # (vocab, features)
        self.bias = None if bias is None else torch.zeros(bias.shape, dtype=torch.float32, device=bias.device)

    def add_chunk(self, start: int, x: Tensor, w: Tensor, grad: Tensor) -> None:
        """x (rows, features), w (vocab, features) and the logits' gradient grad (rows, vocab) in the product's dtype."""
        if self.bias is not None:
            self.bias += grad.sum(dim=0, dtype=torch.float32)
        self.inputs[start:start + x.size(0)] = grad @ w                        # (rows, features)
        if grad.dtype == torch.float32:
            self.weight.addmm_(grad.t(), x)                                    # (vocab, features)
        else:
            self.weight += (grad.t() @ x).float()


def output_cross_entropy(inputs: Tensor, weight: Tensor, bias: Tensor | None, gold: Tensor,
                         smoothing: float = 0.0) -> Tensor:
    """Mean over tokens of label-smoothed cross-entropy of the logits inputs @ weight.T + bias,
    computed chunk by chunk without the full (tokens, vocab) logits. inputs (tokens, features),
    gold (tokens,). Under autocast the products run in its dtype; the softmax and the sums in float32."""
    device = inputs.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else torch.float32
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (inputs, weight, bias))
    return _OutputCrossEntropy.apply(inputs, weight, bias, gold, float(smoothing), dtype, needs_grad)


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
    loss = output_cross_entropy(*model.decoder.output_layer(attentional[real]), batch.tgt_out[real], label_smoothing)
    tokens = int(real.sum())
    if batch.guide is not None and guide_weight > 0:
        guided = batch.guide.sum(-1) > 0                                    # (batch, tgt_len)
        if bool(guided.any()):
            log_weights = torch.log(weights[guided].float().clamp(min=1e-9))  # (guided, src_len)
            loss = loss + guide_weight * -(batch.guide[guided] * log_weights).sum() / max(tokens, 1)
    return loss, tokens
