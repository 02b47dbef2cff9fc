"""Structural similarity (Wang et al. 2004), the SSIM of Nahli et al. sec. IV-C ([77]).

Gaussian window sigma 1.5 truncated at 3.5 sigma (11 taps), K1 = 0.01, K2 = 0.03, population
covariance, computed per channel on the full frame and averaged over the channels: the values of
``skimage.metrics.structural_similarity(a, b, channel_axis=2, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255)``. Like scikit-image, the SSIM map is averaged over
the pixels whose window lies inside the frame (a 5-pixel margin), so the filtering is a plain
"valid" separable convolution and no border mode enters.

Precision: the local moments are computed on frames centred on R/2 (variance is shift-invariant),
so float32 -- the default, ~2x faster than float64 on CPU -- agrees with scikit-image's float64 to
~1e-6; pass ``dtype=torch.float64`` for bit-level agreement.

Speed: on the CPU the separable Gaussian is OpenCV's ``sepFilter2D`` (SIMD, symmetric kernel) on
strips of ``_STRIP`` output rows, every channel at once, and the strips run on a few threads. No
torch operator runs on the CPU, so torch's thread pool cannot stall it when the cores are busy.
8-bit frames' means are filtered from the 8-bit planes themselves (the fastest OpenCV path); the
constants of the formula ride on the filter's ``delta``. 1280x720 RGB pair, one thread: ~21 ms of
CPU time (was ~29 ms); ``ssim_many`` compares several frames with one reference and computes the
reference's moments once (input and output against a reference: ~38 ms, was ~58 ms).
Accelerators filter the whole frame in torch.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from vdeblur.metrics._common import Device, Frame, prepare

_K1, _K2, _SIGMA, _TRUNCATE = 0.01, 0.03, 1.5, 3.5
_STRIP = 64  # output rows per CPU work unit (fewer halo rows filtered than at 32: ~10% less time at 720p)


def _gauss_taps(sigma: float) -> list[float]:
    """scipy.ndimage's Gaussian: radius int(3.5 sigma + 0.5), normalised to sum 1."""
    r = int(_TRUNCATE * sigma + 0.5)
    w = [math.exp(-0.5 * (x / sigma) ** 2) for x in range(-r, r + 1)]
    s = sum(w)
    return [v / s for v in w]


