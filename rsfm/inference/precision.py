"""Numeric precision of prediction: fp32, or bf16 / fp16 autocast where the hardware has it.

bf16 autocast runs matrix products and convolutions in bfloat16 and keeps reductions (softmax,
layer norm) in float32. It pays on CPUs with native bf16 instructions (AVX512-BF16, AMX) and on
CUDA GPUs; elsewhere the CPU emulates it, which is slower than fp32, so a request that the
device cannot serve falls back to fp32 with a warning. fp16 needs a CUDA GPU (or a CPU with
AVX512-FP16 / AMX-FP16).

The default is fp32, unless the model was trained in bf16 and the device supports it.
:func:`parity_report` compares one batch in the chosen precision with fp32, so users can see
what the faster path costs (class agreement and the largest probability difference).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from rsfm.errors import ConfigError

__all__ = [
    "PRECISIONS",
    "Precision",
    "PrecisionReport",
    "autocast",
    "cpu_flags",
    "device_supports",
    "parity_report",
    "resolve_precision",
]

log = logging.getLogger(__name__)

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# /proc/cpuinfo flags of CPUs that run each reduced precision natively
_CPU_FLAGS = {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("avx512_fp16", "amx_fp16")}


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def device_supports(precision: str, device: torch.device) -> tuple[bool, str]:
    """Whether ``device`` runs ``precision`` natively, and why not.

    Returns:
        ``(ok, reason)``; ``reason`` is empty when ``ok``.
    """
    if precision == "fp32":
        return True, ""
    if device.type == "cuda":
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            return False, f"{torch.cuda.get_device_name(device)} has no bf16 support"
        return True, ""
    if device.type == "cpu":
        flags = cpu_flags()
        if any(f in flags for f in _CPU_FLAGS[precision]):
            return True, ""
        want = " or ".join(f.upper().replace("_", "-") for f in _CPU_FLAGS[precision])
        cap = torch.backends.cpu.get_cpu_capability()
        return False, f"this CPU ({cap}) has no {want} instructions, so {precision} would be emulated"
    return False, f"{precision} autocast is not supported on {device.type}"


def resolve_precision(requested: str | None, device: torch.device,
                      trained: str | None = None) -> str:
    """The precision to run: the requested one when the device has it, else fp32 (warned).

    Args:
        requested: ``fp32``, ``bf16``, ``fp16`` or None (default: bf16 when the model was
            trained in bf16 and the device supports it, else fp32).
        device: Where the model runs.
        trained: The model's training precision when known (``bf16``, ``fp16``, ``no``).

    Raises:
        ConfigError: An unknown precision name.
    """
    if requested is None:
        if trained == "bf16" and device_supports("bf16", device)[0]:
            log.info("The model was trained in bf16: predicting with bf16 autocast "
                     "(precision='fp32' to turn it off).")
            return "bf16"
        return "fp32"
    if requested not in PRECISIONS:
        raise ConfigError(f"precision {requested!r} is not one of {list(PRECISIONS)}.")
    ok, why = device_supports(requested, device)
    if not ok:
        log.warning("precision %s requested but %s: predicting in fp32.", requested, why)
        return "fp32"
    return requested


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` on ``device`` (a no-op for fp32)."""
    if precision == "fp32" or device.type not in ("cpu", "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[precision])


@dataclass(frozen=True)
class PrecisionReport:
    """One batch predicted in a reduced precision and in fp32.

    Attributes:
        precision: The reduced precision (``bf16`` or ``fp16``).
        agreement: Fraction of pixels whose class (argmax) is the same as in fp32.
        max_prob_diff: Largest absolute difference of a class probability.
        pixels: Pixels compared.
    """

    precision: str
    agreement: float
    max_prob_diff: float
    pixels: int

    def __str__(self) -> str:
        return (f"{self.precision} vs fp32 on the first batch ({self.pixels} pixels): class "
                f"agreement {self.agreement:.4%}, max probability difference "
                f"{self.max_prob_diff:.4f}")


def parity_report(precision: str, reduced: torch.Tensor, full: torch.Tensor) -> PrecisionReport:
    """Compare class probabilities ``(B, K, H, W)`` of a reduced precision with fp32."""
    agree = (reduced.argmax(1) == full.argmax(1)).float().mean().item()
    diff = (reduced.float() - full.float()).abs().max().item()
    pixels = reduced.shape[0] * reduced.shape[-2] * reduced.shape[-1]
    return PrecisionReport(precision, float(agree), float(diff), int(pixels))

