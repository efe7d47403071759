"""Linear layers on inputs bounded to [-1, 1], in int8 with a fixed input scale, or in float32.

Search spends most of its arithmetic in products whose inputs are outputs of tanh or of an LSTM
(h = o * tanh(c)), so they lie in [-1, 1]: the output layer on h̃ and the LSTM's recurrent
product on h. Such inputs are quantized with one fixed scale, q = round(127 x), no calibration
needed; each output row of the weight gets its own scale, max |w| / 127. The products are summed
exactly in integers, so a row's result never depends on which other rows share its batch (unlike
dynamic quantization, whose scale follows the batch's largest value), and

    y = (Σ q · q_w) · (1/127) · w_scale + bias

On x86 CPUs with VNNI instructions oneDNN's int8 matrix product computes it ~3.5x faster than
float32 (without VNNI, u8 x s8 pairs are summed in 16 bits and can saturate, so it is not used);
elsewhere a float32 product of the same integers gives the same numbers, exactly, as partial sums
stay below 2**24 while there are at most 1040 inputs (float64 beyond that).
numpy_runtime.Int8Weights computes the same formula.
"""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from .config import EXACT_FLOAT32_INPUTS, INT8_LEVELS

BoundedLinear = Callable[[Tensor], Tensor]   # (rows, in) in [-1, 1] -> (rows, out) float32

LEVELS = INT8_LEVELS                         # x in [-1, 1] -> integers in [-127, 127]


def quantize_rows(weight: Tensor) -> tuple[Tensor, Tensor]:
    """int8 weights (out, in) and a float32 scale per output row (out,): w ≈ q_w * w_scale."""
    weight = weight.detach().float()
    scale = weight.abs().amax(dim=1).clamp_min(1e-12) / LEVELS
    return torch.round(weight / scale[:, None]).clamp_(-LEVELS, LEVELS).to(torch.int8), scale


class FloatLinear:
    """x Wᵀ + b in float32: the reference arithmetic."""

    def __init__(self, weight: Tensor, bias: Tensor | None) -> None:
        self.weight_t = weight.detach().float().t().contiguous()                 # (in, out)
        self.bias = None if bias is None else bias.detach().float().clone()

    def __call__(self, x: Tensor) -> Tensor:
        if self.bias is None:
            return x @ self.weight_t
        return torch.addmm(self.bias, x, self.weight_t)


class Int8Linear:
    """The formula of the module docstring; oneDNN's int8 product where it runs, else float32."""

    def __init__(self, weight: Tensor, bias: Tensor | None) -> None:
        self.int8_weight, self.weight_scale = quantize_rows(weight)              # (out, in), (out,)
        self.bias = None if bias is None else bias.detach().float().clone()
        self.zero_points = torch.zeros(self.weight_scale.shape, dtype=torch.long)   # symmetric weights
        self.packed = _onednn_prepack(self.int8_weight)                          # None where unavailable
        if self.packed is not None and not self._onednn_agrees():
            self.packed = None
        self.integer_weight_t: Tensor | None = None                              # (in, out), for the emulation
        if self.packed is None:
            exact_dtype = torch.float32 if weight.size(1) <= EXACT_FLOAT32_INPUTS else torch.float64
            self.integer_weight_t = self.int8_weight.to(exact_dtype).t().contiguous()

    def __call__(self, x: Tensor) -> Tensor:
        """x (rows, in) in [-1, 1] -> (rows, out) float32."""
        levels = torch.round(x.float() * LEVELS)                                 # integers in [-127, 127]
        if self.packed is not None:
            return self._onednn(levels)
        assert self.integer_weight_t is not None
        return self._emulated(levels, self.integer_weight_t)

    def _onednn(self, levels: Tensor) -> Tensor:
        unsigned = levels.add_(128.0).to(torch.uint8)                            # oneDNN takes u8, zero point 128
        return torch.ops.onednn.qlinear_pointwise(
            unsigned, 1.0 / LEVELS, 128, self.packed, self.weight_scale,
            self.zero_points, self.bias, 1.0, 0, torch.float32, "none", [], "")

    def _emulated(self, levels: Tensor, integer_weight_t: Tensor) -> Tensor:
        sums = (levels.to(integer_weight_t.dtype) @ integer_weight_t).float()   # exact integer sums
        result = sums.mul_(1.0 / LEVELS).mul_(self.weight_scale)
        return result if self.bias is None else result.add_(self.bias)

    def _onednn_agrees(self) -> bool:
        """oneDNN's result equals the emulation exactly on probe rows: the extremes (every input
        -1 or +1, where 16-bit saturation would show) and ramps (guards against a differing build)."""
        inputs = self.int8_weight.size(1)
        probe = torch.cat([torch.ones(1, inputs), -torch.ones(1, inputs),
                           torch.linspace(-1.0, 1.0, 3 * inputs).view(3, inputs)])
        levels = torch.round(probe * LEVELS)
        try:
            fast = self._onednn(levels.clone())
        except RuntimeError:
            return False
        return torch.equal(fast, self._emulated(levels, self.int8_weight.to(torch.float64).t()))


@lru_cache(maxsize=1)
def cpu_has_vnni() -> bool:
    """Whether the CPU sums u8 x s8 products in 32 bits (AVX-512 VNNI, AVX-VNNI or AMX), per /proc/cpuinfo."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split()
    except OSError:                                     # not Linux: no way to tell cheaply, so no
        return False
    return any(flag in flags for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))


def _onednn_prepack(int8_weight: Tensor) -> Tensor | None:
    """oneDNN's packed int8 weight, or None where its int8 product is not safe or not available."""
    if not cpu_has_vnni() or not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.onednn.qlinear_prepack(int8_weight, None)
    except (RuntimeError, AttributeError):
        return None


def bounded_linear(weight: Tensor, bias: Tensor | None, precision: str) -> BoundedLinear:
    """x ↦ x Wᵀ + b for inputs in [-1, 1], in `precision` ("int8" or "float32")."""
    if precision == "float32":
        return FloatLinear(weight, bias)
    if precision == "int8":
        return Int8Linear(weight, bias)
    raise ValueError(f"unknown precision {precision!r}")
