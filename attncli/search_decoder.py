"""The decoder step as search runs it: model.Decoder's arithmetic, arranged for speed.

- Input gates from a table. The first LSTM layer adds W_ih x_t + b_ih + b_hh to its gates, where
  x_t is the previous piece's embedding: a function of the piece alone. So it is computed once for
  every vocabulary entry, a (vocab, 4*hidden) table, and each step gathers rows of it instead of
  multiplying (40% of the LSTM's arithmetic with 256-d embeddings and 384-d states).
- The LSTM cell is written out (gates i, f, g, o in torch.nn.LSTM's order).
- The products whose inputs lie in [-1, 1] go through int8.bounded_linear: the recurrent product
  on h (with the fed-back h̃ under input feeding, and the layer below's h in deeper decoders) and
  the output layer on h̃ ([h̃; l] with the lexical model). With precision "int8" (the default for
  translation) they are int8 with a fixed scale; with "float32" they are the model's own float
  arithmetic. The attention (its five steps, attention.py) always runs in float32.
- Step (5)'s product split in two. W_c [c; h] = W_cc c + W_ch h, and c = Σ_s a(s) h̄_s, so
  W_cc c = Σ_s a(s) (W_cc h̄_s): `prepare` puts every encoder state through W_cc once per
  sentence (Encoded.combined_memory), and each step only weighs those rows with the attention
  instead of multiplying every hypothesis's c by W_cc (a tenth of search's time on AMX).
numpy_runtime.NumpySeq2Seq.step_logits is the same step in NumPy.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from .config import DEFAULT_PRECISION
from .int8 import FloatLinear, bounded_linear
from .model import Decoder, DecoderState, Encoded


class SearchDecoder:
    """The decoder step and output layer of model.Decoder, for search; built once per loaded model and precision."""

    def __init__(self, decoder: Decoder, precision: str = DEFAULT_PRECISION) -> None:
        config = decoder.config
        self.decoder = decoder
        rnn = decoder.rnn
        with torch.inference_mode():
            embed = config.embed_size
            weight_ih_0 = rnn.weight_ih_l0.float()
            # (vocab, 4*hidden): the embedding part of layer 0's input product, plus both biases.
            self.input_gates = torch.addmm(rnn.bias_ih_l0.float() + rnn.bias_hh_l0.float(),
                                           decoder.embed.weight.float(), weight_ih_0[:, :embed].t())
            # Layer 0: [h̃_prev (input feeding only); h] -> gates; layer l > 0: [h of layer l-1; h] -> gates.
            self.recurrent = [bounded_linear(torch.cat([weight_ih_0[:, embed:], rnn.weight_hh_l0.float()], dim=1), None, precision)]
            for layer in range(1, config.decoder_layers):
                weight = torch.cat([getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")], dim=1)
                bias = getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")
                self.recurrent.append(bounded_linear(weight.float(), bias.float(), precision))
            output = decoder.output.weight.float()                                 # (vocab, hidden)
            if decoder.lexical is not None:                                       # [W_o, W_lex] on [h̃; l]
                output = torch.cat([output, decoder.lexical.output.weight.float()], dim=1)
            self.output = bounded_linear(output, decoder.output.bias.float(), precision)
            combine, hidden = decoder.attention.combine, config.hidden_size
            self.context_combine_t = combine.weight[:, :hidden].float().t().contiguous()   # (hidden, hidden): W_ccᵀ
            self.query_combine = FloatLinear(combine.weight[:, hidden:], combine.bias)     # h -> W_ch h (+ b_c)
        self.input_feeding = config.input_feeding

    def prepare(self, encoded: Encoded) -> Encoded:
        """`encoded` with combined_memory (the encoder states through W_cc), which `step` reads."""
        return replace(encoded, combined_memory=encoded.memory @ self.context_combine_t)

    def initial_state(self, encoded: Encoded) -> DecoderState:
        return self.decoder.initial_state(encoded)

    def step(self, prev_ids: Tensor, state: DecoderState, encoded: Encoded, beam: int = 1) -> tuple[Tensor, DecoderState]:
        """The output features (rows, features) after `prev_ids` (rows,), and the new state;
        features are h̃ (model.Decoder.features), with the lexical model [h̃; l].

        Rows come in blocks of `beam` hypotheses of one sentence; `encoded` (from `prepare`) holds
        one entry per sentence, so each sentence's encoder states are read once for all its hypotheses.
        """
        assert encoded.combined_memory is not None, "step reads SearchDecoder.prepare's Encoded"
        new_h, new_c = [], []
        for layer, recurrent in enumerate(self.recurrent):
            h, c = state.h[layer], state.c[layer]                                # (rows, hidden)
            if layer == 0:
                inputs = torch.cat([state.attentional, h], dim=1) if self.input_feeding else h
                gates = recurrent(inputs).add_(self.input_gates.index_select(0, prev_ids))  # (rows, 4*hidden)
            else:
                gates = recurrent(torch.cat([new_h[-1], h], dim=1))
            h, c = lstm_cell(gates, c)
            new_h.append(h)
            new_c.append(c)
        query = new_h[-1].view(-1, beam, new_h[-1].size(-1))                    # (sentences, beam, hidden)
        weights = self.decoder.attention.weights(query, encoded.memory, encoded.src_mask)   # (1)-(2) (sentences, beam, src_len)
        # (3)-(5): h̃ = tanh(Σ_s a(s) (W_cc h̄_s) + W_ch h (+ b_c))                 (sentences, beam, hidden)
        attentional = torch.tanh(torch.baddbmm(self.query_combine(new_h[-1]).view_as(query), weights, encoded.combined_memory))
        features = self.decoder.features(attentional, weights, encoded)         # (sentences, beam, features)
        attentional = attentional.view(-1, attentional.size(-1))                # (rows, hidden)
        return features.view(-1, features.size(-1)), DecoderState(torch.stack(new_h), torch.stack(new_c), attentional)

    def logits(self, features: Tensor) -> Tensor:
        """(rows, features) -> float32 logits (rows, vocab) (under a GPU's autocast too)."""
        return self.output(features).float()


def lstm_cell(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """torch.nn.LSTM's cell from its summed gate inputs (rows, 4*hidden): new h and c (rows, hidden)."""
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f).mul_(c).add_(torch.sigmoid(i).mul_(torch.tanh(g)))
    return torch.sigmoid(o).mul_(torch.tanh(c)), c
