"""``lucky``: restore a blurred frame from its sharp neighbours ("lucky frames").

Handheld video is only partly blurred: sharp frames sit between the blurred ones
(deblurnet-frame-selection.md, "Towards Frames Selection for Fast Video Deblurring", section I,
and section IV-B, where REBVIDS is built on that premise: blurred frames are the mean of the
sub-frames of the motion during an exposure, eq. 7, with sharp frames left between them). A blurred
frame's content is therefore usually present, sharp, a few frames away. This method moves it
into the blurred frame; it needs no training and no GPU and does not invent detail.

For each frame the selector labels blurred (frames labelled sharp pass through unchanged; the
engine never hands them to a method):

1. the nearest frames labelled sharp within +-``radius`` frames, up to ``per_side`` on each side;
2. each is aligned to the blurred frame by dense optical flow (OpenCV DIS on luma, at a work
   scale of at most ``WORK_SIDE`` pixels -- the nearest neighbour's down to that scale, on which
   the blur is fitted, the others' to half of it (``FAR_FINEST``) -- started from the global shift found by phase
   correlation: DIS alone misses motions beyond its coarsest level; but the shift is the
   background's, and with parallax, a large moving object or roll a weak peak misleads, which no
   threshold on the peak tells apart, so where the shift is material the flow from zero is
   computed too and the one whose trusted pixels are expected to gain more -- the guard's sum
   below, no reference needed -- is kept; likewise the coarse flow the blur is first fitted on
   is the one from zero where it matches better over the frame), computed between the
   blurred frame and the sharp frame blurred with this frame's estimated blur, so that the blur
   does not bias the flow. The blur is
   a field of general kernels, one per tile (parallax and moving objects blur differently), each
   fitted by regularised least squares in the Fourier domain and drawn towards the whole frame's
   kernel where its tile says little; it is fitted between the blurred frame and the nearest
   sharp frame coarsely aligned, then refitted where the two agree after the finer flow;
3. each sharp frame is warped onto the blurred one, re-blurred with the kernels and compared with
   the blurred frame, in colour: a pixel is trusted where the local RMS difference is within the
   noise plus the lesser of a fraction of what the blur took away there (a replaced pixel must
   gain more than the warp's error can lose) and what a small misalignment makes at the local
   gradient;
   where they disagree -- occlusions, independently moving objects, parallax the flow missed,
   wrong flow -- it is not;
   the guard: a neighbour whose trusted pixels are not expected to gain (summed over them, the
   squared gain under the squared mismatch plus the noise: a frame labelled blurred that is
   sharp) is not used; if that is the nearest one, on which the blur was fitted, the blur itself
   is unverified (a sharp frame with large motion: a wide kernel fitted on a misaligned pair
   hides the misalignment): then every neighbour is tried and a pixel is taken only where two
   neighbours' warps agree (within the noise and a small misalignment), so a single wrong warp
   re-blurred with a wrong kernel cannot replace the frame;
4. the trusted warped pixels of all neighbours are blended (weighted by trust); where none is
   trusted the fallback shows through: the input itself, or a registered single-frame method
   (``fallback=NAME``). The trust maps are eroded and feathered, so there are no seams; a frame
   with no sharp neighbour within the radius is the fallback's output exactly.

The engine gives the method the labels of its window (``needs_labels``) and the frames it picks
(:meth:`Lucky.pick`), ``radius`` frames back and ahead, in one pass (``vdeblur.engine.pipeline``).
Everything here is NumPy/OpenCV on the CPU; only the fallback runs on the run's device.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch

from vdeblur.errors import UsageError
from vdeblur.methods.base import Method
from vdeblur.methods.registry import register_method

DEFAULT_RADIUS = 8
DEFAULT_PER_SIDE = 2
#: the work scale's longest side: flow, blur estimate and trust test run on frames this large
#: (the final warp and blend run at full resolution)
WORK_SIDE = 320
#: DIS optical flow: preset, computed down to the finest scale (0: full work resolution)
FLOW_PRESET = cv2.DISOPTICAL_FLOW_PRESET_FAST
FINEST_SCALE = 0
#: the blur kernel's radius, a fraction of the work scale's longest side, and the tiles of the
#: blur field (one kernel each), a fraction of it too
KR = 0.035
TILE = 0.35
#: refits of the blur field where the nearest neighbour and the frame agree
REFITS = 1
#: the nearest two neighbours are always used; farther ones only while the trusted share of the
#: frame is below this
ENOUGH = 0.8
#: the coarse flow (for the first blur estimate) at half the work scale
COARSE_HALF = True
#: smoothing of the flow (Gaussian sigma, work-scale pixels) after a 5x5 median
FLOW_SMOOTH = 2.0
#: how strongly a tile's kernel is drawn towards the frame's (the fit's regulariser)
TILE_PRIOR = 0.1
#: trust test: a pixel is fully trusted while the local RMS difference (in [0, 1]) between the
#: re-blurred warp and the frame is within TRUST_LO (noise, compression) plus the lesser of
#: GAIN_TOL times what the blur took away there and SHIFT_TOL pixels times the local gradient;
#: not trusted beyond twice that
TRUST_LO = 0.016
GAIN_TOL = 0.5
SHIFT_TOL = 1.2
#: erosion of the trust maps, in kernel radii (no untrusted pixel's neighbourhood is trusted)
ERODE = 0.25
#: the final warp's interpolation at the work scale; above it the flow is upsampled and its
#: precision, not the interpolation, decides: linear
WARP_INTERP = cv2.INTER_CUBIC
#: the guard: a neighbour is used only where, summed over the pixels it would replace (weighted
#: by trust), what the blur took away (the squared gain) exceeds GUARD_C times the squared
#: re-blur mismatch plus GUARD_N squared (noise, in [0, 1]); else it is dropped (a frame labelled
#: blurred that is not: its warps bring their own error and nothing to gain)
GUARD_C = 1.0
GUARD_N = 2.0 / 255
#: the global shift (phase correlation) that starts each flow is used where the correlation's
#: peak response is at least this (a clear peak: 0.25-1 on real pairs, about 0 on no match)
PC_MIN = 0.12
#: where the global shift is at least this (work-scale pixels), each neighbour's flow is also
#: computed from zero and the one with the larger expected gain is kept
START_BOTH = 2.0
#: the flows of all neighbours but the nearest stop at this DIS scale (1: half the work scale: their
#: smoother flows serve them better on the dev clips, at a quarter of the finest level's cost)
FAR_FINEST = 1


def _int_param(name: str, value: Any, lo: int) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        f = float(value.strip() if isinstance(value, str) else value)
        if not f.is_integer():
            raise ValueError
        v = int(f)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"bad --param {name}={value!r}: expected an integer >= {lo}") from None
    if v < lo:
        raise UsageError(f"bad --param {name}={value!r}: expected an integer >= {lo}")
    return v


class Timer:
    """Seconds spent per stage (flow, warp, blur estimate, trust test, blend), summed."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._t = 0.0

    def start(self) -> None:
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        t = time.perf_counter()
        self.seconds[stage] += t - self._t
        self._t = t


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


