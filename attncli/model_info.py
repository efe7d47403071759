"""The model card: the `info` block of a model's config.json, as one typed object.

ModelInfo is the one owner of that block. Training builds it, modelfile.save_model and
store_link_defaults write it, read_model_folder reads it, and the runtimes take their search
defaults (`info.defaults`) and link settings (`info.alignment_links`) from it. The layout on disk
is the one the shipped models have:

    "info": {"train_config": {...}, "corpus": "...", "dev": null, "guide_alignments": null,
             "init_from": null, "defaults": {"beam_size": 5, "length_penalty": 1.0},
             "best": {...}, "training_seconds": 5160.4, "training_precision": "float32",
             "history": [{...}, ...],
             "alignment_links": {"min_weight": 0.4, "mutual": true, "attention_shift": 0, "measured": {...}},
             "text": {"lang": "fr", "target_lang": "en", "tokenize": "moses", "lowercase": "first", ...},
             "watch": [{"source": "...", "target": null, "gold": null}, ...]}

`watch` (train --watch, watch.py): the sentences whose word-level attention each history record
holds under its own "watch" key, one entry per sentence, in this order.

Every key is optional. `from_dict` is strict on the keys it knows (a bad value is one
ModelFileError naming config.json and the key) and keeps the keys it does not know, so that a
rewrite (store_link_defaults) loses nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import ModelFileError, OptionError

WHERE = "config.json: info"
MIN_WEIGHT_RANGE = (0.0, 1.0)   # a link needs at least this share of its target word's attention
ATTENTION_SHIFTS = (0, 1)       # 0: the attention that predicted a word; 1: the one after reading it
# Where a training run's data came from: written together (null: none given) once a run records any.
SOURCE_KEYS = ("corpus", "dev", "guide_alignments", "init_from")
INFO_KEYS = ("train_config", *SOURCE_KEYS, "defaults", "best", "training_seconds", "training_precision", "history",
             "alignment_links", "text", "watch")   # the keys ModelInfo knows, in the order it writes them
LOWERCASE = (False, True, "first")          # TextSettings.lowercase: none, all, the sentence's first word


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    """A value for a one-line message: its repr if short, else its JSON type."""
    text = repr(value)
    return text if len(text) <= 40 and "\n" not in text else f"a {type(value).__name__}"


def _need(data: dict[str, Any], key: str, kinds: tuple[type, ...], what: str, where: str = WHERE) -> Any:
    """data[key] (None when absent or null), refused unless it is one of `kinds`."""
    value = data.get(key)
    if value is None or (isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))):
        return value
    raise ModelFileError(f"{where}.{key} must be {what}, got {_shown(value)}.")


@dataclass(frozen=True)
class SearchDefaults:
    """`info.defaults`: the beam size and length penalty `translate` uses unless told otherwise."""

    beam_size: int = 5
    length_penalty: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"beam_size": self.beam_size, "length_penalty": self.length_penalty}

    @classmethod
    def from_dict(cls, data: Any) -> "SearchDefaults":
        """Missing keys take the plain defaults (5, 1.0); a bad value is a ModelFileError."""
        if isinstance(data, dict):
            beam, alpha = data.get("beam_size", 5), data.get("length_penalty", 1.0)
        else:
            beam = alpha = None                 # not an object: refused below
        if not (isinstance(beam, int) and not isinstance(beam, bool) and beam >= 1) \
                or not (_is_number(alpha) and math.isfinite(alpha)):
            raise ModelFileError(f"{WHERE}.defaults needs beam_size (at least 1) and length_penalty (a number).")
        return cls(beam, float(alpha))


@dataclass(frozen=True)
class LinkSettings:
    """How `inspect alignment` turns attention into links (see alignment.Alignment.links and
    word_alignment); `info.alignment_links` holds the ones a model was tuned with."""

    min_weight: float = 0.0
    mutual: bool = False
    attention_shift: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"min_weight": float(self.min_weight), "mutual": bool(self.mutual),
                "attention_shift": int(self.attention_shift)}

    @classmethod
    def from_dict(cls, data: Any) -> "LinkSettings":
        data = data if isinstance(data, dict) else {}
        min_weight, mutual, shift = data.get("min_weight"), data.get("mutual"), data.get("attention_shift")
        low, high = MIN_WEIGHT_RANGE
        if not (_is_number(min_weight) and low <= min_weight <= high) or not isinstance(mutual, bool) \
                or isinstance(shift, bool) or shift not in ATTENTION_SHIFTS:
            raise ModelFileError(f"{WHERE}.alignment_links needs min_weight (0 to 1), mutual (true/false) "
                                 "and attention_shift (0 or 1).")
        return cls(float(min_weight), mutual, int(shift))

    @staticmethod
    def check_options(min_weight: Optional[float] = None, attention_shift: Optional[int] = None) -> None:
        """Refuse --min-weight or --shift outside the ranges config.json is held to (None: not given)."""
        low, high = MIN_WEIGHT_RANGE
        if min_weight is not None and not low <= min_weight <= high:
            raise OptionError(f"--min-weight must be from {low:g} to {high:g}, got {min_weight}.")
        if attention_shift is not None and attention_shift not in ATTENTION_SHIFTS:
            raise OptionError(f"--shift must be {' or '.join(map(str, ATTENTION_SHIFTS))}, got {attention_shift}.")

    def overridden(self, min_weight: Optional[float] = None, mutual: Optional[bool] = None,
                   attention_shift: Optional[int] = None) -> "LinkSettings":
        """These settings with the ones given as options (None: keep), checked by check_options."""
        self.check_options(min_weight, attention_shift)
        return LinkSettings(self.min_weight if min_weight is None else min_weight,
                            self.mutual if mutual is None else mutual,
                            self.attention_shift if attention_shift is None else attention_shift)


@dataclass(frozen=True)
class TextSettings:
    """`info.text`: how the model's training text was written, so that input is brought to it and
    output back to plain text (text.TextPipeline applies it; absent: raw text both ways).

    Source side, in this order: `normalize_punctuation` (sacremoses MosesPunctNormalizer: curly
    quotes and apostrophes to straight ones, ...), `tokenize` ("moses": sacremoses MosesTokenizer
    for `lang`, punctuation split off; `split_dashes`: "C-49" -> "C @-@ 49"), `lowercase` (true:
    everything; "first": the sentence's first word unless it is "I"), then `replace`, whole tokens
    by others ("@-@": "-", "du": "de le"). A target given to `inspect alignment --target` gets the
    same steps for `target_lang`, all but `replace`. Output: `detokenize` ("moses":
    sacremoses MosesDetokenizer for `target_lang`), `capitalize` (first letter upper case).
    `lang` also chooses the sentence splitter's rules (else the language in the model's name).
    """

    lang: Optional[str] = None
    target_lang: Optional[str] = None
    normalize_punctuation: bool = False
    tokenize: Optional[str] = None          # None or "moses"
    split_dashes: bool = False
    lowercase: Any = False                  # one of LOWERCASE
    replace: dict[str, str] = field(default_factory=dict)
    detokenize: Optional[str] = None        # None or "moses"
    capitalize: bool = False

    @property
    def changes_text(self) -> bool:
        """Whether input is changed at all before the model reads it."""
        return bool(self.normalize_punctuation or self.tokenize or self.lowercase or self.replace)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: the fields that differ from the plain defaults, in field order."""
        plain = TextSettings()
        return {key: copy.deepcopy(getattr(self, key)) for key in TEXT_KEYS if getattr(self, key) != getattr(plain, key)}

    @classmethod
    def from_dict(cls, data: Any) -> "TextSettings":
        """Strict: an unknown key (a misspelt one would silently skip a step) or a bad value is a ModelFileError."""
        where = f"{WHERE}.text"
        if not isinstance(data, dict):
            raise ModelFileError(f"{where} must be an object, got {_shown(data)}.")
        unknown = [key for key in data if key not in TEXT_KEYS]
        if unknown:
            raise ModelFileError(f"{where} has an unknown key {unknown[0]!r} (known: {', '.join(TEXT_KEYS)}).")
        for key in ("lang", "target_lang"):
            _need(data, key, (str,), "a language code (a string)", where)
        for key in ("normalize_punctuation", "split_dashes", "capitalize"):
            _need(data, key, (bool,), "true or false", where)
        for key in ("tokenize", "detokenize"):
            if data.get(key) not in (None, "moses"):
                raise ModelFileError(f"{where}.{key} must be \"moses\" or null, got {_shown(data[key])}.")
        lowercase = data.get("lowercase", False)
        if not any(lowercase is choice or (isinstance(choice, str) and lowercase == choice) for choice in LOWERCASE):
            raise ModelFileError(f"{where}.lowercase must be true, false or \"first\", got {_shown(lowercase)}.")
        replace = data.get("replace") or {}
        if not isinstance(replace, dict) or not all(isinstance(k, str) and isinstance(v, str) and k.strip()
                                                    and k.split() == [k] and v.split() for k, v in replace.items()):
            raise ModelFileError(f"{where}.replace must map single tokens to non-empty text.")
        if (data.get("tokenize") or data.get("normalize_punctuation")) and not data.get("lang"):
            raise ModelFileError(f"{where}.lang is needed to tokenize or normalise the input.")
        if (data.get("detokenize") or data.get("normalize_punctuation")) and not data.get("target_lang"):
            raise ModelFileError(f"{where}.target_lang is needed to detokenize the output.")
        return cls(**{key: data[key] for key in TEXT_KEYS if data.get(key) is not None})


