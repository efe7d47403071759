"""What the CPU offers (instruction-set flags, matrix units), read once from /proc/cpuinfo.

The runtime choices that depend on it live with their owners: int8.py picks oneDNN's int8 product
only where sums of u8 x s8 pairs are 32-bit (VNNI or AMX), and training_precision.py picks bfloat16 training
arithmetic only where the CPU multiplies bfloat16 matrices in hardware; machine.py reports them.
"""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

# Flags that change which arithmetic attncli runs (or would run), in /proc/cpuinfo spelling.
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
INT8_SUM32_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")   # u8 x s8 products summed in 32 bits


@lru_cache(maxsize=1)
def cpu_info() -> tuple[str, frozenset[str]]:
    """(model name, flags) of the first CPU; ("unknown", {}) where /proc/cpuinfo is not readable."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:                               # not Linux: no cheap way to tell
        return platform.processor() or "unknown", frozenset()
    name, flags = "unknown", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and name == "unknown":
            name = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return name, flags


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def has_int8_sum32() -> bool:
    """Whether the CPU sums u8 x s8 products in 32 bits (AVX-512 VNNI, AVX-VNNI or AMX)."""
    return is_x86() and any(flag in cpu_info()[1] for flag in INT8_SUM32_FLAGS)


def has_bf16_matmul() -> bool:
    """Whether the CPU multiplies bfloat16 matrices in hardware: AVX-512 BF16 (AMD Zen 4 and later,
    Intel Cooper Lake and later) or AMX tiles (Intel Sapphire Rapids and later)."""
    return is_x86() and bool({"avx512_bf16", "amx_bf16"} & cpu_info()[1])