_GRIDS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates x, y of an h x w image (kept for the last few sizes)."""
    g = _GRIDS.get((h, w))
    if g is None:
        if len(_GRIDS) > 4:
            _GRIDS.clear()
        g = _GRIDS[(h, w)] = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return g


def _warp(img: np.ndarray, flow: np.ndarray, gx: np.ndarray, gy: np.ndarray, interp: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``img`` sampled at x + flow(x) (backward warp onto the frame the flow was computed from)."""
    return cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], interp, borderMode=cv2.BORDER_REPLICATE)


def global_shift(a: np.ndarray, b: np.ndarray, min_response: float = None) -> tuple[float, float]:
    """The translation (dx, dy) with b(x + d) ~ a(x), by phase correlation (float luma images of
    one size), or (0, 0) where the correlation has no clear peak. DIS refines a flow from coarse
    to fine starting at zero on a pyramid whose coarsest level is about 4 patches wide: a motion
    of more than a patch or two there (a fast pan, or a neighbour several frames away: 50 px on a
    320 px frame) is out of its reach and it settles on a wrong, smooth flow that a wide fitted
    kernel then re-blurs into agreement. Started from the global shift, it refines what is left
    (parallax, roll, zoom, moving objects)."""
    if min_response is None:
        min_response = PC_MIN
    h, w = a.shape
    win = _GRIDS.get(("hann", h, w))
    if win is None:
        win = _GRIDS[("hann", h, w)] = cv2.createHanningWindow((w, h), cv2.CV_32F)
    (dx, dy), resp = cv2.phaseCorrelate(a.copy(), b.copy(), win)  # it windows its inputs in place
    if not (resp >= min_response and np.isfinite(dx) and np.isfinite(dy)):
        return 0.0, 0.0
    return float(dx), float(dy)


