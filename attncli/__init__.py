"""attncli: train, run and inspect attention-based (Luong) translation models on a CPU.

    from attncli import Translator
    translator = Translator.load("es-en")
    print(translator.translate("Tengo hambre."))      # a string in, a string out; a list, a list

The public names below are imported on first use, so `import attncli` stays light: it imports
neither torch nor NumPy (`train` imports torch when used; `Translator.load` imports it for more
than a few sentences only).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import AttncliError, CorpusError, InputError, ModelFileError, OptionError

if TYPE_CHECKING:
    from .alignment import Alignment
    from .config import ModelConfig, TrainConfig
    from .modelfile import load_model, save_model
    from .training import TrainEvent, TrainingInterrupted, TrainResult, train
    from .translator import Translator

# public name -> the module that defines it, imported on first access (PEP 562)
_LAZY = {
    "Translator": "translator", "Alignment": "alignment",
    "train": "training", "TrainConfig": "config", "ModelConfig": "config",
    "TrainEvent": "training", "TrainResult": "training", "TrainingInterrupted": "training",
    "load_model": "modelfile", "save_model": "modelfile",
}

__all__ = ["AttncliError", "CorpusError", "InputError", "ModelFileError", "OptionError", *_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return version()
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value             # the next access is a plain attribute
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def version() -> str:
    """attncli's version, from the installed package's metadata (pyproject.toml's `version`)."""
    from importlib.metadata import PackageNotFoundError, version as package_version

    try:
        return package_version("attncli")
    except PackageNotFoundError:        # run from a source tree that was never installed
        return "unknown (not installed)"
