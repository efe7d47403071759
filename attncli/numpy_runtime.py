"""The same model and search in NumPy, for translating or aligning one sentence without torch.

`attncli translate "…"` and `attncli inspect alignment "…"` spend most of their time starting
up: importing torch takes 1.1-1.5 s on a 2-core machine, decoding one sentence a few milliseconds. This module runs a trained model from
its safetensors weights with NumPy (imported in ~0.1 s): the encoder, the decoder step of
`attncli.search_decoder` (int8 or float32 products, Luong dot attention) and the beam search of
`attncli.search`, step for step, so it gives the same translations (tests/test_numpy_runtime.py
compares both on models of every shape), and the teacher-forced attention that `inspect
alignment` shows, step by step with every quantity (AttentionStep) for `inspect step`. It serves one sentence at a time; batches and training stay with torch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .config import DEFAULT_PRECISION, EXACT_FLOAT32_INPUTS, INT8_LEVELS as LEVELS
from .modelfile import read_model_folder, read_weights
from .scoring import length_limit, normalize
from .tokenizer import BOS_ID, EOS_ID
from .translator import Translator


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)      # no overflow warning for large negative x


def lstm_step(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
              bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step as torch.nn.LSTM computes it (gates i, f, g, o). x (rows, in), h and c (rows, hidden)."""
    return lstm_cell(x @ w_ih.T + h @ w_hh.T + bias, c)


def lstm_cell(gates: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New h and c (rows, hidden) from the summed gate inputs (rows, 4*hidden)."""
    i, f, g, o = np.split(gates, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


class FloatWeights:
    """x Wᵀ (+ b) in float32 (int8.FloatLinear)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None) -> None:
        self.weight_t, self.bias = np.ascontiguousarray(weight.T), bias

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = x @ self.weight_t
        return out if self.bias is None else out + self.bias