TEXT_KEYS = tuple(f.name for f in dataclasses.fields(TextSettings))


@dataclass(frozen=True)
class WatchedPair:
    """One sentence of `info.watch`: its attention is recorded at every validation (watch.py)."""

    source: str
    target: Optional[str]          # None: the model's own translation at each validation
    gold: Optional[str] = None     # Pharaoh links of the pair, if known (for AER per validation)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "gold": self.gold}

    @classmethod
    def from_dict(cls, data: Any, where: str = f"{WHERE}.watch") -> "WatchedPair":
        """A bad entry is a ModelFileError naming `where`."""
        if not isinstance(data, dict) or not isinstance(data.get("source"), str) or not data["source"].strip():
            raise ModelFileError(f"{where} must be an object with a non-empty \"source\", got {_shown(data)}.")
        return cls(data["source"], _need(data, "target", (str,), "a sentence or null", where),
                   _need(data, "gold", (str,), "Pharaoh links or null", where))


@dataclass(frozen=True)
class ModelInfo:
    """The `info` block of config.json. None means the key is absent (the history of a model
    that was not trained by attncli, say); `search` and `links` give the defaults that apply."""

    train_config: Optional[dict[str, Any]] = None     # TrainConfig.to_dict() of the run
    corpus: Optional[str] = None
    dev: Optional[str] = None
    guide_alignments: Optional[str] = None
    init_from: Optional[str] = None
    defaults: Optional[SearchDefaults] = None
    best: Optional[dict[str, Any]] = None             # dev_bleu, dev_chrf, dev_loss, step, epoch
    training_seconds: Optional[float] = None
    training_precision: Optional[str] = None          # float32 or bfloat16
    history: Optional[list[dict[str, Any]]] = None    # one record per validation
    alignment_links: Optional[LinkSettings] = None
    links_measured: Optional[dict[str, Any]] = None   # alignment_links.measured: how they scored on gold
    text: Optional[TextSettings] = None               # the training text's normalisation (None: raw text)
    watch: Optional[tuple[WatchedPair, ...]] = None   # the sentences each history record's "watch" is about
    extra: dict[str, Any] = field(default_factory=dict)   # keys this version does not know, kept as read

    @property
    def search(self) -> SearchDefaults:
        return self.defaults or SearchDefaults()

    @property
    def links(self) -> LinkSettings:
        return self.alignment_links or LinkSettings()

    def with_links(self, settings: LinkSettings, measured: Optional[dict[str, Any]] = None) -> "ModelInfo":
        return dataclasses.replace(self, alignment_links=settings, links_measured=measured or None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object for config.json (a copy: changing it changes nothing here)."""
        data: dict[str, Any] = {}
        sources_recorded = self.train_config is not None or any(getattr(self, key) is not None for key in SOURCE_KEYS)
        for key in INFO_KEYS:
            value = getattr(self, key)
            if isinstance(value, LinkSettings):
                measured = {"measured": copy.deepcopy(self.links_measured)} if self.links_measured else {}
                data[key] = {**value.to_dict(), **measured}
            elif isinstance(value, (SearchDefaults, TextSettings)):
                data[key] = value.to_dict()
            elif key == "watch" and value is not None:
                data[key] = [pair.to_dict() for pair in value]
            elif value is not None or (key in SOURCE_KEYS and sources_recorded):
                data[key] = copy.deepcopy(value)
        data.update(copy.deepcopy(self.extra))
        return data

    @classmethod
    def from_dict(cls, data: Any) -> "ModelInfo":
        """Read an `info` block (None: an empty one); a bad value is a ModelFileError naming it."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ModelFileError(f"config.json: 'info' must be an object, got {_shown(data)}.")
        history = _need(data, "history", (list,), "a list of validation records")
        if history is not None and not all(isinstance(record, dict) for record in history):
            raise ModelFileError(f"{WHERE}.history must be a list of validation records.")
        watch = _need(data, "watch", (list,), "a list of watched sentences")
        links = data.get("alignment_links")
        measured = _need(links, "measured", (dict,), "an object", f"{WHERE}.alignment_links") if isinstance(links, dict) else None
        return cls(
            train_config=_need(data, "train_config", (dict,), "an object"),
            **{key: _need(data, key, (str,), "a path (a string) or null") for key in SOURCE_KEYS},
            defaults=SearchDefaults.from_dict(data["defaults"]) if data.get("defaults") is not None else None,
            best=_need(data, "best", (dict,), "an object"),
            training_seconds=_need(data, "training_seconds", (int, float), "a number"),
            training_precision=_need(data, "training_precision", (str,), "a string"),
            history=history,
            alignment_links=LinkSettings.from_dict(links) if links is not None else None,
            links_measured=measured,
            text=TextSettings.from_dict(data["text"]) if data.get("text") is not None else None,
            watch=None if watch is None else tuple(WatchedPair.from_dict(entry, f"{WHERE}.watch[{index}]")
                                                   for index, entry in enumerate(watch)),
            extra={key: value for key, value in data.items() if key not in INFO_KEYS})

    @classmethod
    def coerce(cls, info: "ModelInfo | dict[str, Any] | None") -> "ModelInfo":
        """`info` as a ModelInfo: itself, or read from its JSON form."""
        return info if isinstance(info, ModelInfo) else cls.from_dict(info)


# a language pair in a path, e.g. tatoeba-es-en/train.tsv or fr-en-align.tsv: two 2-3 letter codes
LANGUAGE_PAIR = re.compile(r"(?<![A-Za-z])([a-z]{2,3})-([a-z]{2,3})(?![A-Za-z])")


def languages_of(corpus: Optional[str], name: str) -> Optional[tuple[str, str]]:
    """The language pair named in the training corpus's path (the last one in it), else in the
    model folder's name (`attncli models`, and the sentence splitter's language)."""
    for text in (corpus, name):
        pairs = LANGUAGE_PAIR.findall(text or "")
        if pairs:
            return pairs[-1]
    return None
