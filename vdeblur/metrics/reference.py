"""Per-frame figures against a sharp reference, as ``vdeblur run --reference`` reports them."""

from __future__ import annotations

from typing import Any

import numpy as np

from vdeblur.metrics.psnr import psnr
from vdeblur.metrics.ssim import ssim_many


class ReferenceMetrics:
    """PSNR and SSIM of a frame's input and output against its reference frame.

    ``compare(inp, out, ref)`` returns ``(psnr_input, ssim_input, psnr_output, ssim_output)``;
    ``out`` is None for a frame passed through unchanged, whose output figures are its input's.
    The figures are ``psnr``'s and ``ssim``'s; the two SSIMs share the reference's moments.

    >>> import numpy as np
    >>> a = np.zeros((16, 16, 3), np.uint8); b = a.copy(); b[0, 0, 0] = 255
    >>> m = ReferenceMetrics("cpu")
    >>> p_in, s_in, p_out, s_out = m.compare(b, None, a)
    >>> (p_in == p_out, s_in == s_out)
    (True, True)
    """

    def __init__(self, device: Any = "cpu") -> None:
        self.device = device

    def compare(self, inp: np.ndarray, out: np.ndarray | None, ref: np.ndarray) -> tuple[float, float, float, float]:
        if out is None:
            p_in, (s_in,) = psnr(inp, ref), ssim_many([inp], ref, device=self.device)
            return p_in, s_in, p_in, s_in
        s_in, s_out = ssim_many([inp, out], ref, device=self.device)
        return psnr(inp, ref), s_in, psnr(out, ref), s_out
