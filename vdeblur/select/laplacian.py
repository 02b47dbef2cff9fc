"""Variance-of-Laplacian frame selector with a streaming, video-adaptive threshold.

DeblurNet's Frame Selection Module (Nahli et al. sec. III-B) is a CNN sharp/blurred classifier; its
role in the pipeline (sec. III-C, Fig. 4) is to let only the blurred frames of a *partially*
blurred video (sec. IV-B, REBVIDS: runs of blurred frames between sharp ones) reach the deblurring
module. This is the classical stand-in, the "handcrafted features" family of Table 5: motion blur
removes high frequencies, so the variance of the Laplacian of the luma drops.

The absolute level of that score depends on the content (texture, focus, noise), so by default a
frame is blurred when its score falls well below the *local sharp level* of the same video:

    blurred(i) = clean(i) < ratio * P95{ clean(j) : i - history <= j <= i + radius, same shot }
                 (and that level > _FLAT: a featureless video has nothing to deblur)

where clean is the score less the frame's own noise share (20 sigma^2, Immerkaer's estimate;
sensor noise keeps a blurred frame's score up, and an encoder leaves different amounts of it in
different frame types), and a shot starts at a cut, told by the luma histogram as the whole-file
rule tells it (select/context.py) but from the frames seen so far: a window across a cut from a
detailed shot called a whole soft shot blurred.

A soft or low-texture video is thus not called blurred, nor is a video without blur; a fixed
``threshold`` replaces the rule. With ``every=K`` only the middle frame of each group of K frames
is scored and the whole group gets its label -- the batch mode of sec. IV-E.3, Table 9 (K = 15).

P95 is taken at the next-higher rank: a full window (46 scores) takes its third-highest, so one or
two outlier frames cannot set the level, and a short one, at the start of a stream, is not starved
of its few sharp frames. Tuned on ``vdeblur.data.synth_clip`` (12 seeds x 30/50/70% blurred, 64
frames): accuracy 0.999 mean, 0.953 worst (a clip opening with 23 frames of near-unbroken blur).
The noise share, the shots and ratio 0.55 (was 0.5) were chosen on the hard clips of
tests/selector_media.py made from validation and training photographs (64 clips, streamed):
accuracy 0.857 -> 0.945, false positives 214 -> 17; synth_clip unchanged, and 0.6 would call
sharp synth_clip frames blurred.

Streaming: ``push(i, gray)`` frames in order, then ``flush()``; decisions come back in frame order,
each exactly once, as soon as they are final. ``lookahead`` says how many frames after frame i must
have been pushed before i is final, so a caller holding undecided frames holds at most
``lookahead + 1`` of them; the selector itself keeps only scores within the window.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

#: shorter side of the analysis scale: scores comparable across resolutions, and cheap
ANALYSIS_SIDE = 360
#: defaults of the adaptive rule, tuned on synth_clip (see above and tests/test_select.py)
RATIO, RADIUS, PERCENTILE = 0.55, 15, 95.0
#: a local sharp level below this (8-bit Laplacian variance) is a flat video: nothing is blurred
_FLAT = 2.0


def value_range(gray: np.ndarray) -> float:
    """The full-scale value of a luma plane whose range is not given, from its dtype and peak.

    uint8: 255. uint16: 1023 / 4095 / 65535 -- decoders hand 10- and 12-bit planes over in uint16
    with the values in the low bits. float: 255 (8-bit scale), or 65535 when the peak says so.
    A dark frame can under-read its range; ``LaplacianSelector`` keeps the largest one seen.
    """
    if gray.dtype == np.uint8:
        return 255.0
    peak = float(gray.max()) if gray.size else 0.0
    if gray.dtype == np.uint16:
        return 1023.0 if peak <= 1023 else 4095.0 if peak <= 4095 else 65535.0
    if gray.dtype.kind == "f":
        return 255.0 if peak <= 255.5 else 65535.0
    raise ValueError(f"no default range for {gray.dtype} luma; pass data_range")


def _analysis_plane(gray: np.ndarray, data_range: float | None) -> tuple[np.ndarray, float]:
    """The plane at the analysis scale (uint8, uint16 or float32) and its full-scale value."""
    g = np.asarray(gray)
    if g.ndim != 2 or min(g.shape) < 3:
        raise ValueError(f"blur_score expects a 2-D luma plane, got shape {g.shape}")
    if g.dtype not in (np.uint8, np.uint16, np.float32):
        if data_range is None:
            data_range = value_range(g)
        g = g.astype(np.float32)
    g = np.ascontiguousarray(g)
    h, w = g.shape
    if min(h, w) > ANALYSIS_SIDE:
        s = ANALYSIS_SIDE / min(h, w)
        size = (max(3, round(w * s)), max(3, round(h * s)))
        g = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
    if data_range is None:
        data_range = value_range(g)  # on the small plane: cheaper
    return g, float(data_range)


_IMMERKAER = np.float32([[1, -2, 1], [-2, 4, -2], [1, -2, 1]])
#: bins of the luma histogram and side of the luma thumbnail that tell scene cuts
HIST_BINS, THUMB_SIDE = 32, 16


def laplacian_var(g: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian of a plane (uint8, uint16 or float32), in its own units."""
    return float(cv2.meanStdDev(cv2.Laplacian(g, cv2.CV_32F))[1][0, 0]) ** 2


