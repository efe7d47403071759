"""Luong global attention with the dot score (Luong, Pham & Manning 2015, section 3.1).

At every decoder step t, with decoder state h_t and encoder states h̄_s:
  (1) score(h_t, h̄_s) = h_t · h̄_s                      dot product with every encoder state
  (2) a_t = softmax(score(h_t, ·))                      attention distribution over the source
  (3) c_t = Σ_s a_t(s) h̄_s                              context vector (attention value)
  (4) [c_t; h_t]                                        concatenate context and decoder state
  (5) h̃_t = tanh(W_c [c_t; h_t] (+ b_c))                attentional output, used to predict y_t
Luong's W_c has no bias; `--attention-bias` adds one (b_c). Padding is masked with -inf before the softmax, so it gets exactly zero weight.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LuongDotAttention(nn.Module):
    """The five steps above; keeps no state between calls, so it serves one step or many."""

    def __init__(self, hidden_size: int, bias: bool = False) -> None:
        super().__init__()
        self.combine = nn.Linear(2 * hidden_size, hidden_size, bias=bias)   # W_c (and b_c) of step (5)

    def forward(self, query: Tensor, memory: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Attend from decoder states to encoder states.

        query (batch, tgt_len, hidden): decoder states h_t;
        memory (batch, src_len, hidden): encoder states h̄_s;
        src_mask (batch, src_len) bool, True at real tokens (every row keeps at least its EOS).
        Returns attentional outputs h̃ (batch, tgt_len, hidden) and weights a (batch, tgt_len, src_len).
        """
        weights = self.weights(query, memory, src_mask)               # (1)-(2) (batch, tgt_len, src_len)
        context = weights @ memory                                     # (3) (batch, tgt_len, hidden)
        combined = torch.cat([context, query], dim=-1)                 # (4) (batch, tgt_len, 2*hidden)
        attentional = torch.tanh(self.combine(combined))               # (5) (batch, tgt_len, hidden)
        return attentional, weights

    @staticmethod
    def weights(query: Tensor, memory: Tensor, src_mask: Tensor) -> Tensor:
        """Steps (1)-(2) alone: the attention distribution (batch, tgt_len, src_len), shapes as `forward`."""
        scores = query @ memory.transpose(1, 2)                        # (1) (batch, tgt_len, src_len)
        scores = scores.masked_fill(~src_mask[:, None, :], float("-inf"))
        return torch.softmax(scores, dim=-1)                           # (2) each row sums to 1
