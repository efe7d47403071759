"""The arithmetic of training: float32, or bfloat16 matrix products with float32 master weights.

"auto" picks bfloat16 where the CPU has AMX bfloat16 units (Sapphire Rapids and later: bfloat16
matrix products ~4.7x float32 there, per the issue's measurements) and float32 elsewhere (on
AVX-512 CPUs without AMX, bf16 autocast trained 7,180 -> 4,846 tokens/s: slower, README
"Speed"). Under bfloat16, torch.autocast runs the matrix products (linear layers, the LSTM,
the attention's batched products) in bfloat16; the weights, the optimizer, the loss and its
softmax stay float32. The choice of a run is recorded in its history and kept on --resume, so a
resumed run continues with the same arithmetic on any CPU.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from .config import TRAIN_PRECISIONS
from .errors import OptionError
from .hardware import has_amx_bf16


def resolve_train_precision(choice: str) -> str:
    """"float32" or "bfloat16" for the option value `choice` (one of TRAIN_PRECISIONS) on this CPU."""
    if choice not in TRAIN_PRECISIONS:
        raise OptionError(f"--train-precision must be one of {', '.join(TRAIN_PRECISIONS)}, got {choice!r}.")
    if choice == "auto":
        return "bfloat16" if has_amx_bf16() else "float32"
    return choice


def autocast(precision: str) -> AbstractContextManager:
    """The context a training forward pass runs in, for a resolved precision."""
    if precision == "bfloat16":
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()
