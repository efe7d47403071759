"""The lexical model of Nguyen & Chiang (2018, "Improving Lexical Choice in Neural Machine Translation").

An option (`--lexical-model`) beside Luong's attention: at decoder step t the attention weights
a_t also average the source *embeddings* e_s, and that average reaches the output layer through
one small feed-forward layer, bypassing the recurrent states:

    f_t = tanh(Σ_s a_t(s) e_s)                   (embed,)
    l_t = (tanh(W_l f_t) + f_t) / 2              (embed,)  halved so it stays in [-1, 1]
    logits_t = W_o h̃_t + b_o + W_lex l_t         W_lex (vocab, embed), no bias

They reported gains for rare words and small corpora, which Sennrich & Zhang (2019) confirmed for
RNN models on low-resource data. The attention itself (its five steps) is unchanged. Search feeds
the output layer [h̃_t; l_t] and one product over [W_o, W_lex]: every input stays in [-1, 1], as
the int8 output product needs (int8.bounded_linear).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LexicalModel(nn.Module):
    """l_t from the attention weights and the source embeddings; `output` is W_lex."""

    def __init__(self, embed_size: int, vocab_size: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(embed_size, embed_size, bias=False)          # W_l
        self.output = nn.Linear(embed_size, vocab_size, bias=False)          # W_lex

    def forward(self, weights: Tensor, src_embedded: Tensor) -> Tensor:
        """weights (batch, tgt_len, src_len), src_embedded (batch, src_len, embed) -> l (batch, tgt_len, embed)."""
        averaged = torch.tanh(weights.to(src_embedded.dtype) @ src_embedded)   # f_t
        return (torch.tanh(self.hidden(averaged)) + averaged) * 0.5
