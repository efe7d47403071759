"""Where torch runs (--device) and the arithmetic translation uses there (--precision).

Training reads --device through `resolve_device`; translation and alignment (torch_runtime.py)
through `translation_device`, where "auto" with --precision int8 is the CPU. Translation reads
--precision through `search_precision`: int8 is a CPU path (int8.py), a GPU translates in float32,
float16 or bfloat16 (torch.autocast over search), and "auto" picks int8 on the CPU, bfloat16 on a
GPU that multiplies it in hardware (`gpu_has_bf16`) and float16 on one that does not. This
module is imported only where torch runs.
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


def translation_device(name: str, precision: str) -> torch.device:
    """The device translation runs on for --device `name` and --precision `precision`: as
    `resolve_device`, except that "auto" with int8, a CPU path, is the CPU even beside a GPU."""
    return resolve_device("cpu" if name == "auto" and precision == "int8" else name)


def search_precision(choice: str, device: torch.device) -> str:
    """The arithmetic of search for --precision `choice` (one of PRECISIONS) on `device`."""
    if choice not in PRECISIONS:
        raise OptionError(f"--precision must be one of {', '.join(PRECISIONS)}, got {choice!r}.")
    on_gpu = device.type == "cuda"
    if choice == "auto":
        return ("bfloat16" if gpu_has_bf16(device) else "float16") if on_gpu else DEFAULT_PRECISION
    allowed = GPU_PRECISIONS if on_gpu else CPU_PRECISIONS
    if choice not in allowed:
        where = f"a GPU ({device})" if on_gpu else "the CPU"
        raise OptionError(f"--precision {choice} does not run on {where}; use {' or '.join(allowed)} there.")
    return choice


def gpu_has_bf16(device: torch.device) -> bool:
    """Whether this GPU multiplies bfloat16 in hardware (compute capability 8, Ampere, or later).
    torch.cuda.is_bf16_supported() also says yes where bfloat16 is only emulated (T4, V100: slow)
    and asks the current GPU, not `device`."""
    return torch.cuda.get_device_properties(device).major >= 8


def search_autocast(precision: str, device: torch.device):
    """The context search runs in: torch.autocast to float16/bfloat16 on a GPU, else nothing."""
    if precision in ("float16", "bfloat16"):
        return torch.autocast(device.type, dtype=getattr(torch, precision))
    return nullcontext()