def noise_sigma(g: np.ndarray, k: float) -> float:
    """Sigma of the plane's noise on the 8-bit scale (``k`` = 255 / its full-scale value), by
    Immerkaer's 3x3 operator: an upper bound (texture can only raise it)."""
    res = cv2.filter2D(g, cv2.CV_32F, _IMMERKAER)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * cv2.norm(res, cv2.NORM_L1) / res.size / 6.0) * k


def luma_hist(g: np.ndarray, k: float) -> np.ndarray:
    """The plane's normalised HIST_BINS-bin histogram on the 8-bit scale (for cuts)."""
    hist = cv2.calcHist([g if g.dtype == np.uint8 else (g.astype(np.float32) * np.float32(k))],
                        [0], None, [HIST_BINS], [0, 256]).ravel()
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def luma_thumb(g: np.ndarray, k: float) -> np.ndarray | None:
    """The plane's THUMB_SIDE x THUMB_SIDE thumbnail (area-averaged), less its mean, of unit norm
    (for cuts: a correlation, blind to brightness, contrast and blur); None for a flat plane (a
    thumbnail spread under one 8-bit level: a fade's black frames, which have no layout)."""
    t = cv2.resize(g if g.dtype == np.float32 else g.astype(np.float32), (THUMB_SIDE, THUMB_SIDE),
                   interpolation=cv2.INTER_AREA).ravel()
    t -= t.mean()
    norm = float(np.linalg.norm(t))
    if norm * k < THUMB_SIDE:  # rms spread under 1 level on the 8-bit scale
        return None
    return t / np.float32(norm)


def stream_measures(gray: np.ndarray, data_range: float | None = None) -> tuple[float, float, np.ndarray]:
    """What the streaming rule keeps of a frame, at the analysis scale on the 8-bit scale:
    ``blur_score``, the frame's noise share of it (20 sigma^2, :func:`noise_sigma`) and its luma
    histogram (:func:`luma_hist`, for cuts: not the thumbnail, which a camera's motion changes
    between the scored frames of ``every=K``, K frames apart, and with no frames ahead to compare)."""
    g, r = _analysis_plane(gray, data_range)
    k = 255.0 / r
    sigma = noise_sigma(g, k)
    return laplacian_var(g) * k * k, 20.0 * sigma * sigma, luma_hist(g, k)


def blur_score(gray: np.ndarray, data_range: float | None = None) -> float:
    """Sharpness of a luma plane: variance of its 3x3 Laplacian at the analysis scale, on the
    8-bit scale (values 0..255). Higher = sharper.

    ``gray``: 2-D uint8, uint16 or float array; ``data_range``: its full-scale value (default:
    ``value_range``). Downscaled with INTER_AREA so the shorter side is at most ANALYSIS_SIDE px,
    so that scores compare across resolutions; ~0.5 ms at 1280x720 uint8.
    """
    g, r = _analysis_plane(gray, data_range)
    return laplacian_var(g) * (255.0 / r) ** 2


