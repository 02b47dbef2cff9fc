"""Point spread functions (PSFs) for the classical deconvolution methods.

The blur model is ``g = h * f + n`` (srn-scale-recurrent-analysis.md, section 2.1.1): ``h`` is the
PSF. An out-of-focus blur is modelled by a Gaussian, a motion blur by a line spread of a pixel
(ibid., figure 2). Kernels here are float32, odd-sized, centred and sum to 1.

Angles are in degrees, counter-clockwise from the +x axis with y pointing up on screen (image rows
grow downwards); a centred line kernel is symmetric, so ``angle`` and ``angle + 180`` are the same.
"""

from __future__ import annotations

import math
import re

import torch

from vdeblur.errors import UsageError

MAX_MOTION_LENGTH = 512.0
MAX_SIGMA = 100.0
PSF_FORMS = "motion:LENGTH:ANGLE or gaussian:SIGMA"

_NUM = r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
_MOTION_RE = re.compile(rf"^\s*motion\s*:{_NUM}:{_NUM}$", re.IGNORECASE)
_GAUSS_RE = re.compile(rf"^\s*gaussian\s*:{_NUM}$", re.IGNORECASE)


def motion_psf(length: float, angle: float) -> torch.Tensor:
    """Linear motion PSF: an anti-aliased line of ``length`` pixels at ``angle`` degrees (2.1.1).

    Each pixel's weight is ``max(0, 1 - d_perp) * clip(length/2 + 1/2 - |t|, 0, 1)`` with ``t`` the
    coordinate along the line and ``d_perp`` the distance to it, so a horizontal line of length 9 is
    nine ones and fractional lengths add fractional end taps. ``length <= 1`` gives the identity
    (a 1x1 kernel). Returns a float32 ``[k, k]`` tensor, ``k`` odd, summing to 1.

    >>> k = motion_psf(9, 0)
    >>> tuple(k.shape), round(float(k.sum()), 6), int((k > 0).sum())
    ((9, 9), 1.0, 9)
    """
    length, angle = float(length), float(angle)
    if not math.isfinite(length) or not math.isfinite(angle) or length <= 0:
        raise ValueError(f"motion_psf needs a finite length > 0 and a finite angle, got {length}, {angle}")
    if length <= 1.0:
        return torch.ones(1, 1)
    half = int(math.ceil(length / 2.0 + 1.0))
    r = torch.arange(-half, half + 1, dtype=torch.float64)
    y, x = torch.meshgrid(-r, r, indexing="ij")  # y up
    th = math.radians(angle)
    c, s = math.cos(th), math.sin(th)
    t = x * c + y * s
    d = (-x * s + y * c).abs()
    k = (1.0 - d).clamp_min(0) * (length / 2.0 + 0.5 - t.abs()).clamp(0, 1)
    k = torch.where(k > 1e-9, k, torch.zeros_like(k))
    nz = k.abs().sum(0).nonzero().flatten().tolist() + k.abs().sum(1).nonzero().flatten().tolist()
    trim = min(min(nz), 2 * half - max(nz))  # drop all-zero borders, keeping the kernel centred
    k = k[trim : k.shape[0] - trim, trim : k.shape[1] - trim]
    return (k / k.sum()).float()


def gaussian_psf(sigma: float) -> torch.Tensor:
    """Isotropic Gaussian PSF (out-of-focus model, 2.1.1), ``[k, k]`` with ``k = 2*ceil(3*sigma) + 1``.

    >>> k = gaussian_psf(1.0)
    >>> tuple(k.shape), round(float(k.sum()), 6)
    ((7, 7), 1.0)
    """
    sigma = float(sigma)
    if not math.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"gaussian_psf needs a finite sigma > 0, got {sigma}")
    half = max(1, int(math.ceil(3.0 * sigma)))
    r = torch.arange(-half, half + 1, dtype=torch.float64)
    g = torch.exp(-(r**2) / (2.0 * sigma**2))
    k = g[:, None] * g[None, :]
    return (k / k.sum()).float()


def parse_psf(spec: str) -> torch.Tensor:
    """Parse a ``--psf`` value: ``motion:LENGTH:ANGLE`` (pixels > 0, degrees) or ``gaussian:SIGMA``.

    Anything else raises :class:`~vdeblur.errors.UsageError` with one line naming the forms.

    >>> tuple(parse_psf("motion:9:30").shape), tuple(parse_psf("gaussian:2").shape)
    ((9, 9), (13, 13))
    """

    def bad(why: str = "") -> UsageError:
        return UsageError(f"bad --psf {spec!r}: expected {PSF_FORMS}{why}")

    if not isinstance(spec, str):
        raise bad()
    if m := _MOTION_RE.match(spec):
        length, angle = float(m.group(1)), float(m.group(2))
        if not (math.isfinite(length) and math.isfinite(angle)):
            raise bad()
        if not 0 < length <= MAX_MOTION_LENGTH:
            raise bad(f" with 0 < LENGTH <= {MAX_MOTION_LENGTH:g}")
        return motion_psf(length, angle)
    if m := _GAUSS_RE.match(spec):
        sigma = float(m.group(1))
        if not (math.isfinite(sigma) and 0 < sigma <= MAX_SIGMA):
            raise bad(f" with 0 < SIGMA <= {MAX_SIGMA:g}")
        return gaussian_psf(sigma)
    raise bad()
