"""Frozen settings: ModelConfig (the architecture, stored in config.json) and TrainConfig (one run).

Every CLI option of `attncli train` maps one-to-one onto a field here; `from_dict` is strict so an
edited or foreign config.json is refused instead of half-understood.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .errors import ModelFileError, OptionError

# Source tokens x beam per decoding batch (translate, evaluate). 8000, about 1,000 hypotheses of
# Tatoeba length, ran beam 5 8-20% faster than 2000 on 2 cores; 16000 and 32000 were slower again.
DECODE_BATCH_TOKENS = 8000

# Arithmetic of translation's recurrent and output products (int8.py, search_decoder.py). int8 ran
# beam 5 ~1.6x faster than float32 with dev BLEU within 0.05 (README, "Speed").
PRECISIONS = ("int8", "float32")
DEFAULT_PRECISION = "int8"
INT8_LEVELS = 127.0   # inputs in [-1, 1] are quantized to the integers round(127 x)
EXACT_FLOAT32_INPUTS = 1040   # 1040 * 127 * 127 < 2**24: float32 sums of int8 products stay exact


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the encoder-decoder; everything needed to rebuild it from weights."""

    src_vocab_size: int
    tgt_vocab_size: int
    embed_size: int = 256
    hidden_size: int = 256          # decoder LSTM size = attention size = encoder memory size
    encoder_layers: int = 1
    decoder_layers: int = 1
    dropout: float = 0.2
    input_feeding: bool = False     # feed the previous attentional state into the decoder LSTM
    tied_output: bool = False       # share the target embedding with the output layer
    pad_id: int = 0
    unk_id: int = 1
    bos_id: int = 2
    eos_id: int = 3

    def validate(self) -> None:
        """Refuse sizes that make no sense (or would allocate absurd memory) before building."""
        limits = {
            "src_vocab_size": (8, 1_000_000),
            "tgt_vocab_size": (8, 1_000_000),
            "embed_size": (1, 8192),
            "hidden_size": (2, 8192),
            "encoder_layers": (1, 16),
            "decoder_layers": (1, 16),
        }
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise OptionError(f"{name} must be an integer from {low} to {high}, got {value!r}.")
        if self.hidden_size % 2:
            raise OptionError(f"hidden_size must be even (two encoder directions), got {self.hidden_size}.")
        if not 0.0 <= self.dropout < 1.0:
            raise OptionError(f"dropout must be in [0, 1), got {self.dropout}.")
        if self.tied_output and self.embed_size != self.hidden_size:
            raise OptionError("tied output embeddings need embed_size equal to hidden_size.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "ModelConfig":
        if not isinstance(data, dict):
            raise ModelFileError("config.json: 'model' must be an object.")
        try:
            config = cls(**data)
        except TypeError as exc:
            raise ModelFileError(f"config.json: bad model settings ({exc}).") from None
        try:
            config.validate()
        except OptionError as exc:
            raise ModelFileError(f"config.json: {exc}") from None
        return config

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """The state_dict shapes a model of this config has, computed without building it.

        Model files are checked against this before anything is allocated (a hostile config
        cannot make us allocate more than its weights file holds), without importing torch: the
        NumPy runtime loads models too. Must match the modules of model.Seq2Seq (tested).
        """
        shapes: dict[str, tuple[int, ...]] = {}

        def lstm(prefix: str, input_size: int, hidden: int, layers: int, directions: int) -> None:
            for layer in range(layers):
                for suffix in ([""] if directions == 1 else ["", "_reverse"]):
                    size_in = input_size if layer == 0 else hidden * directions
                    shapes[f"{prefix}.weight_ih_l{layer}{suffix}"] = (4 * hidden, size_in)
                    shapes[f"{prefix}.weight_hh_l{layer}{suffix}"] = (4 * hidden, hidden)
                    shapes[f"{prefix}.bias_ih_l{layer}{suffix}"] = (4 * hidden,)
                    shapes[f"{prefix}.bias_hh_l{layer}{suffix}"] = (4 * hidden,)

        hidden, embed = self.hidden_size, self.embed_size
        shapes["encoder.embed.weight"] = (self.src_vocab_size, embed)
        lstm("encoder.rnn", embed, hidden // 2, self.encoder_layers, 2)
        for name in ("project", "bridge"):
            shapes[f"encoder.{name}.weight"] = (hidden, hidden)
            shapes[f"encoder.{name}.bias"] = (hidden,)
        shapes["decoder.embed.weight"] = (self.tgt_vocab_size, embed)
        lstm("decoder.rnn", embed + (hidden if self.input_feeding else 0), hidden, self.decoder_layers, 1)
        shapes["decoder.attention.combine.weight"] = (hidden, 2 * hidden)
        shapes["decoder.output.weight"] = (self.tgt_vocab_size, hidden)
        shapes["decoder.output.bias"] = (self.tgt_vocab_size,)
        return shapes


@dataclass(frozen=True)
class TrainConfig:
    """One training run: tokenizer, optimisation and stopping. Defaults are the shipped recipe."""

    vocab_size: int = 8000
    joint_vocab: bool = True
    embed_size: int = 256
    hidden_size: int = 256
    encoder_layers: int = 1
    decoder_layers: int = 1
    dropout: float = 0.2
    input_feeding: bool = False
    tied_output: bool = False
    batch_tokens: int = 4096
    learning_rate: float = 0.002
    warmup_steps: int = 400
    lr_decay: float = 0.5            # multiply the learning rate by this when dev BLEU stalls
    label_smoothing: float = 0.1
    clip_norm: float = 5.0
    epochs: int = 100
    max_minutes: float = 0.0         # 0 = no time limit
    patience: int = 6                # validations without improvement before stopping
    valid_every: int = 0             # updates between validations; 0 = once per epoch
    max_len: int = 100               # longer training pairs (in pieces) are skipped
    beam_size: int = 5               # beam used by translate by default (validation is greedy)
    length_penalty: float = 1.0
    average_last: int = 1            # average the weights of the best N checkpoints
    guide_weight: float = 0.5        # weight of the guided-alignment term (only with guide alignments)
    bf16: bool = False               # bfloat16 autocast for matrix products
    seed: int = 1
    threads: int = 0                 # 0 = all cores
    save_fp16: bool = True

    def validate(self) -> None:
        """Check option values; the message names the CLI option."""
        positive = ["vocab_size", "embed_size", "hidden_size", "encoder_layers", "decoder_layers",
                    "batch_tokens", "epochs", "patience", "max_len", "beam_size", "average_last"]
        for name in positive:
            value = getattr(self, name)
            if value < 1:
                raise OptionError(f"--{name.replace('_', '-')} must be at least 1, got {value}.")
        if self.vocab_size < 32:
            raise OptionError(f"--vocab-size must be at least 32, got {self.vocab_size}.")
        for name, high in [("vocab_size", 1_000_000), ("embed_size", 8192), ("hidden_size", 8192),
                           ("encoder_layers", 16), ("decoder_layers", 16)]:   # ModelConfig's limits
            if getattr(self, name) > high:
                raise OptionError(f"--{name.replace('_', '-')} must be at most {high}, got {getattr(self, name)}.")
        if self.hidden_size % 2:
            raise OptionError(f"--hidden-size must be even, got {self.hidden_size}.")
        for name in ["warmup_steps", "valid_every", "threads"]:
            if getattr(self, name) < 0:
                raise OptionError(f"--{name.replace('_', '-')} must not be negative.")
        if not 0.0 <= self.dropout < 1.0:
            raise OptionError(f"--dropout must be in [0, 1), got {self.dropout}.")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise OptionError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}.")
        if not 0.0 <= self.guide_weight <= 100.0:
            raise OptionError(f"--guide-weight must be from 0 to 100, got {self.guide_weight}.")
        for name in ["learning_rate", "clip_norm", "max_minutes", "length_penalty", "lr_decay", "label_smoothing", "dropout", "guide_weight"]:
            if not math.isfinite(getattr(self, name)):
                raise OptionError(f"--{name.replace('_', '-')} must be a finite number, got {getattr(self, name)}.")
        if self.learning_rate <= 0 or self.clip_norm <= 0:
            raise OptionError("--learning-rate and --clip-norm must be positive.")
        if not 0.0 < self.lr_decay <= 1.0:
            raise OptionError(f"--lr-decay must be in (0, 1], got {self.lr_decay}.")
        if self.max_minutes < 0:
            raise OptionError(f"--max-minutes must not be negative, got {self.max_minutes}.")
        if self.tied_output and self.embed_size != self.hidden_size:
            raise OptionError("--tied-output needs --embed-size equal to --hidden-size.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})
