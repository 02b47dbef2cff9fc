"""Precision: fp32, or fp16/bf16 by autocast, with a per-batch fp32 fallback on NaN/Inf."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Callable

from vdeblur.errors import UsageError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("fp32", "fp16", "bf16")


def check_precision(name: str) -> str:
    if name not in PRECISIONS:
        raise UsageError(f"bad --precision {name!r}: expected fp32, fp16 or bf16")
    return name


def autocast(device: "torch.device", precision: str):
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def run_with_fallback(
    fn: Callable[[], "torch.Tensor"], device: "torch.device", precision: str, warn: Callable[[str], None]
) -> "torch.Tensor":
    """Run ``fn`` under autocast; if the result has NaN/Inf, run it again in fp32 and warn."""
    import torch

    with torch.inference_mode(), autocast(device, precision):
        out = fn()
    if precision != "fp32" and not torch.isfinite(out).all():
        warn(f"{precision} gave NaN/Inf; this batch was redone in fp32")
        with torch.inference_mode():
            out = fn()
    return out.float()
