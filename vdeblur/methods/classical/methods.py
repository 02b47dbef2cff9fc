"""The registered classical methods: ``unsharp``, ``wiener``, ``richardson-lucy``.

Single-frame (``past = future = 0``), stateless. Wiener and Richardson-Lucy are the non-blind
deconvolutions of srn-scale-recurrent-analysis.md section 2.1.1 when ``--psf`` is given; without it
they run blind (section 2.1.2): a linear motion PSF is estimated per frame (per batch element) with
:func:`~vdeblur.methods.classical.deconv.estimate_motion_psf`. They compute in float32 whatever the
input dtype (autocast is switched off inside) and return float32, unclamped (the engine clamps).
Factory keywords are the CLI option names; values may arrive as strings and are checked here.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from vdeblur.errors import UsageError
from vdeblur.methods.base import FrameMethod, Method
from vdeblur.methods.classical.deconv import RichardsonLucy, UnsharpMask, WienerDeconv
from vdeblur.methods.classical.psf import PSF_FORMS, parse_psf
from vdeblur.methods.registry import register_method

DEFAULT_SNR = 100.0
#: accelerated Richardson-Lucy iterations: 10 reach about plain RL's 25 (benchmarks/rl_quality.py)
DEFAULT_ITERATIONS = 10
BLIND = ("", "auto", "blind")

_PSF_HELP = f"PSF: {PSF_FORMS}; omit (or 'auto') to estimate a motion PSF per frame (blind)"


def _number(option: str, value: Any, kind: type, lo: float, lo_ok: bool = False) -> Any:
    """Coerce a CLI value to ``kind`` (> lo, or >= lo with ``lo_ok``), else a one-line UsageError."""
    want = f"{'an integer' if kind is int else 'a number'} {'>=' if lo_ok else '>'} {lo:g}"
    try:
        if isinstance(value, bool):
            raise ValueError
        v = float(value.strip() if isinstance(value, str) else value)
        if kind is int:
            if not v.is_integer():
                raise ValueError
            v = int(v)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"bad --{option} {value!r}: expected {want}") from None
    if not (math.isfinite(v) and (v >= lo if lo_ok else v > lo)):
        raise UsageError(f"bad --{option} {value!r}: expected {want}")
    return v


def _psf(psf: str | None) -> torch.Tensor | None:
    if psf is None or (isinstance(psf, str) and psf.strip().lower() in BLIND):
        return None
    return parse_psf(psf)


class _Float32(nn.Module):
    """Runs ``op`` in float32 with autocast off, so FFTs never see half precision."""

    def __init__(self, op: nn.Module):
        super().__init__()
        self.op = op

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=image.device.type, enabled=False):
            return self.op(image.float())


class ClassicalMethod(FrameMethod):
    """A single-frame classical operator (see :class:`~vdeblur.methods.base.FrameMethod`)."""

    def __init__(self, op: nn.Module):
        super().__init__(_Float32(op))


@register_method(
    "unsharp",
    kind="classical",
    params={"amount": "sharpening strength (default 1.0)", "sigma": "blur radius in pixels (default 1.5)"},
)
def unsharp(amount: float = 1.0, sigma: float = 1.5) -> Method:
    """Unsharp masking: f = g + amount * (g - gaussian(g, sigma)), a no-PSF sharpening baseline."""
    amount = _number("amount", amount, float, 0.0, lo_ok=True)
    sigma = _number("sigma", sigma, float, 0.0)
    return ClassicalMethod(UnsharpMask(sigma=sigma, amount=amount))


@register_method(
    "wiener",
    kind="classical",
    params={"psf": _PSF_HELP, "snr": f"signal-to-noise ratio, regularises by 1/SNR (default {DEFAULT_SNR:g})"},
)
def wiener(psf: str | None = None, snr: float = DEFAULT_SNR) -> Method:
    """Wiener deconvolution H / (|H|^2 + 1/SNR) with a given or blindly estimated motion PSF."""
    snr = _number("snr", snr, float, 0.0)
    return ClassicalMethod(WienerDeconv(_psf(psf), snr=snr))


@register_method(
    "richardson-lucy",
    kind="classical",
    params={
        "psf": _PSF_HELP,
        "iterations": f"number of accelerated iterations (default {DEFAULT_ITERATIONS}, about 25 plain ones)",
    },
)
def richardson_lucy(psf: str | None = None, iterations: int = DEFAULT_ITERATIONS) -> Method:
    """Richardson-Lucy deconvolution with a given or blindly estimated motion PSF."""
    iterations = _number("iterations", iterations, int, 0, lo_ok=True)
    return ClassicalMethod(RichardsonLucy(_psf(psf), iterations=iterations))
