"""The encoder-decoder: bidirectional LSTM encoder, LSTM decoder, Luong dot attention.

Batch-first everywhere. `Seq2Seq.forward` is teacher-forced training/scoring over whole
sequences, and the reference for decoding: search runs the same step, one position at a time,
through search_decoder.SearchDecoder (arranged for speed; tests compare it with this forward at
every position). Without input feeding the
teacher-forced decoder runs the LSTM over the whole target in one call and attention as batched
matrix products over all steps: no Python loop over time.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .attention import LuongDotAttention
from .config import ModelConfig
from .dropout import Dropout
from .lexical import LexicalModel


@dataclass
class Encoded:
    """Encoder output for a batch of sources."""

    memory: Tensor      # (batch, src_len, hidden) encoder states, projected to the decoder size
    src_mask: Tensor    # (batch, src_len) bool, True at real tokens
    init_state: tuple[Tensor, Tensor]  # decoder (h, c), each (layers, batch, hidden)
    embedded: Tensor | None = None     # (batch, src_len, embed) source embeddings, for the lexical model only
    combined_memory: Tensor | None = None  # (batch, src_len, hidden) memory @ W_c's context half ᵀ, for search only

    def select(self, index: Tensor) -> "Encoded":
        """Rows `index` of the batch (to expand for a beam, or drop finished sentences).

        index_select, not `tensor[index]`: on a CPU it copies rows ~2.5x faster (search selects every step).
        """
        h, c = self.init_state
        embedded, combined = (None if rows is None else rows.index_select(0, index)
                              for rows in (self.embedded, self.combined_memory))
        return Encoded(self.memory.index_select(0, index), self.src_mask.index_select(0, index),
                       (h.index_select(1, index), c.index_select(1, index)), embedded, combined)


@dataclass
class DecoderState:
    """Recurrent state between decoding steps."""

    h: Tensor            # (layers, batch, hidden)
    c: Tensor            # (layers, batch, hidden)
    attentional: Tensor  # (batch, hidden) previous h̃, used only with input feeding

    def select(self, index: Tensor) -> "DecoderState":
        """Rows `index` of the batch (index_select, as Encoded.select)."""
        return DecoderState(self.h.index_select(1, index), self.c.index_select(1, index),
                            self.attentional.index_select(0, index))


@contextmanager
def skipped_initialisation() -> Iterator[None]:
    """Build modules without filling their weights with random numbers, for weights loaded next.

    Random initialisation of a 9 M parameter model takes ~0.1 s, a tenth of `attncli translate`'s
    start-up. (Building on the meta device instead would import torch._dynamo: 1.5 s.)
    """
    names = ("uniform_", "normal_", "kaiming_uniform_")
    originals = {name: getattr(nn.init, name) for name in names}
    try:
        for name in names:
            setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, function in originals.items():
            setattr(nn.init, name, function)


class Encoder(nn.Module):
    """Bidirectional LSTM over source embeddings; packed, so padding never changes real states."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(config.src_vocab_size, config.embed_size, padding_idx=config.pad_id)
        self.rnn = nn.LSTM(config.embed_size, config.hidden_size // 2, num_layers=config.encoder_layers,
                           batch_first=True, bidirectional=True,
                           dropout=config.dropout if config.encoder_layers > 1 else 0.0)
        self.project = nn.Linear(config.hidden_size, config.hidden_size)  # to the decoder's space
        self.bridge = nn.Linear(config.hidden_size, config.hidden_size)   # final states -> decoder init
        self.dropout = Dropout(config.dropout)
        self.decoder_layers = config.decoder_layers
        self.keep_embedded = config.lexical_model

    def forward(self, src_ids: Tensor, src_lengths: Tensor) -> Encoded:
        """src_ids (batch, src_len) ending in EOS then padding; src_lengths (batch,) on the CPU."""
        embedded = self.dropout(self.embed(src_ids))                     # (batch, src_len, embed)
        packed = pack_padded_sequence(embedded, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, (h_n, _) = self.rnn(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=src_ids.size(1))
        memory = self.project(self.dropout(outputs))                     # (batch, src_len, hidden)
        final = torch.cat([h_n[-2], h_n[-1]], dim=-1)                    # (batch, hidden) last layer, both directions
        h0 = torch.tanh(self.bridge(final))                              # (batch, hidden)
        h0 = h0.unsqueeze(0).expand(self.decoder_layers, -1, -1).contiguous()  # (layers, batch, hidden)
        src_mask = torch.arange(src_ids.size(1), device=src_ids.device)[None, :] < src_lengths.to(src_ids.device)[:, None]
        return Encoded(memory, src_mask, (h0, torch.zeros_like(h0)), embedded if self.keep_embedded else None)


class Decoder(nn.Module):
    """LSTM decoder with Luong dot attention; optional input feeding and lexical model.

    Its outputs are the output layer's features: the attentional states h̃, followed by the
    lexical model's l (lexical.py) when it is on.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        rnn_input = config.embed_size + (config.hidden_size if config.input_feeding else 0)
        self.embed = nn.Embedding(config.tgt_vocab_size, config.embed_size, padding_idx=config.pad_id)
        self.rnn = nn.LSTM(rnn_input, config.hidden_size, num_layers=config.decoder_layers, batch_first=True,
                           dropout=config.dropout if config.decoder_layers > 1 else 0.0)
        self.attention = LuongDotAttention(config.hidden_size, config.attention_bias)
        self.dropout = Dropout(config.dropout)
        self.output = nn.Linear(config.hidden_size, config.tgt_vocab_size)
        if config.tied_output:
            self.output.weight = self.embed.weight
        self.lexical = LexicalModel(config.embed_size, config.tgt_vocab_size) if config.lexical_model else None

    def forward(self, tgt_in: Tensor, encoded: Encoded) -> tuple[Tensor, Tensor]:
        """Teacher-forced decoding of whole targets.

        tgt_in (batch, tgt_len): BOS followed by the target pieces (EOS not included).
        Returns the output features (batch, tgt_len, features): attentional states h̃ (hidden),
        then l (embed) with the lexical model; and attention weights (batch, tgt_len, src_len).
        `logits` turns the features into scores over the vocabulary.
        """
        embedded = self.dropout(self.embed(tgt_in))                      # (batch, tgt_len, embed)
        if not self.config.input_feeding:
            queries, _ = self.rnn(embedded, encoded.init_state)          # (batch, tgt_len, hidden)
            attentional, weights = self.attention(queries, encoded.memory, encoded.src_mask)
            return self.features(attentional, weights, encoded), weights
        state = self.initial_state(encoded)
        outputs, all_weights = [], []
        for t in range(tgt_in.size(1)):                                  # input feeding is sequential
            attentional, state, weights = self._step(embedded[:, t], state, encoded)
            outputs.append(attentional)
            all_weights.append(weights)
        weights = torch.stack(all_weights, dim=1)                        # (batch, tgt_len, src_len)
        return self.features(torch.stack(outputs, dim=1), weights, encoded), weights

    def features(self, attentional: Tensor, weights: Tensor, encoded: Encoded) -> Tensor:
        """The output layer's input: h̃ (..., hidden), with the lexical model [h̃; l] (..., hidden + embed)."""
        if self.lexical is None:
            return attentional
        return torch.cat([attentional, self.lexical(weights, encoded.embedded)], dim=-1)

    def logits(self, features: Tensor) -> Tensor:
        """Scores over the target vocabulary: (..., features) -> (..., vocab)."""
        return nn.functional.linear(*self.output_layer(features))

    def output_layer(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The output layer as one product (`logits`; the training loss, loss.output_cross_entropy): inputs
        (..., in), weight (vocab, in) and bias (vocab,) with logits = inputs @ weight.T + bias; with
        the lexical model, inputs [dropout(h̃); l] and weight [W_out, W_lex]."""
        hidden = self.config.hidden_size
        inputs = self.dropout(features[..., :hidden])
        if self.lexical is None:
            return inputs, self.output.weight, self.output.bias
        lexical = features[..., hidden:]
        return (torch.cat([inputs, lexical.to(inputs.dtype)], dim=-1),
                torch.cat([self.output.weight, self.lexical.output.weight], dim=1), self.output.bias)

    def initial_state(self, encoded: Encoded) -> DecoderState:
        h, c = encoded.init_state
        return DecoderState(h, c, h.new_zeros(h.size(1), self.config.hidden_size))

    def _step(self, embedded: Tensor, state: DecoderState, encoded: Encoded) -> tuple[Tensor, DecoderState, Tensor]:
        """One step from embedded input (batch, embed): attentional (batch, hidden), state, weights (batch, src_len)."""
        rnn_input = embedded
        if self.config.input_feeding:
            rnn_input = torch.cat([embedded, state.attentional], dim=-1)
        query, (h, c) = self.rnn(rnn_input[:, None, :], (state.h, state.c))   # (batch, 1, hidden)
        attentional, weights = self.attention(query, encoded.memory, encoded.src_mask)
        attentional = attentional[:, 0]                                  # (batch, hidden)
        return attentional, DecoderState(h, c, attentional), weights[:, 0]


class Seq2Seq(nn.Module):
    """Encoder + decoder; built from a ModelConfig, nothing else."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def encode(self, src_ids: Tensor, src_lengths: Tensor) -> Encoded:
        return self.encoder(src_ids, src_lengths)

    def forward(self, src_ids: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher-forced: logits (batch, tgt_len, vocab), attention (batch, tgt_len, src_len)."""
        attentional, weights = self.decoder(tgt_in, self.encode(src_ids, src_lengths))
        return self.decoder.logits(attentional), weights

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