def _filter_valid(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Separable 'valid' correlation of [..., H, W] with ``taps`` along W then H.

    Shifted-slice multiply-adds: on CPU this beats a grouped conv2d by ~4x for an 11-tap kernel.
    """
    n = len(taps) - 1
    w = x.shape[-1] - n
    h = x[..., :, 0:w] * taps[0]
    for k in range(1, n + 1):
        h.add_(x[..., :, k : w + k], alpha=taps[k])
    ht = h.shape[-2] - n
    v = h[..., 0:ht, :] * taps[0]
    for k in range(1, n + 1):
        v.add_(h[..., k : ht + k, :], alpha=taps[k])
    return v


def _ssim_sum(p: torch.Tensor, mid: float, c1: float, c2: float, taps: list[float]) -> torch.Tensor:
    """Sum of the SSIM map over the valid region, from the stacked planes [x, y, x^2+y^2, xy] of
    the centred frames (shape [4, ..., H, W]); returned in float64."""
    mx, my, m2, mxy = _filter_valid(p, taps).unbind(0)
    vsum = m2 - (mx * mx + my * my)  # sigma_x^2 + sigma_y^2; == 2 cov exactly when x == y
    cov = mxy - mx * my
    mx, my = mx + mid, my + mid
    num = (2 * mx * my + c1) * (2 * cov + c2)
    den = (mx * mx + my * my + c1) * (vsum + c2)
    return (num / den).sum(dtype=torch.float64)


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _workers() -> int:
    """Threads for the CPU strips: the cores this process may use, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def _forget_pool() -> None:
    """In a forked child the pool's threads do not exist: start a new pool there when needed."""
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(_workers(), thread_name_prefix="vdeblur-ssim")
        return _POOL


def _ssim_sums_cpu(ref: np.ndarray, frames: list[np.ndarray], mid: float, c1: float, c2: float,
                   taps: list[float], dtype: type) -> list[float]:
    """Sums of the SSIM maps of each of ``frames`` against ``ref`` (H x W x C or H x W arrays) over
    the valid region, on the CPU; the reference's own moments are computed once for all of them.

    OpenCV's separable filter (every channel in one call) on strips of ``_STRIP`` output rows; the
    strips run on a few threads (OpenCV and numpy release the GIL) and their sums are added in strip
    order, so the result does not depend on the threads. Per frame and strip: four filtered planes --
    the two means (8-bit frames are filtered as they are, the centring folded into the filter's
    ``delta``), E[x^2 + y^2] and E[2xy] (the constant c2 folded in the same way)."""
    import cv2

    n = len(taps) - 1
    half = n // 2
    h, w = ref.shape[:2]
    k = np.asarray(taps, dtype)
    depth = cv2.CV_32F if dtype == np.float32 else cv2.CV_64F

    def blur(p: np.ndarray, delta: float = 0.0) -> np.ndarray:  # only the valid rows are used
        return cv2.sepFilter2D(p, depth, k, k, delta=delta, borderType=cv2.BORDER_REFLECT_101)

    def centred(p: np.ndarray) -> np.ndarray:
        return np.subtract(p, dtype(mid), dtype=dtype)

    def mean(p: np.ndarray, c: np.ndarray) -> np.ndarray:  # E[p] - mid
        return blur(np.ascontiguousarray(p), -mid) if p.dtype == np.uint8 else blur(c)

    # with centred means m = mu - mid: 2 mu_x mu_y + c1 = 2 P + Q and mu_x^2 + mu_y^2 + c1 = S + Q,
    # where P = m_x m_y, S = m_x^2 + m_y^2 (also needed for the variances) and
    # Q = 2 mid (m_x + m_y) + 2 mid^2 + c1; for x == y every pair of the formula's sides is computed
    # from bit-identical operands in the same way (2xy and x^2 + y^2 are the same plane), so SSIM is 1
    q0 = 2 * mid * mid + c1

    def strip(r0: int) -> list[float]:
        rows = slice(half, min(_STRIP + n, h - r0) - half)  # valid output rows (contiguous)
        cols = slice(half, w - half)
        yc = centred(ref[r0 : r0 + _STRIP + n])
        my = mean(ref[r0 : r0 + _STRIP + n], yc)[rows]
        yy = yc * yc
        my2 = my * my
        sums = []
        for fr in frames:
            x = fr[r0 : r0 + _STRIP + n]
            xc = centred(x)
            mx = mean(x, xc)[rows]
            p = xc * yc
            p += p  # 2xy, exactly
            xc *= xc
            xc += yy  # x^2 + y^2
            s = blur(xc, c2)[rows]  # E[x^2 + y^2] + c2
            p = blur(p, c2)[rows]  # E[2xy] + c2
            u = mx * my  # P
            q = cv2.addWeighted(mx, 2 * mid, my, 2 * mid, q0)  # Q
            mx *= mx
            mx += my2  # S
            num = cv2.scaleAdd(u, 2.0, q)  # 2 mu_x mu_y + c1
            cv2.scaleAdd(u, -2.0, p, dst=p)  # 2 cov + c2
            q += mx  # mu_x^2 + mu_y^2 + c1
            s -= mx  # sigma_x^2 + sigma_y^2 + c2
            num *= p
            q *= s
            num /= q
            sums.append(math.fsum(cv2.sumElems(num[:, cols])))
        return sums

    starts = range(0, h - n, _STRIP)
    if len(starts) < 2 or _workers() == 1:
        parts = list(map(strip, starts))
    else:
        parts = list(_pool().map(strip, starts))
    return [math.fsum(part[i] for part in parts) for i in range(len(frames))]


def _ssim_sum_cpu(a: np.ndarray, b: np.ndarray, mid: float, c1: float, c2: float, taps: list[float],
                  dtype: type) -> float:
    """Sum of the SSIM map of two H x W x C (or H x W) arrays over the valid region, on the CPU."""
    return _ssim_sums_cpu(b, [a], mid, c1, c2, taps, dtype)[0]


def _check(ta: torch.Tensor, n: int, dtype: torch.dtype) -> None:
    c, h, w = ta.shape
    if h <= n or w <= n:
        raise ValueError(f"frame {h}x{w} is smaller than the {n + 1}x{n + 1} SSIM window")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")


def _cpu_array(t: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    """[C, H, W] tensor -> H x W x C numpy view (H x W for one channel); no copy for H x W x C input."""
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.to(dtype)  # OpenCV (and numpy, for bf16) cannot take them
    x = t.movedim(0, -1).numpy()
    return x[..., 0] if x.shape[-1] == 1 else x


def ssim_many(
    frames: list[Frame], ref: Frame, *, data_range: float | None = None, device: Device = None,
    channel_axis: int = -1, dtype: torch.dtype = torch.float32, sigma: float = _SIGMA,
) -> list[float]:
    """``[ssim(f, ref) for f in frames]``, the same figures, for less: on the CPU the reference's
    own moments (its filtered mean, its squares) are computed once for all the frames."""
    taps = _gauss_taps(sigma)
    n = len(taps) - 1
    pairs = [prepare(f, ref, data_range, device, channel_axis) for f in frames]
    if not pairs:
        return []
    for ta, tb, _ in pairs:
        _check(ta, n, dtype)
    r = pairs[0][2]
    if any(p[2] != r for p in pairs):
        raise ValueError("the frames differ in data range: compare them one by one")
    c, h, w = pairs[0][0].shape
    mid, c1, c2 = r / 2.0, (_K1 * r) ** 2, (_K2 * r) ** 2
    if pairs[0][1].device.type != "cpu":  # accelerators: the whole frame at once, in torch
        out = []
        for ta, tb, _ in pairs:
            x = ta.to(dtype) - mid
            y = tb.to(dtype) - mid
            planes = torch.stack([x, y, x * x + y * y, x * y])
            out.append(float(_ssim_sum(planes, mid, c1, c2, taps)) / (c * (h - n) * (w - n)))
        return out
    npd = np.float32 if dtype == torch.float32 else np.float64
    y = _cpu_array(pairs[0][1], dtype)
    xs = [_cpu_array(ta, dtype) for ta, _, _ in pairs]
    if c > 4:  # OpenCV filters up to 4 interleaved channels at full speed: split wider frames
        totals = [0.0] * len(xs)
        for i in range(c):
            for j, v in enumerate(_ssim_sums_cpu(y[..., i], [x[..., i] for x in xs], mid, c1, c2, taps, npd)):
                totals[j] += v
    else:
        totals = _ssim_sums_cpu(y, xs, mid, c1, c2, taps, npd)
    return [t / (c * (h - n) * (w - n)) for t in totals]


def ssim(
    a: Frame, b: Frame, *, data_range: float | None = None, device: Device = None,
    channel_axis: int = -1, dtype: torch.dtype = torch.float32, sigma: float = _SIGMA,
) -> float:
    """Mean SSIM of two frames (H x W x C, or H x W), averaged over channels; 1.0 when identical.

    ``a``/``b``: numpy arrays or torch tensors, uint8 (R = 255) or uint16 (R = 65535) unless
    ``data_range`` is given -- required for float frames; 1023 for 10-bit values in uint16.
    ``channel_axis``: where the channels are (0 for C x H x W tensors). ``device``: where to
    compute (default: where the tensors are, CPU for numpy). ``dtype``: compute precision
    (float32 or float64).
    """
    return ssim_many([a], b, data_range=data_range, device=device, channel_axis=channel_axis,
                     dtype=dtype, sigma=sigma)[0]
