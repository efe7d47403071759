"""Where torch runs (--device) and the arithmetic translation uses there (--precision).

Training, translation and alignment read --device through `resolve_device`; translation reads
--precision through `search_precision`: int8 is a CPU path (int8.py), a GPU translates in float32,
float16 or bfloat16 (torch.autocast over search), and "auto" picks int8 on the CPU, bfloat16 on a
GPU that has it and float16 on one that does not. This module is imported only where torch runs.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from .config import CPU_PRECISIONS, DEFAULT_PRECISION, DEVICES_HELP, GPU_PRECISIONS, PRECISIONS
from .errors import OptionError


def resolve_device(name: str) -> torch.device:
    """The torch device of --device; a CUDA device that is not there is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise OptionError(f"--device must be {DEVICES_HELP}, got {name!r}.") from None
    if device.type not in ("cpu", "cuda") or (device.type == "cpu" and device.index is not None):
        raise OptionError(f"--device must be {DEVICES_HELP}, got {name!r}.")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise OptionError(f"--device {name}: this machine has no CUDA GPU that PyTorch can use "
                              f"(torch {torch.__version__}); use --device cpu.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise OptionError(f"--device {name}: there are only {torch.cuda.device_count()} CUDA devices.")
    return device


def search_precision(choice: str, device: torch.device) -> str:
    """The arithmetic of search for --precision `choice` (one of PRECISIONS) on `device`."""
    if choice not in PRECISIONS:
        raise OptionError(f"--precision must be one of {', '.join(PRECISIONS)}, got {choice!r}.")
    on_gpu = device.type == "cuda"
    if choice == "auto":
        return ("bfloat16" if torch.cuda.is_bf16_supported() else "float16") if on_gpu else DEFAULT_PRECISION
    allowed = GPU_PRECISIONS if on_gpu else CPU_PRECISIONS
    if choice not in allowed:
        where = "a GPU" if on_gpu else "the CPU"
        raise OptionError(f"--precision {choice} does not run on {where} ({device}); there use {' or '.join(allowed)}.")
    return choice


def search_autocast(precision: str, device: torch.device):
    """The context search runs in: torch.autocast to float16/bfloat16 on a GPU, else nothing."""
    if precision in ("float16", "bfloat16"):
        return torch.autocast(device.type, dtype=getattr(torch, precision))
    return nullcontext()
