"""Padding, lengths and masks, built once per batch; length-bucketed token batches.

Sources end with EOS (so no attention row is ever fully masked); targets are split into the
decoder input (BOS + pieces) and the gold output (pieces + EOS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from .tokenizer import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Batch:
    src_ids: Tensor       # (batch, src_len) pieces + EOS, then PAD
    src_lengths: Tensor   # (batch,) including EOS
    tgt_in: Tensor | None   # (batch, tgt_len) BOS + pieces, then PAD
    tgt_out: Tensor | None  # (batch, tgt_len) pieces + EOS, then PAD
    guide: Tensor | None = None  # (batch, tgt_len, src_len) target attention per row, or a zero row (no guide)

    def to(self, device: torch.device) -> "Batch":
        """The batch on `device` (pinned and copied without waiting, for a GPU); itself on the CPU."""
        if device.type == "cpu":
            return self

        def move(tensor: Tensor | None) -> Tensor | None:
            return tensor.pin_memory().to(device, non_blocking=True) if tensor is not None else None

        return Batch(move(self.src_ids), move(self.src_lengths), move(self.tgt_in), move(self.tgt_out), move(self.guide))

    @property
    def num_tgt_tokens(self) -> int:
        return int((self.tgt_out != PAD_ID).sum()) if self.tgt_out is not None else 0


def pad(sequences: Sequence[Sequence[int]], prefix: list[int], suffix: list[int]) -> tuple[Tensor, Tensor]:
    """Right-pad `prefix + seq + suffix` for each sequence: ids (batch, max_len), lengths (batch,)."""
    rows = [prefix + list(seq) + suffix for seq in sequences]
    width = max(len(row) for row in rows)
    ids = torch.tensor([row + [PAD_ID] * (width - len(row)) for row in rows], dtype=torch.long)
    return ids, torch.tensor([len(row) for row in rows], dtype=torch.long)


def make_batch(src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]] | None = None,
               guides: Sequence[Tensor | None] | None = None) -> Batch:
    """Pad a batch; `guides[b]` (tgt_pieces, src_pieces) is pair b's guide attention, if any."""
    src_ids, src_lengths = pad(src, [], [EOS_ID])
    if tgt is None:
        return Batch(src_ids, src_lengths, None, None)
    tgt_in, _ = pad(tgt, [BOS_ID], [])
    tgt_out, _ = pad(tgt, [], [EOS_ID])
    guide = None
    if guides is not None:
        guide = torch.zeros(tgt_out.shape + (src_ids.size(1),))            # (batch, tgt_len, src_len)
        for row, matrix in enumerate(guides):
            if matrix is not None:
                guide[row, : matrix.size(0), : matrix.size(1)] = matrix
    return Batch(src_ids, src_lengths, tgt_in, tgt_out, guide)


# Pairs sorted by length together in a training epoch: a batch holds pairs of nearly one length
# (little padding) while the sort costs memory and time bounded by the chunk, not the corpus.
SORT_CHUNK = 1 << 20


def length_batches(order: np.ndarray, src_lengths: np.ndarray, tgt_lengths: np.ndarray,
                   batch_tokens: int) -> list[np.ndarray]:
    """Cut `order` (pair indices, in batching order) into consecutive batches, each holding as many
    pairs as fit in `batch_tokens` padded tokens (pairs x (longest side + 1 for EOS/BOS)), and at
    least one. Views of `order`; one NumPy scan per batch, not a Python step per pair."""
    width = np.maximum(src_lengths[order], tgt_lengths[order]).astype(np.int64) + 1   # (pairs,) padded tokens
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        most = max(1, batch_tokens // int(width[start]))         # the batch's width is at least this pair's
        window = width[start:start + most]
        cost = np.maximum.accumulate(window) * np.arange(1, len(window) + 1)   # (most,) cost of the first k pairs
        count = max(1, int(np.searchsorted(cost, batch_tokens, side="right")))
        batches.append(order[start:start + count])
        start += count
    return batches


def bucketed_batches(src_lengths: Sequence[int], tgt_lengths: Sequence[int], batch_tokens: int,
                     workers: int = 1) -> list[list[int]]:
    """Batches for decoding: sentence indices sorted by length (source, then target, then index),
    cut into batches of at most `batch_tokens` padded tokens.

    For several `workers` (a batch per thread), the batches are as many as `batch_tokens` gives,
    rounded up to a multiple of `workers`, and as even as can be: cut at the smallest cap that gives
    at most that count. A cut at `batch_tokens` itself often leaves a last batch of a sentence or two (the
    longest), which one worker searched alone, step by step, after the others had finished.
    """
    src, tgt = np.asarray(src_lengths, dtype=np.int64), np.asarray(tgt_lengths, dtype=np.int64)
    order = np.lexsort((tgt, src))
    batches = length_batches(order, src, tgt, batch_tokens)
    if workers > 1:
        wanted = -(-len(batches) // workers) * workers
        low, high = 1, batch_tokens                         # the smallest cap giving at most `wanted` batches
        while low < high:
            cap = (low + high) // 2
            if len(length_batches(order, src, tgt, cap)) <= wanted:
                high = cap
            else:
                low = cap + 1
        batches = length_batches(order, src, tgt, low)
    return [batch.tolist() for batch in batches]


def epoch_batches(src_lengths: np.ndarray, tgt_lengths: np.ndarray, batch_tokens: int, seed: int, epoch: int,
                  chunk: int = SORT_CHUNK) -> list[np.ndarray]:
    """The batches of one training epoch, a function of (seed, epoch) only, so a resumed run gets
    the same ones: the pairs in a seeded random order, sorted by length within chunks of `chunk`
    pairs (ties keep the random order), cut into token batches, and the batches shuffled."""
    rng = np.random.default_rng([seed, epoch])
    count = len(src_lengths)
    order = np.arange(count, dtype=np.int32 if count < 2**31 else np.int64)
    rng.shuffle(order)
    batches: list[np.ndarray] = []
    for start in range(0, count, chunk):
        part = order[start:start + chunk]
        part[:] = part[np.lexsort((tgt_lengths[part], src_lengths[part]))]
        batches.extend(length_batches(part, src_lengths, tgt_lengths, batch_tokens))
    return [batches[i] for i in rng.permutation(len(batches))]
