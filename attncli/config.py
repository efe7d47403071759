"""Frozen settings: ModelConfig (the architecture, stored in config.json) and TrainConfig (one run).

Every CLI option of `attncli train` maps one-to-one onto a field here; `from_dict` is strict so an
edited or foreign config.json is refused instead of half-understood.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelFileError, OptionError

# Source tokens x beam per decoding batch (translate, evaluate). 8000, about 1,000 hypotheses of
# Tatoeba length, ran beam 5 8-20% faster than 2000 on 2 cores; 16000 and 32000 were slower again.
DECODE_BATCH_TOKENS = 8000
STREAM_CHUNK_LINES = 500          # lines read ahead and searched together by translate and evaluate
# A GPU's (torch_runtime.py): one batch at a time, so larger ones fill it; guesses, not yet
# measured on a GPU (the search's memory is small: 64,000 hypothesis tokens x 384 floats ~ 0.1 GB).
GPU_DECODE_BATCH_TOKENS = 64000
GPU_STREAM_CHUNK_LINES = 4000
DECODE_BATCH_HELP = (f"Source tokens x beam per decoding batch. Default: {DECODE_BATCH_TOKENS:,} on the CPU, "
                     f"{GPU_DECODE_BATCH_TOKENS:,} on a GPU.")

# Arithmetic of translation's recurrent and output products (int8.py, search_decoder.py). int8 ran
# beam 5 ~1.6x faster than float32 with dev BLEU within 0.05 (README, "Speed"). int8 is a CPU
# path; a GPU runs float32 or torch.autocast's float16/bfloat16. "auto": devices.search_precision.
PRECISIONS = ("auto", "int8", "float32", "float16", "bfloat16")
CPU_PRECISIONS = ("int8", "float32")
GPU_PRECISIONS = ("float32", "float16", "bfloat16")
DEFAULT_PRECISION = "int8"         # the CPU's choice for "auto", and what CPU-only code defaults to
INT8_LEVELS = 127.0   # inputs in [-1, 1] are quantized to the integers round(127 x)
EXACT_FLOAT32_INPUTS = 1040   # 1040 * 127 * 127 < 2**24: float32 sums of int8 products stay exact

# Arithmetic of training (training_precision.py): "auto" picks bfloat16 where the CPU multiplies
# bfloat16 in hardware, float32 elsewhere; on a GPU bfloat16, else float16 (a GPU's only, with a
# gradient scaler); float32 master weights and a float32 loss always.
TRAIN_PRECISIONS = ("auto", "float32", "bfloat16", "float16")

# Where torch runs (--device of train, translate, evaluate, inspect alignment): devices.resolve_device
# (training), devices.translation_device (translation and alignment).
DEVICES_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N"

# Sizes a model may have, as (low, high): checked for config.json (ModelConfig) and for the
# options of `attncli train` (TrainConfig), so absurd sizes are refused before allocating.
SIZE_LIMITS = {
    "src_vocab_size": (8, 1_000_000),
    "tgt_vocab_size": (8, 1_000_000),
    "vocab_size": (32, 1_000_000),
    "embed_size": (1, 8192),
    "hidden_size": (2, 8192),
    "encoder_layers": (1, 16),
    "decoder_layers": (1, 16),
}
# The TrainConfig fields that are ModelConfig fields: the architecture a run builds.
ARCHITECTURE_FIELDS = ("embed_size", "hidden_size", "encoder_layers", "decoder_layers", "dropout",
                       "input_feeding", "tied_output", "attention_bias", "lexical_model")


MAX_BEAM = 100   # hypotheses per sentence in search; more only costs time


def check_beam(beam: int) -> None:
    """Refuse a beam size outside 1..MAX_BEAM (translate, evaluate, inspect and train's default)."""
    if not isinstance(beam, int) or isinstance(beam, bool) or not 1 <= beam <= MAX_BEAM:
        raise OptionError(f"--beam must be from 1 to {MAX_BEAM}, got {beam}.")


def check_save_suffix(path: Path, suffixes: tuple[str, ...], note: str = "") -> None:
    """Refuse a --save file name that does not end in one of `suffixes` (before any work is done)."""
    if path.suffix.lower() not in suffixes:
        endings = suffixes[0] if len(suffixes) == 1 else f"{', '.join(suffixes[:-1])} or {suffixes[-1]}"
        raise OptionError(f"--save {path}: the file name must end in {endings}{note}.")


MAX_LENGTH_PENALTY = 10.0   # score / length^A: beyond this the length alone picks the output


def check_length_penalty(alpha: float) -> None:
    """Refuse a length penalty that is not a finite number from 0 to MAX_LENGTH_PENALTY (nan, inf and
    1e308 would make every score nan or overflow)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= MAX_LENGTH_PENALTY:
        raise OptionError(f"--length-penalty must be a finite number from 0 to {MAX_LENGTH_PENALTY:g}, got {alpha}.")


def check_batch_tokens(batch_tokens: int) -> None:
    """Refuse a decoding batch of fewer than one token (translate, evaluate)."""
    if isinstance(batch_tokens, bool) or not isinstance(batch_tokens, int) or batch_tokens < 1:
        raise OptionError(f"--batch-tokens must be at least 1, got {batch_tokens}.")


def option_name(field_name: str) -> str:
    """The command-line option of a TrainConfig field: --field-name (the CLI uses these names)."""
    return "--" + field_name.replace("_", "-")


def check_size(name: str, value: Any, shown_as: str) -> None:
    """Refuse a size outside SIZE_LIMITS; the message calls it `shown_as` (a field or an option)."""
    low, high = SIZE_LIMITS[name]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise OptionError(f"{shown_as} must be an integer from {low} to {high}, got {value!r}.")


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
    attention_bias: bool = False    # a bias b_c in step (5), h̃ = tanh(W_c [c; h] + b_c); Luong's has none
    lexical_model: bool = False     # Nguyen & Chiang's lexical model beside the attention (lexical.py)
    pad_id: int = 0
    unk_id: int = 1
    bos_id: int = 2
    eos_id: int = 3

    def validate(self) -> None:
        """Refuse sizes that make no sense (or would allocate absurd memory) before building."""
        for name in ("src_vocab_size", "tgt_vocab_size", "embed_size", "hidden_size", "encoder_layers", "decoder_layers"):
            check_size(name, getattr(self, name), name)
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
        if self.attention_bias:
            shapes["decoder.attention.combine.bias"] = (hidden,)
        shapes["decoder.output.weight"] = (self.tgt_vocab_size, hidden)
        shapes["decoder.output.bias"] = (self.tgt_vocab_size,)
        if self.lexical_model:
            shapes["decoder.lexical.hidden.weight"] = (embed, embed)
            shapes["decoder.lexical.output.weight"] = (self.tgt_vocab_size, embed)
        return shapes


@dataclass(frozen=True)
class TrainConfig:
    """One training run: tokenizer, optimisation and stopping. Defaults are the shipped recipe.

    Each field is the `attncli train` option of the same name (`option_name`), and every message
    about a field names that option.
    """

    vocab_size: int | None = None     # None: chosen from the corpus size (recipe.py)
    joint_vocab: bool = True
    embed_size: int = 256
    hidden_size: int = 256
    encoder_layers: int = 1
    decoder_layers: int = 1
    dropout: float | None = None      # None: chosen from the corpus size (recipe.py)
    input_feeding: bool = False
    tied_output: bool | None = None   # None: chosen from the corpus size (recipe.py)
    attention_bias: bool = False
    lexical_model: bool | None = None  # None: chosen from the corpus size (recipe.py)
    batch_tokens: int | None = None   # None: chosen from the corpus size (recipe.py)
    learning_rate: float | None = None  # None: chosen from the corpus size (recipe.py)
    warmup_steps: int | None = None   # None: chosen from the corpus size (recipe.py)
    lr_decay: float = 0.5            # multiply the learning rate by this when dev BLEU stalls
    label_smoothing: float = 0.1
    word_dropout: float = 0.0        # each training piece becomes <unk> with this probability (loss.drop_words)
    subword_sampling: float | None = None  # SentencePiece sampling alpha, 0 = off; None: from the corpus size (recipe.py)
    clip_norm: float = 5.0
    epochs: int = 100
    max_minutes: float = 0.0         # 0 = no time limit
    patience: int = 6                # validations without improvement before stopping
    valid_every: int = 0             # updates between validations; 0 = once per epoch
    max_len: int = 100               # longer training pairs (in pieces) are skipped
    beam: int = 5                    # beam used by translate by default (validation is greedy)
    length_penalty: float = 1.0
    average_last: int = 1            # average the weights of the best N checkpoints
    guide_weight: float = 0.5        # weight of the guided-alignment term (only with guide alignments)
    aligner_guide: bool | None = None  # guide the attention with the built-in aligner's links (word_aligner.py); None: recipe.py
    train_precision: str = "auto"    # one of TRAIN_PRECISIONS
    watch: tuple[str, ...] = ()      # sources whose attention each validation records (watch.py)
    watch_file: str | None = None    # source<TAB>target[<TAB>gold] pairs to watch
    seed: int = 1
    threads: int = 0                 # 0 = all cores
    fp16_weights: bool = True        # save the model's weights in float16

    def validate(self) -> None:
        """Check option values; the message names the CLI option. Unset (None) recipe fields
        are checked once recipe.complete_recipe has chosen them."""
        given = {name: value for name, value in self.to_dict().items() if value is not None}
        for name in ("vocab_size", "embed_size", "hidden_size", "encoder_layers", "decoder_layers"):
            if name in given:
                check_size(name, given[name], option_name(name))
        check_beam(self.beam)
        check_length_penalty(self.length_penalty)
        for name in ("batch_tokens", "epochs", "patience", "max_len", "average_last"):
            if given.get(name, 1) < 1:
                raise OptionError(f"{option_name(name)} must be at least 1, got {given[name]}.")
        if self.hidden_size % 2:
            raise OptionError(f"--hidden-size must be even, got {self.hidden_size}.")
        for name in ("warmup_steps", "valid_every", "threads"):
            if given.get(name, 0) < 0:
                raise OptionError(f"{option_name(name)} must not be negative.")
        for name in ("learning_rate", "clip_norm", "max_minutes", "length_penalty", "lr_decay", "label_smoothing",
                     "dropout", "word_dropout", "guide_weight", "subword_sampling"):
            if not math.isfinite(given.get(name, 0.0)):
                raise OptionError(f"{option_name(name)} must be a finite number, got {given[name]}.")
        for name, low, high, closed in (("dropout", 0.0, 1.0, False), ("label_smoothing", 0.0, 1.0, False),
                                        ("word_dropout", 0.0, 1.0, False), ("guide_weight", 0.0, 100.0, True),
                                        ("subword_sampling", 0.0, 1000.0, True)):
            value = given.get(name, low)
            if not (low <= value <= high if closed else low <= value < high):
                raise OptionError(f"{option_name(name)} must be in [{low:g}, {high:g}{']' if closed else ')'}, got {value}.")
        self._check_optimiser()

    def _check_optimiser(self) -> None:
        if (self.learning_rate is not None and self.learning_rate <= 0) or self.clip_norm <= 0:
            raise OptionError("--learning-rate and --clip-norm must be positive.")
        if not 0.0 < self.lr_decay <= 1.0:
            raise OptionError(f"--lr-decay must be in (0, 1], got {self.lr_decay}.")
        if self.max_minutes < 0:
            raise OptionError(f"--max-minutes must not be negative, got {self.max_minutes}.")
        if self.train_precision not in TRAIN_PRECISIONS:
            raise OptionError(f"--train-precision must be one of {', '.join(TRAIN_PRECISIONS)}, got {self.train_precision!r}.")
        if self.tied_output and self.embed_size != self.hidden_size:
            raise OptionError("--tied-output needs --embed-size equal to --hidden-size.")

    def model_config(self, src_vocab_size: int, tgt_vocab_size: int) -> ModelConfig:
        """The architecture this run builds, for vocabularies of these sizes."""
        architecture = {name: getattr(self, name) for name in ARCHITECTURE_FIELDS}
        return ModelConfig(src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size, **architecture)

    def resuming(self, saved_model: dict[str, Any]) -> "TrainConfig":
        """This config with its unset vocabulary and architecture fields as the stopped run chose
        them (its saved model settings): with another --max-minutes the recipe could choose
        otherwise, and the run goes on with the model and SentencePiece models it has."""
        chosen = {name: saved_model[name] for name in ARCHITECTURE_FIELDS
                  if getattr(self, name) is None and name in saved_model}
        if self.vocab_size is None:
            chosen["vocab_size"] = saved_model["src_vocab_size"]
        return dataclasses.replace(self, **chosen)

    def adopting(self, architecture: ModelConfig, joint_vocab: bool) -> "TrainConfig":
        """This config with the vocabulary and architecture of an existing model (fine-tuning)."""
        sizes = {name: getattr(architecture, name) for name in ARCHITECTURE_FIELDS if name != "dropout"}
        return dataclasses.replace(self, vocab_size=architecture.src_vocab_size, joint_vocab=joint_vocab, **sizes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (tuples as lists), as config.json and the training state store them."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}
