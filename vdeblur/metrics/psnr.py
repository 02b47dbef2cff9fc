"""Peak signal-to-noise ratio, Nahli et al. sec. IV-C eqs. (9)-(10): 10 log10(R^2 / MSE).

MSE is taken over every pixel and channel of the full frame (no border crop, RGB, not Y), the
convention of the published GoPro numbers. R is 255 for 8-bit frames, 65535 for 16-bit ones.

On the CPU, 8- and 16-bit frames take OpenCV's integer sum of squared differences (exact; ~0.1 ms
for a 1280x720 RGB pair on one core, where the float64 difference took ~35 ms).
"""

from __future__ import annotations

import math

import numpy as np
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
    if ta.device.type == "cpu" and ta.dtype == tb.dtype and ta.dtype in (torch.uint8, torch.uint16):
        import cv2

        # exact integer squared differences, summed in float64; the order of the elements does not
        # matter, so both frames are read in ``a``'s memory order (no copy for contiguous input)
        perm = sorted(range(ta.dim()), key=lambda d: -ta.stride(d))
        xa = np.ascontiguousarray(ta.permute(perm).numpy()).reshape(1, -1)  # one row: fastest
        xb = np.ascontiguousarray(tb.permute(perm).numpy()).reshape(1, -1)
        sse, step = 0.0, 1 << 30  # OpenCV's sizes are int32
        for i in range(0, xa.shape[1], step):
            sse += cv2.norm(xa[:, i : i + step], xb[:, i : i + step], cv2.NORM_L2SQR)
        if sse == 0.0:
            return math.inf
        return 10.0 * math.log10(r * r * xa.shape[1] / sse)
    dtype = torch.float32 if ta.device.type == "mps" else torch.float64  # mps has no float64
    diff = ta.to(dtype) - tb.to(dtype)
    mse = float(diff.square_().mean(dtype=dtype))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(r * r / mse)
