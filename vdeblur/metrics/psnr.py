"""Peak signal-to-noise ratio, Nahli et al. sec. IV-C eqs. (9)-(10): 10 log10(R^2 / MSE).

MSE is taken over every pixel and channel of the full frame (no border crop, RGB, not Y), the
convention of the published GoPro numbers. R is 255 for 8-bit frames, 65535 for 16-bit ones.
"""

from __future__ import annotations

import math

import torch

from vdeblur.metrics._common import Device, Frame, prepare


def psnr(
    a: Frame, b: Frame, *, data_range: float | None = None, device: Device = None,
    channel_axis: int = -1,
) -> float:
    """PSNR in dB between two frames (H x W x C, or H x W); ``math.inf`` for identical frames.

    ``a``/``b``: numpy arrays or torch tensors, uint8 (R = 255) or uint16 (R = 65535) unless
    ``data_range`` is given -- required for float frames; 1023 for 10-bit values in uint16.
    ``channel_axis``: where the channels are (0 for C x H x W tensors). ``device``: where to
    compute (default: where the tensors are, CPU for numpy). Accumulates in float64.
    """
    ta, tb, r = prepare(a, b, data_range, device, channel_axis)
    dtype = torch.float32 if ta.device.type == "mps" else torch.float64  # mps has no float64
    diff = ta.to(dtype) - tb.to(dtype)
    mse = float(diff.square_().mean(dtype=dtype))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(r * r / mse)
