"""What this machine is and which arithmetic attncli chooses on it, for benchmarks and bug reports,
so every figure says which machine and which paths it came from."""

from __future__ import annotations

import os
from typing import Any

from .hardware import REPORTED_FLAGS, cpu_info
from .training_precision import resolve_train_precision


def machine_report() -> dict[str, Any]:
    """The CPU, its relevant flags, and the arithmetic attncli chooses on it (imports torch)."""
    import torch

    from .int8 import int8_kernel

    name, flags = cpu_info()
    return {
        "cpu": name,
        "cores": os.cpu_count(),
        "flags": [flag for flag in REPORTED_FLAGS if flag in flags],
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "int8_kernel": int8_kernel(),
        "train_precision_auto": resolve_train_precision("auto"),
    }


def format_machine_report(report: dict[str, Any]) -> str:
    """One line a person can read, e.g. for the top of a benchmark table."""
    return (f"{report['cpu']} ({report['cores']} cores; {' '.join(report['flags']) or 'no AVX-512/AMX flags'}); "
            f"torch {report['torch']} ({report['torch_cpu_capability']}, {report['threads']} threads); "
            f"int8 search: {report['int8_kernel']}; training precision (auto): {report['train_precision_auto']}")

