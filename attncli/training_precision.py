"""The arithmetic of training: float32, or bfloat16 (or float16 on a GPU; there with a gradient
scaler for both) matrix products with float32 master weights.

"auto" picks bfloat16 where the CPU multiplies bfloat16 matrices in hardware (AVX-512 BF16 or AMX)
and float32 elsewhere. Measured on a 2-core AMD EPYC (AVX-512 BF16, no AMX), es-en, JoeyNMT's
architecture: 7,474 -> 12,137 target tokens/s (benchmarks/throughput.py); in 8 minutes on one
thread each, 915 vs 554 updates and beam-5 dev BLEU 25.16 vs 7.74, with the same dev loss at
equal updates (3.956 vs 3.952 after 305). (An earlier measurement, README "What we measured",
had bf16 slower on the same CPU.) On a 2-core Intel Xeon with AMX, with the chunked output layer
(loss.output_cross_entropy): 7,580 vs 5,492 target tokens/s in one benchmarks/throughput.py run,
and 496-535 ms per update against the previous code's float32 801-835 (alternating runs). Under
bfloat16, torch.autocast runs the matrix products (linear layers, the LSTM, the attention's
batched products) in bfloat16; the weights, the optimizer, the loss and its softmax stay float32. The choice of a run is recorded in its history and kept on --resume, so a
resumed run continues with the same arithmetic on any CPU.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from .config import TRAIN_PRECISIONS
from .errors import OptionError
from .hardware import has_bf16_matmul

if TYPE_CHECKING:
    import torch


def resolve_train_precision(choice: str, device: "torch.device | None" = None) -> str:
    """"float32", "bfloat16" or "float16" for the option value `choice` (one of TRAIN_PRECISIONS)
    on this CPU, or on `device` when it is a GPU (auto: bfloat16 where the GPU multiplies it in
    hardware, devices.gpu_has_bf16, else float16). float16 is a GPU's: the CPU's LSTM has no
    float16 kernel."""
    if choice not in TRAIN_PRECISIONS:
        raise OptionError(f"--train-precision must be one of {', '.join(TRAIN_PRECISIONS)}, got {choice!r}.")
    on_gpu = device is not None and device.type == "cuda"
    if choice == "auto" and on_gpu:
        from .devices import gpu_has_bf16

        return "bfloat16" if gpu_has_bf16(device) else "float16"
    if choice == "auto":
        return "bfloat16" if has_bf16_matmul() else "float32"
    if choice == "float16" and not on_gpu:
        raise OptionError("--train-precision float16 runs on a GPU only (--device cuda); on the CPU use float32 or bfloat16.")
    return choice


def check_resumable_on(precision: str, device: "torch.device", state_dir: Path) -> None:
    """Refuse to resume a run trained in `precision` (resolved) on `device` where it cannot run: a
    GPU's float16 run on the CPU (bfloat16 and float32 runs continue on either)."""
    if precision == "float16" and device.type != "cuda":
        raise OptionError(f"--resume: {state_dir} was trained in float16 on a GPU, which the CPU cannot "
                          "continue (its LSTM has no float16 kernel); resume it with --device cuda.")


def autocast(precision: str, device: "torch.device | None" = None) -> AbstractContextManager:
    """The context a training forward pass runs in, for a resolved precision, on `device` (CPU by default)."""
    if precision in ("bfloat16", "float16"):
        import torch

        return torch.autocast(device.type if device is not None else "cpu", dtype=getattr(torch, precision))
    return nullcontext()


def loss_scaler(precision: str, device: "torch.device", scale: float = 0.0, growth: int = 0) -> "torch.amp.GradScaler | None":
    """A gradient scaler where float16 gradients could underflow: float16 training, and bfloat16
    training on a GPU, where cuDNN runs the LSTMs in float16 under any autocast (its autocast
    wrapper casts their inputs and weights to float16). None elsewhere: bfloat16 on the CPU and
    float32 need none. `scale` and `growth` (its count of good steps) continue a saved run's."""
    if precision != "float16" and not (precision == "bfloat16" and device.type == "cuda"):
        return None
    import torch

    scaler = torch.amp.GradScaler(device.type)
    if scale:
        scaler.load_state_dict({**scaler.state_dict(), "scale": scale, "_growth_tracker": growth})
    return scaler
