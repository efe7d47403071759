"""Linear layers on inputs bounded to [-1, 1], in int8 with a fixed input scale, or in float32.

Search spends most of its arithmetic in products whose inputs are outputs of tanh or of an LSTM
(h = o * tanh(c)), so they lie in [-1, 1]: the output layer on h̃ (on [h̃; l] with the lexical
model, lexical.py; one weight scale per row then covers W_o and W_lex) and the LSTM's recurrent
product on h. Such inputs are quantized with one fixed scale, q = round(127 x), no calibration
needed; each output row of the weight gets its own scale, max |w| / 127. With the row scale
s = (max |w| / 127) / 127 (one float32 per output row),

    y = float32(Σ q · q_w) · s + bias          (one rounding for the product, one for the sum)

The integer sums are exact and the two roundings after them are the same on every CPU and for
every kernel, so a row's result is a function of that row alone: it never depends on which other
rows share its batch (unlike dynamic quantization, whose scale follows the batch's largest value),
nor on which CPU or which oneDNN kernel (AVX-512 VNNI, AVX-VNNI, AMX) computed it.

Kernels, tried in this order; each is used only if it equals the reference exactly on probe rows:
- "onednn": oneDNN's int8 product with input scale 1.0, weight scales s and the bias: ~3.5x
  float32 on AVX-512 VNNI. (With input scale 1/127 and weight scales max|w|/127, as before, AMX
  kernels rounded the scaling differently from VNNI ones: up to 4.8e-7 apart.)
- "onednn-sums+bias": the same product without the bias, which is added after it (for a kernel
  that would fuse scale and bias into one rounding).
- "emulated": a float32 product of the same integers, exact while partial sums stay below 2**24
  (at most 1040 inputs; float64 beyond that). Used where the CPU lacks 32-bit int8 sums (without
  VNNI, u8 x s8 pairs are summed in 16 bits and can saturate) or oneDNN is missing.
numpy_runtime.Int8Weights computes the same formula.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch
from torch import Tensor

from .config import EXACT_FLOAT32_INPUTS, INT8_LEVELS
from .hardware import has_int8_sum32

BoundedLinear = Callable[[Tensor], Tensor]   # (rows, in) in [-1, 1] -> (rows, out) float32

LEVELS = INT8_LEVELS                         # x in [-1, 1] -> integers in [-127, 127]
KERNELS = ("onednn", "onednn-sums+bias", "emulated")


def quantize_rows(weight: Tensor) -> tuple[Tensor, Tensor]:
    """int8 weights (out, in) and a float32 scale per output row (out,): w ≈ q_w * w_scale."""
    weight = weight.detach().float()
    scale = weight.abs().amax(dim=1).clamp_min(1e-12) / LEVELS
    return torch.round(weight / scale[:, None]).clamp_(-LEVELS, LEVELS).to(torch.int8), scale


def exact_sums(levels: Tensor, int8_weight: Tensor) -> Tensor:
    """Σ q · q_w as float32 (rows, out), rounded once from the exact integer (float64 sums)."""
    return (levels.double() @ int8_weight.double().t()).float()


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
    """The formula of the module docstring, by the first kernel of KERNELS that computes it exactly."""

    def __init__(self, weight: Tensor, bias: Tensor | None) -> None:
        self.int8_weight, weight_scale = quantize_rows(weight)                   # (out, in), (out,)
        self.row_scale = weight_scale * (1.0 / LEVELS)                           # (out,): s
        self.bias = None if bias is None else bias.detach().float().clone()
        self.zero_points = torch.zeros(self.row_scale.shape, dtype=torch.long)  # symmetric weights
        self.packed = _onednn_prepack(self.int8_weight)                          # None where unavailable
        self.kernel = self._first_exact_kernel()
        self.integer_weight_t: Tensor | None = None                              # (in, out), for the emulation
        if self.kernel == "emulated":
            exact_dtype = torch.float32 if weight.size(1) <= EXACT_FLOAT32_INPUTS else torch.float64
            self.integer_weight_t = self.int8_weight.to(exact_dtype).t().contiguous()
            self.packed = None

    def __call__(self, x: Tensor) -> Tensor:
        """x (rows, in) in [-1, 1] -> (rows, out) float32."""
        levels = torch.round(x.float() * LEVELS)                                 # integers in [-127, 127]
        if self.kernel == "emulated":
            assert self.integer_weight_t is not None
            sums = (levels.to(self.integer_weight_t.dtype) @ self.integer_weight_t).float()
            return self._scale(sums)
        return self._onednn(levels, fuse_bias=self.kernel == "onednn")

    def _scale(self, sums: Tensor) -> Tensor:
        """float32 sums (rows, out) -> sums · s + bias, in place."""
        result = sums.mul_(self.row_scale)
        return result if self.bias is None else result.add_(self.bias)

    def _onednn(self, levels: Tensor, fuse_bias: bool) -> Tensor:
        unsigned = levels.add_(128.0).to(torch.uint8)                            # oneDNN takes u8, zero point 128
        result = torch.ops.onednn.qlinear_pointwise(
            unsigned, 1.0, 128, self.packed, self.row_scale, self.zero_points,
            self.bias if fuse_bias else None, 1.0, 0, torch.float32, "none", [], "")
        return result if fuse_bias or self.bias is None else result.add_(self.bias)

    def _first_exact_kernel(self) -> str:
        """The first oneDNN variant that equals the reference exactly on probe rows, else "emulated".

        Probe rows: the extremes (every input -1 or +1, where 16-bit saturation would show), ramps,
        and seeded random rows (where a differently rounded scaling or bias would show).
        """
        if self.packed is None:
            return "emulated"
        inputs = self.int8_weight.size(1)
        generator = torch.Generator().manual_seed(0)
        probe = torch.cat([torch.ones(1, inputs), -torch.ones(1, inputs),
                           torch.linspace(-1.0, 1.0, 3 * inputs).view(3, inputs),
                           torch.rand(8, inputs, generator=generator) * 2 - 1])
        levels = torch.round(probe * LEVELS)
        reference = self._scale(exact_sums(levels, self.int8_weight))
        for kernel, fuse_bias in (("onednn", True), ("onednn-sums+bias", False)):
            try:
                if torch.equal(self._onednn(levels.clone(), fuse_bias), reference):
                    return kernel
            except RuntimeError:
                return "emulated"
        return "emulated"


def _onednn_prepack(int8_weight: Tensor) -> Tensor | None:
    """oneDNN's packed int8 weight, or None where its int8 product is not safe or not available."""
    if not has_int8_sum32() or not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.onednn.qlinear_prepack(int8_weight, None)
    except (RuntimeError, AttributeError):
        return None


@lru_cache(maxsize=1)
def int8_kernel() -> str:
    """The kernel int8 search takes on this machine, for reports: one of KERNELS (a probe layer)."""
    generator = torch.Generator().manual_seed(0)
    return Int8Linear(torch.randn(256, 128, generator=generator), torch.randn(256, generator=generator)).kernel


def bounded_linear(weight: Tensor, bias: Tensor | None, precision: str) -> BoundedLinear:
    """x ↦ x Wᵀ + b for inputs in [-1, 1], in `precision` ("int8" or "float32")."""
    if precision == "float32":
        return FloatLinear(weight, bias)
    if precision == "int8":
        return Int8Linear(weight, bias)
    raise ValueError(f"unknown precision {precision!r}")