class Int8Weights:
    """int8.Int8Linear's formula for x in [-1, 1]: exact integer sums (as float32) · s + bias."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None) -> None:
        scale = np.maximum(np.abs(weight).max(axis=1), np.float32(1e-12)) / np.float32(LEVELS)
        exact = np.float32 if weight.shape[1] <= EXACT_FLOAT32_INPUTS else np.float64
        integers = np.clip(np.rint(weight / scale[:, None]), -LEVELS, LEVELS)
        self.integer_weight_t = np.ascontiguousarray(integers.T, dtype=exact)   # (in, out)
        self.row_scale = scale * np.float32(1.0 / LEVELS)                        # (out,): s
        self.bias = bias

    def __call__(self, x: np.ndarray) -> np.ndarray:
        levels = np.rint(x * np.float32(LEVELS)).astype(self.integer_weight_t.dtype)
        sums = (levels @ self.integer_weight_t).astype(np.float32)              # exact integer sums
        out = sums * self.row_scale
        return out if self.bias is None else out + self.bias


@dataclass
class Encoded:
    memory: np.ndarray                 # (src_len, hidden) encoder states projected to the decoder size
    init_h: np.ndarray                 # (layers, hidden)
    embedded: np.ndarray               # (src_len, embed) source embeddings (read by the lexical model)


class NumpySeq2Seq:
    """Inference-only twin of model.Seq2Seq over a state dict of float32 arrays."""

    def __init__(self, config, weights: dict[str, np.ndarray], precision: str = DEFAULT_PRECISION) -> None:
        self.config = config
        self.w = w = weights
        if config.tied_output:
            w["decoder.output.weight"] = weights["decoder.embed.weight"]
        # The decoder as search_decoder.SearchDecoder arranges it.
        linear = {"int8": Int8Weights, "float32": FloatWeights}[precision]
        embed = config.embed_size
        w_ih, w_hh, bias = self._lstm_params("decoder.rnn", 0)
        self.input_weight, self.input_bias = w_ih[:, :embed], bias              # the embedding part of layer 0
        self.recurrent = [linear(np.concatenate([w_ih[:, embed:], w_hh], axis=1), None)]
        for layer in range(1, config.decoder_layers):
            w_ih, w_hh, bias = self._lstm_params("decoder.rnn", layer)
            self.recurrent.append(linear(np.concatenate([w_ih, w_hh], axis=1), bias))
        output = w["decoder.output.weight"]                                      # (vocab, hidden)
        if config.lexical_model:                                                # [W_o, W_lex] on [h̃; l] (lexical.py)
            output = np.concatenate([output, w["decoder.lexical.output.weight"]], axis=1)
        self.output = linear(output, w["decoder.output.bias"])
        self.combine = FloatWeights(w["decoder.attention.combine.weight"], w.get("decoder.attention.combine.bias"))

    def _lstm_params(self, prefix: str, layer: int, suffix: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = self.w
        name = f"l{layer}{suffix}"
        return (w[f"{prefix}.weight_ih_{name}"], w[f"{prefix}.weight_hh_{name}"],
                w[f"{prefix}.bias_ih_{name}"] + w[f"{prefix}.bias_hh_{name}"])

    def encode(self, src_ids: list[int]) -> Encoded:
        """Bidirectional LSTM over one source (EOS included); memory and the decoder's initial h."""
        cfg, w = self.config, self.w
        inputs = embedded = w["encoder.embed.weight"][src_ids]                   # (src_len, embed)
        size = cfg.hidden_size // 2
        for layer in range(cfg.encoder_layers):
            outputs = []
            finals = []
            for suffix, order in (("", range(len(src_ids))), ("_reverse", reversed(range(len(src_ids))))):
                w_ih, w_hh, bias = self._lstm_params("encoder.rnn", layer, suffix)
                h, c = np.zeros((1, size), np.float32), np.zeros((1, size), np.float32)
                states = [np.empty(0)] * len(src_ids)
                for t in order:
                    h, c = lstm_step(inputs[t][None], h, c, w_ih, w_hh, bias)
                    states[t] = h[0]
                outputs.append(np.stack(states))                               # (src_len, size)
                finals.append(h[0])
            inputs = np.concatenate(outputs, axis=-1)                          # (src_len, hidden)
        memory = inputs @ w["encoder.project.weight"].T + w["encoder.project.bias"]
        final = np.concatenate(finals)                                         # (hidden,) both directions
        h0 = np.tanh(final @ w["encoder.bridge.weight"].T + w["encoder.bridge.bias"])
        return Encoded(memory, np.repeat(h0[None], cfg.decoder_layers, axis=0), embedded)

    def step(self, prev_ids: np.ndarray, h: np.ndarray, c: np.ndarray, attentional: np.ndarray,
             encoded: Encoded) -> tuple[np.ndarray, np.ndarray, np.ndarray, AttentionStep]:
        """One decoder step for `rows` hypotheses of one sentence.

        prev_ids (rows,); h, c (layers, rows, hidden); attentional (rows, hidden), the previous h̃
        (used with input feeding); `encoded`, the sentence's. Returns logits (rows, vocab), the
        new h, c, and the attention's five steps (AttentionStep).
        """
        cfg, w = self.config, self.w
        new_h, new_c = np.empty_like(h), np.empty_like(c)
        for layer, recurrent in enumerate(self.recurrent):
            if layer == 0:
                inputs = np.concatenate([attentional, h[0]], axis=-1) if cfg.input_feeding else h[0]
                embedded = w["decoder.embed.weight"][prev_ids]                  # (rows, embed)
                gates = recurrent(inputs) + (embedded @ self.input_weight.T + self.input_bias)
            else:
                gates = recurrent(np.concatenate([new_h[layer - 1], h[layer]], axis=-1))
            new_h[layer], new_c[layer] = lstm_cell(gates, c[layer])
        attended = self.attend(new_h[-1], encoded.memory)
        features = attended.attentional                                         # model.Decoder.features
        if self.config.lexical_model:
            attended.lexical = self.lexical(attended.weights, encoded.embedded)
            features = np.concatenate([features, attended.lexical], axis=-1)    # [h̃; l]
        return self.output(features), new_h, new_c, attended

    def lexical(self, weights: np.ndarray, src_embedded: np.ndarray) -> np.ndarray:
        """lexical.LexicalModel: l (rows, embed) from weights (rows, src_len) and embeddings (src_len, embed)."""
        averaged = np.tanh(weights @ src_embedded)                              # f_t
        return (np.tanh(averaged @ self.w["decoder.lexical.hidden.weight"].T) + averaged) * np.float32(0.5)

    def step_logits(self, prev_ids: np.ndarray, h: np.ndarray, c: np.ndarray, attentional: np.ndarray,
                    encoded: Encoded) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`step`, returning logits (rows, vocab), the new h, c, attentional (rows, hidden) and the
        attention weights (rows, src_len)."""
        logits, new_h, new_c, attended = self.step(prev_ids, h, c, attentional, encoded)
        return logits, new_h, new_c, attended.attentional, attended.weights

    def attend(self, query: np.ndarray, memory: np.ndarray) -> AttentionStep:
        """Luong dot attention (attention.py's steps (1)-(5)) from decoder states query (rows,
        hidden) over memory (src_len, hidden), one sentence: no padding, so nothing is masked."""
        scores = query @ memory.T                                               # (1) (rows, src_len)
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)                          # (2)
        context = weights @ memory                                              # (3) (rows, hidden)
        combined = np.concatenate([context, query], axis=-1)                    # (4)
        attentional = np.tanh(self.combine(combined))                          # (5)
        return AttentionStep(query, memory, scores, weights, context, combined, attentional)

    def teacher_forced_steps(self, src_ids: list[int], tgt_ids: list[int]) -> Iterator[tuple[np.ndarray, AttentionStep]]:
        """The model reading BOS + tgt_ids (src_ids end with EOS), step by step: for step t, the
        logits (1, vocab) that predict piece t (EOS after the last) and that step's attention."""
        encoded = self.encode(src_ids)
        h = encoded.init_h[:, None]                                             # (layers, 1, hidden)
        c = np.zeros_like(h)
        attentional = np.zeros((1, self.config.hidden_size), np.float32)
        for prev in [BOS_ID] + tgt_ids:
            logits, h, c, attended = self.step(np.array([prev]), h, c, attentional, encoded)
            attentional = attended.attentional
            yield logits, attended

    def teacher_forced(self, src_ids: list[int], tgt_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """search.teacher_forced_attention for one pair: the model reads BOS + tgt_ids.

        src_ids end with EOS. Returns weights (len(tgt_ids) + 1, src_len), row t being the
        attention that predicted piece t (the last row predicts EOS), and the log-probabilities
        (len(tgt_ids) + 1,) of the given pieces and the final EOS.
        """
        weights, log_probs = [], []
        for (logits, attended), gold in zip(self.teacher_forced_steps(src_ids, tgt_ids), tgt_ids + [EOS_ID]):
            log_probs.append(log_softmax(logits)[0, gold])
            weights.append(attended.weights[0])
        return np.stack(weights), np.array(log_probs, dtype=np.float32)


@dataclass
class AttentionStep:
    """The quantities of one attention step (attention.py's docstring), one row per decoder state."""

    query: np.ndarray                  # (rows, hidden) h_t, the decoder's top-layer state
    memory: np.ndarray                 # (src_len, hidden) h̄_s, the projected encoder states
    scores: np.ndarray                 # (1) (rows, src_len) h_t · h̄_s
    weights: np.ndarray                # (2) (rows, src_len) softmax of the scores
    context: np.ndarray                # (3) (rows, hidden) c_t = Σ_s a_t(s) h̄_s
    combined: np.ndarray               # (4) (rows, 2*hidden) [c_t; h_t]
    attentional: np.ndarray            # (5) (rows, hidden) h̃_t = tanh(W_c [c_t; h_t] (+ b_c))
    lexical: np.ndarray | None = None  # (rows, embed) l_t of the lexical model (lexical.py), if the model has one


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def beam_search_one(model: NumpySeq2Seq, src_ids: list[int], beam_size: int, length_penalty: float) -> list[int]:
    """Output pieces of one sentence: `search.beam_search` (and greedy search for beam 1) for one row.

    Each step takes the 2*beam best extensions; those ending in EOS among the first `beam` are
    finished hypotheses, the best `beam` others stay alive; done with `beam` finished ones or at
    the length limit, where only EOS may follow.
    """
    k = beam_size
    encoded = model.encode(src_ids)
    limit = length_limit(len(src_ids))
    hidden = model.config.hidden_size
    h = encoded.init_h[:, None]                                                 # (layers, rows, hidden): 1 row, then k
    c = np.zeros_like(h)
    attentional = np.zeros((1, hidden), np.float32)
    scores = np.zeros(1, np.float32)                                            # BOS alone starts alive
    prev = np.full(1, BOS_ID)
    history: list[list[int]] = [[]]
    finished: list[tuple[float, float, list[int]]] = []                         # (normalised, score, pieces)
    for step in range(limit + 1):
        logits, h, c, attentional, _ = model.step_logits(prev, h, c, attentional, encoded)
        log_probs = log_softmax(logits)                                         # (rows, vocab)
        if step == limit:                                                       # only EOS may follow
            eos = log_probs[:, EOS_ID].copy()
            log_probs[:] = -np.inf
            log_probs[:, EOS_ID] = eos
        width = min(2 * k, log_probs.shape[-1])
        candidates = (scores[:, None] + log_probs).reshape(-1)                  # (rows*vocab,)
        top = np.argpartition(-candidates, width - 1)[:width]                   # the best `width`, unordered
        top = top[np.lexsort((top, -candidates[top]))]                          # best first; ties: lower index
        top_scores, origin, token = candidates[top], top // log_probs.shape[-1], top % log_probs.shape[-1]
        for position in range(min(k, width)):
            if token[position] == EOS_ID and np.isfinite(top_scores[position]):
                pieces = history[origin[position]]
                score = float(top_scores[position])
                finished.append((normalize(score, len(pieces), length_penalty), score, pieces))
        if len(finished) >= k or step == limit:
            break
        alive = [position for position in range(width) if token[position] != EOS_ID][:k]
        rows = origin[alive]
        scores, prev = top_scores[alive], token[alive]
        history = [history[row] + [int(piece)] for row, piece in zip(rows, prev)]
        h, c, attentional = h[:, rows], c[:, rows], attentional[rows]
    return max(finished, key=lambda hyp: hyp[0])[2]


class NumpyTranslator(Translator):
    """A model folder run in NumPy, torch-free (see the module docstring); translator.Translator's API."""

    runtime = "numpy"

    def __init__(self, directory: Path, precision: str = DEFAULT_PRECISION) -> None:
        folder = read_model_folder(directory)
        super().__init__(folder.src_tokenizer, folder.tgt_tokenizer, folder.model_info, precision)
        self.weights = read_weights(folder, framework="numpy")
        self.model = NumpySeq2Seq(folder.config, self.weights, precision)      # search
        self.config = folder.config

    def search_ids(self, encoded: Sequence[list[int] | None], beam: int, alpha: float,
                   batch_tokens: int) -> list[list[int] | None]:
        return [None if ids is None else beam_search_one(self.model, ids + [EOS_ID], beam, alpha) for ids in encoded]

    @functools.cached_property
    def float_model(self) -> NumpySeq2Seq:
        """The model in its own float32 arithmetic, which the attention shown is computed in."""
        return self.model if self.precision == "float32" else NumpySeq2Seq(self.config, self.weights, "float32")

    def teacher_forced(self, sources: Sequence[list[int]], targets: Sequence[list[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        return [self.float_model.teacher_forced(src + [EOS_ID], tgt) for src, tgt in zip(sources, targets)]
