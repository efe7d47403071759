"""Padding, lengths and masks, built once per batch; length-bucketed token batches.

Sources end with EOS (so no attention row is ever fully masked); targets are split into the
decoder input (BOS + pieces) and the gold output (pieces + EOS).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

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


def batch_cost(num_sentences: int, max_src: int, max_tgt: int) -> int:
    """Tokens a batch occupies, padding included: sentences x longest side (+1 for EOS/BOS)."""
    return num_sentences * (max(max_src, max_tgt) + 1)


def bucketed_batches(src_lengths: Sequence[int], tgt_lengths: Sequence[int], batch_tokens: int,
                     rng: random.Random | None = None) -> list[list[int]]:
    """Group sentence indices into batches of at most `batch_tokens` padded tokens.

    Sentences are sorted by length (random order among equal lengths), so a batch holds
    sentences of nearly one length and little padding; the batch order is then shuffled by
    `rng`. Without `rng` the order is by length (for decoding, where order does not matter).
    """
    order = list(range(len(src_lengths)))
    keys = [rng.random() for _ in order] if rng else [0.0] * len(order)
    order.sort(key=lambda i: (src_lengths[i], tgt_lengths[i], keys[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    max_src = max_tgt = 0
    for index in order:
        new_src = max(max_src, src_lengths[index])
        new_tgt = max(max_tgt, tgt_lengths[index])
        if current and batch_cost(len(current) + 1, new_src, new_tgt) > batch_tokens:
            batches.append(current)
            current, new_src, new_tgt = [], src_lengths[index], tgt_lengths[index]
        current.append(index)
        max_src, max_tgt = new_src, new_tgt
    if current:
        batches.append(current)
    if rng:
        rng.shuffle(batches)
    return batches