@dataclass(frozen=True)
class Decision:
    """The verdict on one frame: ``blurred`` frames are restored; ``score`` is None if unscored."""

    index: int
    score: float | None
    blurred: bool


class Selector(Protocol):
    lookahead: int

    def needs_score(self, index: int) -> bool: ...
    def push(self, index: int, gray: np.ndarray | None) -> list[Decision]: ...
    def flush(self) -> list[Decision]: ...


class NoSelector:
    """Restore every frame: each is blurred=True, unscored, decided at once (lookahead 0)."""

    lookahead = 0

    def __init__(self) -> None:
        self._next = 0

    def needs_score(self, index: int) -> bool:
        return False

    def push(self, index: int, gray: np.ndarray | None = None) -> list[Decision]:
        if index != self._next:
            raise ValueError(f"push frames in order: expected {self._next}, got {index}")
        self._next += 1
        return [Decision(index, None, True)]

    def flush(self) -> list[Decision]:
        return []


class LaplacianSelector:
    """Streaming sharp/blurred selector on ``blur_score`` (the rule: module docstring).

    ``threshold``: absolute score below which a frame is blurred (replaces the adaptive rule).
    ``every``: score only the middle frame of each group [gK, gK+K) and give the whole group its
    label (sec. IV-E.3, Table 9); the window then reaches at least one group ahead.
    ``radius``: how far ahead (frames) the window reaches; this sets ``lookahead``.
    ``ratio``: blurred when the clean score < ratio * the window's P``percentile`` (its shot's frames).
    ``history``: how far back (frames) the window reaches, default 2 * radius (batch mode: at least
    3 groups) -- past scores are floats, so a longer past costs no frame buffering.
    ``data_range``: the luma planes' full-scale value (default: the largest ``value_range`` seen).
    ``total``: the frame count, if known: a short last group is then scored at its own middle.
    Unknown, and the stream ends before that group's nominal middle, the group takes the previous
    group's label with score None.
    Frame indices must be pushed as 0, 1, 2, ...
    """

    def __init__(
        self, threshold: float | None = None, every: int = 1, radius: int = RADIUS,
        ratio: float = RATIO, *, percentile: float = PERCENTILE, history: int | None = None,
        data_range: float | None = None, total: int | None = None,
    ) -> None:
        if every < 1 or radius < 0 or not 0 < ratio <= 1 or not 0 <= percentile <= 100:
            raise ValueError(f"bad selector settings: every={every} radius={radius} "
                             f"ratio={ratio} percentile={percentile}")
        if threshold is not None and threshold < 0:
            raise ValueError(f"threshold must be >= 0, got {threshold}")
        self.threshold, self.every, self.ratio = threshold, every, ratio
        self.percentile = percentile
        self.total, self.data_range = total, data_range
        self._range = 0.0  # the largest value_range seen, when data_range is None
        k = every
        self._c = (k - 1) // 2  # offset of a full group's middle frame
        self.radius = radius if k == 1 else max(radius, k)
        if history is None:
            history = 2 * self.radius if k == 1 else max(2 * self.radius, 3 * k)
        self.history = max(history, self.radius)
        #: frames after frame i to push before i is final: its group's middle, plus (adaptive rule)
        #: the last middle within ``radius`` of it
        self.lookahead = self._c + (0 if threshold is not None else k * (self.radius // k))
        #: (middle index, score, score less the frame's noise share, shot number), in order
        self._scores: deque[tuple[int, float, float, int]] = deque()
        self._shot, self._hist = 0, None  # the current shot (cuts: streaming, from the frames so far)
        self._changes: deque[float] = deque(maxlen=8)  # histogram changes of the last scored frames
        self._label: tuple[int, float | None, bool] = (-1, None, False)  # (group, score, blurred)
        self._pushed = -1  # last index pushed
        self._next = 0  # next index to decide

    def _mid(self, g: int) -> int:
        """Middle frame of group g (the shorter last group's own middle when ``total`` is known)."""
        start = g * self.every
        if self.total is not None and start + self.every > self.total:
            return start + (max(self.total - start, 1) - 1) // 2
        return start + self._c

    def needs_score(self, index: int) -> bool:
        """Whether ``push(index, gray)`` looks at ``gray``: only middles of groups are scored."""
        return index == self._mid(index // self.every)

    def push(self, index: int, gray: np.ndarray | None = None) -> list[Decision]:
        """Add frame ``index`` (its luma plane; may be None where not ``needs_score``)."""
        if index != self._pushed + 1:
            raise ValueError(f"push frames in order: expected {self._pushed + 1}, got {index}")
        if self.needs_score(index):
            if gray is None:
                raise ValueError(f"frame {index} is scored, but no luma plane was given")
            r = self.data_range
            if r is None:
                r = self._range = max(self._range, value_range(np.asarray(gray)))
            if self.threshold is not None:
                self._scores.append((index, blur_score(gray, r), 0.0, 0))
            else:
                score, noise, hist = stream_measures(gray, r)
                self._new_shot(hist)
                self._scores.append((index, score, max(score - noise, 0.0), self._shot))
        self._pushed = index
        return self._emit(final=False)

    def flush(self) -> list[Decision]:
        """End of stream: the decisions on every frame pushed and not yet decided."""
        return self._emit(final=True)

    def _new_shot(self, hist: np.ndarray) -> None:
        """Start a new shot at this frame if it is a cut from the scored frame before (the
        whole-file rule's test, select/context.py, on the histogram changes seen so far)."""
        from vdeblur.select.context import CUT, CUT_FACTOR, hist_change

        if self._hist is not None:
            d = hist_change(self._hist, hist)
            base = float(np.median(self._changes)) if self._changes else 0.0
            if d > CUT and d > CUT_FACTOR * base:
                self._shot += 1
            self._changes.append(d)
        self._hist = hist

    def _ready(self, g: int) -> bool:
        """Whether group g's label is final: every middle in its window has been pushed."""
        m = need = self._mid(g)
        if self.threshold is None:
            h = g + 1
            while self._mid(h) <= m + self.radius and (self.total is None
                                                       or h * self.every < self.total):
                need, h = self._mid(h), h + 1
        return self._pushed >= need

    def _decide(self, g: int) -> tuple[int, float | None, bool]:
        m = self._mid(g)
        row = next((x for x in self._scores if x[0] == m), None)
        if row is None:  # the stream ended before this (short, last) group's middle
            return g, None, self._label[2]
        if self.threshold is not None:
            return g, row[1], row[1] < self.threshold
        window = [x for x in self._scores if -self.history <= x[0] - m <= self.radius and x[3] == row[3]]
        return g, row[1], self._blurred(row, window)

    def _level(self, window: list[tuple]) -> float:
        """The local sharp level: the ``percentile`` of the window's clean scores (next-higher rank)."""
        return float(np.percentile([x[2] for x in window], self.percentile, method="higher"))

    def _blurred(self, row: tuple, window: list[tuple]) -> bool:
        """The adaptive rule (module docstring) on a scored frame's row (index, score, clean
        score, shot) and the rows of its window in the same shot (itself included)."""
        level = self._level(window)
        return level > _FLAT and row[2] < self.ratio * level

    def _emit(self, final: bool) -> list[Decision]:
        out: list[Decision] = []
        while self._next <= self._pushed:
            g = self._next // self.every
            if self._label[0] != g:
                if not (final or self._ready(g)):
                    break
                self._label = self._decide(g)
                lo = self._mid(g) - self.history  # no later window reaches further back
                while self._scores and self._scores[0][0] < lo:
                    self._scores.popleft()
            _, score, blurred = self._label
            out.append(Decision(self._next, score if self._next == self._mid(g) else None, blurred))
            self._next += 1
        return out
