"""Full-reference quality metrics (PSNR, SSIM) in the convention of published GoPro results.

RGB, full frame (no border crop), data range from the dtype (255 for 8-bit) -- the metrics of
Nahli et al., "Towards Frames Selection for Fast Video Deblurring", sec. IV-C, eqs. (9)-(10).
"""

from __future__ import annotations

from vdeblur.metrics.psnr import psnr
from vdeblur.metrics.reference import ReferenceMetrics
from vdeblur.metrics.ssim import ssim, ssim_many

__all__ = ["ReferenceMetrics", "psnr", "ssim", "ssim_many"]