def _shifted_flow(dis: Any, a8: np.ndarray, b8: np.ndarray, shift: tuple[float, float], fuse: bool = False) -> np.ndarray:
    """DIS flow from ``a8`` to ``b8`` (uint8 luma), run on the two images' overlap after the
    whole-pixel part of the global ``shift``, so that DIS (from zero, on its own pyramid) only
    finds what is left; the flow is extended to the rest by its border values (those pixels map
    outside the neighbour). (DIS can be given a starting flow instead, but then it skips much of
    its own coarse-to-fine search; a moved image's empty border would pull its coarse levels.)
    ``fuse``: also the flow from zero, and per pixel the one whose warp matches better locally
    (the global shift is the background's; a large moving object or a near layer may be nearer
    zero; where the flow from zero matches better over the whole frame, it alone): for the first,
    coarse flow at half the work scale, on which the blur is fitted."""
    dx, dy = round(shift[0]), round(shift[1])
    if dx == 0 and dy == 0:
        return dis.calc(a8, b8, None)
    h, w = a8.shape[:2]
    x0, x1, y0, y1 = max(0, -dx), min(w, w - dx), max(0, -dy), min(h, h - dy)
    if x1 - x0 < 16 or y1 - y0 < 16:
        return dis.calc(a8, b8, None)
    fc = dis.calc(np.ascontiguousarray(a8[y0:y1, x0:x1]), np.ascontiguousarray(b8[y0 + dy:y1 + dy, x0 + dx:x1 + dx]), None)
    f = cv2.copyMakeBorder(fc, y0, h - y1, x0, w - x1, cv2.BORDER_REPLICATE)
    f[..., 0] += dx
    f[..., 1] += dy
    if fuse:
        z = dis.calc(a8, b8, None)
        gx, gy = _grid(*a8.shape[:2])
        a = a8.astype(np.float32)
        n = max(5, (min(a8.shape[:2]) // 12) | 1)
        ef = cv2.blur(np.abs(_warp(b8, f, gx, gy).astype(np.float32) - a), (n, n))
        ez = cv2.blur(np.abs(_warp(b8, z, gx, gy).astype(np.float32) - a), (n, n))
        if float(ez.mean()) <= float(ef.mean()):
            return z  # from zero it matches better over the frame: the shift is no background's
        f = np.where((ez < ef)[..., None], z, f)
    return f


def _inside(flow: np.ndarray, gx: np.ndarray, gy: np.ndarray, margin: float = 1.0) -> np.ndarray:
    """1 where x + flow(x) lands inside the image (with a margin), else 0."""
    h, w = flow.shape[:2]
    x, y = gx + flow[..., 0], gy + flow[..., 1]
    return ((x >= margin) & (x <= w - 1 - margin) & (y >= margin) & (y <= h - 1 - margin)).astype(np.float32)


def _cmax(x: np.ndarray) -> np.ndarray:
    """The largest of the colour channels of ``x`` (h x w x 3), per pixel; ``x`` if it has none
    (NumPy's max over the last axis of a small size is an order of magnitude slower)."""
    if x.ndim != 3:
        return x
    return np.maximum(np.maximum(x[..., 0], x[..., 1]), x[..., 2])


def _taper(h: int, w: int) -> np.ndarray:
    """A separable window that fades to zero at the borders (so the FFT sees no edges)."""
    def ramp(n: int) -> np.ndarray:
        m = max(2, n // 8)
        r = np.ones(n, np.float32)
        e = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, m, dtype=np.float32))
        r[:m], r[n - m:] = e, e[::-1]
        return r
    return np.outer(ramp(h), ramp(w))


def fit_kernel(sharp: np.ndarray, blurred: np.ndarray, radius: int, weight: np.ndarray | None = None,
               reg: float = 1e-2, centre: bool = True, prior: np.ndarray | None = None) -> np.ndarray:
    """The kernel k (side 2 * radius + 1, >= 0, sum 1, centroid at the centre; for cv2.filter2D,
    which correlates) that best explains ``blurred`` ~ filter2D(``sharp``, k) (both aligned luma)
    by regularised least squares in the Fourier domain; ``weight`` (0..1) keeps the pixels where
    the two disagree out of the fit; the fit is drawn towards ``prior`` (a kernel of the same
    form) where the data say little."""
    h, w = blurred.shape
    win = _taper(h, w) if weight is None else _taper(h, w) * weight
    s = (sharp - sharp.mean()) * win
    b = (blurred - blurred.mean()) * win
    fs, fb = np.fft.rfft2(s), np.fft.rfft2(b)
    p = (fs.real ** 2 + fs.imag ** 2)
    lam = reg * p.mean() + 1e-12
    num = np.conj(fs) * fb
    if prior is not None:  # argmin |S K - B|^2 + lam |K - P|^2
        pr = np.zeros((h, w))
        pr[h // 2 - radius:h // 2 + radius + 1, w // 2 - radius:w // 2 + radius + 1] = prior[::-1, ::-1]
        num = num + lam * np.fft.rfft2(np.fft.ifftshift(pr))
    k = np.fft.irfft2(num / (p + lam), s=(h, w))
    k = np.fft.fftshift(k)[h // 2 - radius:h // 2 + radius + 1, w // 2 - radius:w // 2 + radius + 1]
    k = k[::-1, ::-1]  # a convolution kernel; cv2.filter2D correlates
    k = np.maximum(np.nan_to_num(k, nan=0.0, posinf=0.0, neginf=0.0), 0)
    k[k < 0.05 * k.max(initial=0)] = 0  # the noise floor of the fit
    if k.sum() <= 0:
        k = np.zeros((2 * radius + 1,) * 2)
        k[radius, radius] = 1.0
        return k.astype(np.float32)
    k /= k.sum()
    if not centre:
        return k.astype(np.float32)
    # centre the kernel on its centroid: a shift is the flow's business, not the blur's
    ys, xs = np.mgrid[0:2 * radius + 1, 0:2 * radius + 1]
    cy, cx = float((k * ys).sum()), float((k * xs).sum())
    m = np.float32([[1, 0, radius - cx], [0, 1, radius - cy]])
    k = cv2.warpAffine(k.astype(np.float32), m, k.shape[::-1], flags=cv2.INTER_LINEAR)
    k = np.maximum(k, 0)
    return (k / k.sum()).astype(np.float32)


def _tents(n: int, parts: int) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """``parts`` tent windows over 0..n-1 that sum to 1 (flat beyond the outer centres), and the
    span [a, b) where each is non-zero."""
    centres = (np.arange(parts) + 0.5) * n / parts
    x = np.arange(n, dtype=np.float32)
    if parts == 1:
        return [np.ones(n, np.float32)], [(0, n)]
    d = n / parts
    ws, spans = [], []
    for j, c in enumerate(centres):
        t = np.clip(1 - np.abs(x - c) / d, 0, 1)
        if j == 0:
            t[x <= c] = 1
        if j == parts - 1:
            t[x >= c] = 1
        nz = np.nonzero(t)[0]
        ws.append(t.astype(np.float32))
        spans.append((int(nz[0]), int(nz[-1]) + 1))
    return ws, spans


class BlurField:
    """A blur that varies over the frame (parallax, moving objects): one kernel per tile, fitted on
    the tile, applied with tent windows that sum to one, so the blurred image has no seams."""

    def __init__(self, h: int, w: int, radius: int, tile: int):
        self.h, self.w, self.r = h, w, radius
        self.wy, self.sy = _tents(h, max(1, round(h / tile)))
        self.wx, self.sx = _tents(w, max(1, round(w / tile)))
        self.kernels: dict[tuple[int, int], np.ndarray] = {}

    def tiles(self):
        for j, (wy, (y0, y1)) in enumerate(zip(self.wy, self.sy)):
            for i, (wx, (x0, x1)) in enumerate(zip(self.wx, self.sx)):
                yield (j, i), (y0, y1, x0, x1), np.outer(wy[y0:y1], wx[x0:x1])

    def fit(self, sharp: np.ndarray, blurred: np.ndarray, weight: np.ndarray) -> None:
        """One kernel for the frame, then each tile's, drawn towards it where the tile says little."""
        whole = fit_kernel(sharp, blurred, self.r, np.maximum(weight, 1e-3))
        for key, (y0, y1, x0, x1), tw in self.tiles():
            wgt = weight[y0:y1, x0:x1] * tw
            self.kernels[key] = fit_kernel(sharp[y0:y1, x0:x1], blurred[y0:y1, x0:x1], self.r,
                                           np.maximum(wgt, 1e-3), reg=TILE_PRIOR, prior=whole)

    def apply(self, img: np.ndarray) -> np.ndarray:
        out = np.zeros_like(img)
        r = self.r
        for key, (y0, y1, x0, x1), tw in self.tiles():
            a0, a1, b0, b1 = max(0, y0 - r), min(self.h, y1 + r), max(0, x0 - r), min(self.w, x1 + r)
            f = cv2.filter2D(img[a0:a1, b0:b1], -1, self.kernels[key], borderType=cv2.BORDER_REFLECT)
            out[y0:y1, x0:x1] += f[y0 - a0:y1 - a0, x0 - b0:x1 - b0] * (tw[..., None] if img.ndim == 3 else tw)
        return out


class Lucky(Method):
    """The ``lucky`` method (see the module docstring). ``pick`` chooses the frames of a window it
    needs; ``restore_frame`` restores one blurred frame from them."""

    needs_labels = True

    def __init__(self, radius: int = DEFAULT_RADIUS, per_side: int = DEFAULT_PER_SIDE,
                 fallback: Method | None = None, fallback_name: str | None = None):
        super().__init__()
        self.radius = radius
        self.past = self.future = radius
        self.per_side = per_side
        self.fallback = fallback  # a submodule: it follows the method to its device
        self.fallback_name = fallback_name
        self.timer = Timer()
        self.last_coverage = 0.0  # the fraction of the last frame taken from its neighbours
        self._flow = None
        self._far = None

    # -- what the engine asks ------------------------------------------------------------------
    def pick(self, t: int, labels: dict[int, bool]) -> list[int]:
        """The indices of the sharp frames frame ``t`` is restored from: the nearest frames
        labelled sharp (``labels[i]`` False) within the radius, up to ``per_side`` on each side,
        nearest first. ``labels`` holds the frames of the window that exist."""
        before = [t - d for d in range(1, self.radius + 1) if labels.get(t - d) is False][: self.per_side]
        after = [t + d for d in range(1, self.radius + 1) if labels.get(t + d) is False][: self.per_side]
        return sorted(before + after, key=lambda i: (abs(i - t), i))

    def restore(self, window: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """Without labels (called as a plain method): the fallback's output for the middle frame."""
        x = window[:, self.past]
        return (self.fallback(x.unsqueeze(1))[0] if self.fallback is not None else x), None

    # -- the method ----------------------------------------------------------------------------
    def _flow_to(self, b8: np.ndarray, s8: np.ndarray, shift: tuple[float, float] = (0.0, 0.0), far: bool = False) -> np.ndarray:
        """Dense flow from the frame to a (blurred-to-match) neighbour, smoothed: DIS's
        per-patch noise costs more than the detail of the motion a smoothing loses (where it
        loses it, the trust test sees it). The neighbour is first moved by the global ``shift``
        (see :func:`global_shift`) and DIS finds what is left."""
        f = _shifted_flow(self._dis(far), b8, s8, shift)
        if FLOW_SMOOTH > 0:
            f = cv2.GaussianBlur(cv2.medianBlur(f, 5), (0, 0), FLOW_SMOOTH)
        return f

    def _dis(self, far: bool = False) -> Any:
        if far:
            if self._far is None:
                self._far = cv2.DISOpticalFlow_create(FLOW_PRESET)
                self._far.setFinestScale(FAR_FINEST)
            return self._far
        if self._flow is None:
            self._flow = cv2.DISOpticalFlow_create(FLOW_PRESET)
            if FINEST_SCALE is not None:
                self._flow.setFinestScale(FINEST_SCALE)
        return self._flow

    def restore_frame(self, frame: np.ndarray, neighbours: Sequence[np.ndarray],
                      fallback: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """Restore ``frame`` (HxWx3 uint8 or uint16) from ``neighbours`` (sharp frames of the same
        size and type, nearest first). ``fallback(frame)`` gives the single-frame output used
        where no neighbour is trusted (default: ``frame`` itself)."""
        tm = self.timer
        tm.start()
        fb = (lambda a: a) if fallback is None else fallback
        neighbours = [n for n in neighbours if n.shape == frame.shape and n.dtype == frame.dtype]  # a size change
        if not neighbours:
            self.last_coverage = 0.0
            return fb(frame)
        peak = 65535.0 if frame.dtype == np.uint16 else 255.0
        h, w = frame.shape[:2]
        scale = min(1.0, WORK_SIDE / max(h, w))
        sw, sh = max(8, round(w * scale)), max(8, round(h * scale))
        inv = 1.0 / scale

        def small(a: np.ndarray) -> np.ndarray:  # the work scale, float in [0, 1]
            a = a if scale == 1.0 else cv2.resize(a, (sw, sh), interpolation=cv2.INTER_AREA)
            return a.astype(np.float32) * np.float32(1.0 / peak)

        def luma(a: np.ndarray) -> np.ndarray:
            return cv2.cvtColor(small(a), cv2.COLOR_RGB2GRAY)

        b = luma(frame)
        colours = [small(n) for n in neighbours]  # once each: the luma and the colour warp
        sharp = [cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in colours]
        bc = small(frame)  # colour, for the trust test: a hue a luma test cannot see
        gx, gy = _grid(sh, sw)
        dis = self._dis()
        b8 = _u8(b)
        tm.lap("prepare")

        # the blur of this frame, from the nearest sharp frame coarsely aligned (both smoothed
        # alike so the blur does not bias the flow), then refitted where the two agree
        kr = max(3, min(25, round(KR * max(sw, sh))))
        sig = max(1.0, kr / 3.0)
        shifts = [global_shift(b, sharp[0])]  # the others' when they are used
        if COARSE_HALF and min(sw, sh) >= 64:  # both smoothed: half the work scale sees the same
            half = (sw // 2, sh // 2)
            hs = (shifts[0][0] * half[0] / sw, shifts[0][1] * half[1] / sh)
            f0 = _shifted_flow(dis, _u8(cv2.resize(cv2.GaussianBlur(b, (0, 0), sig), half, interpolation=cv2.INTER_AREA)),
                               _u8(cv2.resize(cv2.GaussianBlur(sharp[0], (0, 0), sig), half, interpolation=cv2.INTER_AREA)), hs,
                               fuse=True)
            f0 = cv2.resize(f0, (sw, sh), interpolation=cv2.INTER_LINEAR) * np.float32([sw / half[0], sh / half[1]])
        else:
            f0 = _shifted_flow(dis, _u8(cv2.GaussianBlur(b, (0, 0), sig)), _u8(cv2.GaussianBlur(sharp[0], (0, 0), sig)),
                               shifts[0], fuse=True)
        tm.lap("flow")
        w0 = _warp(sharp[0], f0, gx, gy)
        inside0 = _inside(f0, gx, gy, kr)
        tm.lap("warp")
        k = BlurField(sh, sw, kr, max(4 * kr, TILE * max(sw, sh)))
        k.fit(w0, b, inside0)
        tm.lap("blur estimate")

        flows, trusts, warps = [], [], []
        unverified = False
        union = np.zeros((sh, sw), np.float32)

        def flow_warp(s: np.ndarray, s8: np.ndarray, start: tuple[float, float], far: bool) -> tuple[np.ndarray, np.ndarray]:
            """The flow from ``start`` to ``s8`` (the neighbour ``s`` blurred to match) and ``s``
            warped by it (luma, work scale)."""
            f = self._flow_to(b8, s8, start, far)
            tm.lap("flow")
            ws = _warp(s, f, gx, gy)
            tm.lap("warp")
            return f, ws

        def start_gain(s: np.ndarray, s8: np.ndarray, start: tuple[float, float]) -> tuple[float, np.ndarray, np.ndarray]:
            """The guard's sum (the expected gain, luma, with the blur as it stands) of the flow
            from ``start``, the flow and its warp."""
            f, ws = flow_warp(s, s8, start, far)
            t, ben = self._trust(k.apply(ws), b, ws, kr)
            tm.lap("trust test")
            return float((t * _inside(f, gx, gy, 1.0) * ben).sum()), f, ws

        for i, s in enumerate(sharp):
            if i >= 2 and float(union.mean()) >= ENOUGH and not unverified:
                break  # the nearest neighbours explain the frame: farther ones would add little
            # the flow from the global shift or the flow from zero: the shift is the
            # background's and DIS from zero misses it where it is large, but with parallax, a
            # large moving object or roll a weak correlation peak can mislead; no threshold on
            # the peak separates the two, so where they differ both are tried and the one with
            # the larger expected gain (the guard's sum, luma) is kept
            if i >= len(shifts):
                shifts.append(global_shift(b, s))
            start = shifts[i]
            far = i >= 1
            s8 = _u8(k.apply(s))  # blurred to match, once for both starts
            tm.lap("flow")
            if max(abs(start[0]), abs(start[1])) >= START_BOTH:
                (gs, fs, wss), (gz, fz, wsz) = start_gain(s, s8, start), start_gain(s, s8, (0.0, 0.0))
                start, f, ws = (start, fs, wss) if gs >= gz else ((0.0, 0.0), fz, wsz)
            else:
                f, ws = flow_warp(s, s8, start, far)
            for _ in range(REFITS if i == 0 else 0):  # refit the blur where warp and frame agree, with the better flow
                agree = self._trust(k.apply(ws), b, ws, kr)[0] * _inside(f, gx, gy, kr)
                k.fit(ws, b, agree)
                tm.lap("blur estimate")
                f, ws = flow_warp(s, _u8(k.apply(s)), start, far)
            wc = _warp(colours[i], f, gx, gy)
            tm.lap("warp")
            trust, ben = self._trust(k.apply(wc), bc, wc, kr)
            trust *= _inside(f, gx, gy, 1.0)
            if float((trust * ben).sum()) <= 0:
                trust[:] = 0  # the guard: replacing these pixels is expected to lose
                # the blur was fitted on the nearest pair: if it does not gain there, it is
                # unverified (a sharp frame, or a wide kernel hiding a wrong flow)
                unverified = unverified or i == 0
            trusts.append(trust)
            flows.append(f)
            warps.append(wc)
            np.maximum(union, trust, out=union)
            tm.lap("trust test")

        # the blend's weights at the work scale: neighbour i gets cover * t_i / sum(t), the fallback
        # 1 - cover (cover: the best trust of any neighbour); then at full resolution: warp the
        # neighbours' colours and sum
        if unverified:  # a pixel is taken only where two neighbours' warps agree
            trusts = self._agreed(trusts, warps)
            tm.lap("trust test")
        cover = np.max(trusts, axis=0)
        self.last_coverage = float(cover.mean())
        if self.last_coverage <= 0:
            out = fb(frame)
            tm.lap("fallback")
            return out
        norm = cover / np.maximum(np.sum(trusts, axis=0), 1e-6)
        weights = [(n, f, t * norm) for n, f, t in zip(neighbours, flows, trusts) if t.max() > 0]
        weights.append((None, None, 1.0 - cover))
        base = fb(frame)
        tm.lap("fallback")
        fgx, fgy = _grid(h, w) if scale != 1.0 else (gx, gy)
        acc = np.zeros((h, w, 3), np.float32)
        for n, f, a in weights:
            if np.isscalar(a):
                a = np.full((sh, sw), a, np.float32)
            # only the rows and columns where the weight is not zero (a farther neighbour often
            # fills a small part): the bounding box at the work scale, one work pixel wider (the
            # linear upsampling's reach), at full resolution
            rows, cols = np.flatnonzero(a.max(axis=1) > 0), np.flatnonzero(a.max(axis=0) > 0)
            if rows.size == 0:
                continue
            y0, y1 = max(0, int((rows[0] - 1) * inv)), min(h, int(np.ceil((rows[-1] + 2) * inv)))
            x0, x1 = max(0, int((cols[0] - 1) * inv)), min(w, int(np.ceil((cols[-1] + 2) * inv)))
            if scale != 1.0:
                a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
            a = a[y0:y1, x0:x1]
            a3 = cv2.merge([a, a, a])
            if n is None:
                img = base[y0:y1, x0:x1]
            else:
                if scale != 1.0:
                    f = cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(inv)
                tm.lap("blend")
                img = _warp(n, f[y0:y1, x0:x1], fgx[y0:y1, x0:x1], fgy[y0:y1, x0:x1],
                            WARP_INTERP if scale == 1.0 else cv2.INTER_LINEAR)
                tm.lap("warp")
            acc[y0:y1, x0:x1] += cv2.multiply(img, a3, dtype=cv2.CV_32F)
            tm.lap("blend")
        if frame.dtype == np.uint8:
            res = cv2.convertScaleAbs(acc)  # rounded and saturated (the sum is >= 0)
        else:
            res = np.clip(acc + 0.5, 0, peak).astype(frame.dtype)
        tm.lap("blend")
        return res

    @staticmethod
    def _agreed(trusts: list[np.ndarray], warps: list[np.ndarray]) -> list[np.ndarray]:
        """The trust maps where the blur is unverified: each neighbour's trust is capped by the
        best trust of another neighbour whose warp agrees with it (the local RMS difference, the
        worst colour channel, within twice the noise plus what SHIFT_TOL pixels of misalignment
        make at the lesser local gradient): one wrong warp alone is not taken."""
        def grad(x: np.ndarray) -> np.ndarray:
            g = np.sqrt(cv2.Sobel(x, -1, 1, 0, ksize=3, scale=1 / 8) ** 2 + cv2.Sobel(x, -1, 0, 1, ksize=3, scale=1 / 8) ** 2)
            return cv2.blur(_cmax(g), (5, 5))

        used = [i for i, t in enumerate(trusts) if t.max() > 0]
        grads = {i: grad(warps[i]) for i in used}
        support = [np.zeros_like(t) for t in trusts]
        for n, i in enumerate(used):
            for j in used[n + 1:]:
                d = warps[i] - warps[j]
                rms = np.sqrt(np.maximum(cv2.blur(_cmax(d * d), (5, 5)), 0))
                agree = np.clip(2.0 - rms / (2 * TRUST_LO + SHIFT_TOL * np.minimum(grads[i], grads[j])), 0, 1)
                np.maximum(support[i], trusts[j] * agree, out=support[i])
                np.maximum(support[j], trusts[i] * agree, out=support[j])
        return [np.minimum(t, s) for t, s in zip(trusts, support)]

    @staticmethod
    def _trust(reblurred: np.ndarray, blurred: np.ndarray, warped: np.ndarray, kr: int) -> np.ndarray:
        """0..1 per pixel: how well the re-blurred warp explains the blurred frame. The local RMS
        difference (the worst colour channel) must be within the noise plus the lesser of: a
        fraction of what the blur took away here (the local RMS of warp - re-blurred warp: a
        replaced pixel must gain more than the warp's error can lose), and what a misalignment of
        SHIFT_TOL pixels makes at the local gradient (at an occlusion's edge the warp brings
        foreign detail: the gain is large there, the gradient test is not fooled). A misaligned or
        foreign warp (occlusion, a moving object, wrong flow) fails. Eroded and feathered, so no
        untrusted pixel's neighbourhood is trusted and the blend has no seams."""
        def local_rms(x: np.ndarray) -> np.ndarray:
            x = x * x
            return np.sqrt(np.maximum(cv2.blur(_cmax(x), (5, 5)), 0))

        rms = local_rms(reblurred - blurred)
        gain = local_rms(warped - reblurred)
        g = np.sqrt(local_rms(cv2.Sobel(reblurred, -1, 1, 0, ksize=3, scale=1 / 8)) ** 2
                    + local_rms(cv2.Sobel(reblurred, -1, 0, 1, ksize=3, scale=1 / 8)) ** 2)
        t = np.clip(2.0 - rms / (TRUST_LO + np.minimum(GAIN_TOL * gain, SHIFT_TOL * g)), 0, 1)
        e = 2 * max(1, round(ERODE * kr)) + 1
        t = cv2.erode(t, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (e, e)))
        t = cv2.GaussianBlur(t, (0, 0), max(1.0, (e - 1) / 4.0))  # feathered within the erosion
        return t, gain * gain - GUARD_C * rms * rms - GUARD_N ** 2


@register_method(
    "lucky",
    kind="classical",
    temporal=True,
    params={
        "radius": f"how far (frames) to look for sharp neighbours, back and ahead (default {DEFAULT_RADIUS})",
        "per_side": f"sharp neighbours used on each side, nearest first (default {DEFAULT_PER_SIDE})",
        "fallback": "single-frame method for what no neighbour explains (default: the input itself)",
    },
)
def lucky(radius: Any = DEFAULT_RADIUS, per_side: Any = DEFAULT_PER_SIDE, fallback: str | None = None) -> Method:
    """Restore a blurred frame from its sharp neighbours: flow-aligned, trusted where they explain it."""
    radius = _int_param("radius", radius, 1)
    per_side = _int_param("per_side", per_side, 1)
    fb = None
    name = None
    if fallback is not None and str(fallback).strip().lower() not in ("", "none", "input", "identity"):
        from vdeblur.methods.registry import create

        name = str(fallback).strip()
        if name == "lucky":
            raise UsageError("bad --param fallback=lucky: the fallback is a single-frame method")
        fb = create(name)
        if fb.past or fb.future or fb.recurrent or getattr(fb, "needs_labels", False):
            raise UsageError(f"bad --param fallback={name}: the fallback must be a single-frame method "
                             f"(it reads {fb.past} frames back and {fb.future} ahead)")
        if not isinstance(fb, torch.nn.Module):
            fb = None  # identity-like plugins: the input itself
    return Lucky(radius, per_side, fb, name)
