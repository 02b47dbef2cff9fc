"""Whole-file frame selection: every frame is scored first (a decode-only pass), then labelled
with the whole clip in view, shot by shot (issue 14).

The streaming rule (laplacian.py) compares a frame with a window of the frames seen so far and a
few ahead: a clip that opens with a long blurred run has no sharp frame to compare with, and a
window across a scene cut compares a flat shot with a detailed one. With the whole file known:

* **Shots.** A cut is where the content of two consecutive frames changes by more than ``CUT``
  and by more than ``CUT_FACTOR`` times the median change of the frames around it (a fast pan
  changes it steadily, a cut at once). The change is the larger of two, both blind to blur: the
  total variation (half the L1 distance) of the luma histograms (32 bins, at the analysis scale),
  and ``THUMB_WEIGHT`` x (1 - the correlation of 16 x 16 luma thumbnails, blind to brightness and
  contrast too). The histogram alone missed a cut between two shots of alike tones (0.28 there,
  against up to 0.25 between frames of one shot on the development clips); the thumbnails'
  change was at least 0.59 at every cut of those clips (median 1.0) and at most 0.07 elsewhere,
  but a camera's fast motion raises it (up to 0.33 between consecutive frames of synth_clip's
  moving scenes), hence the weight: a thumbnail change counts as a cut from 0.5. (The streaming
  rule tells cuts by the histogram alone: laplacian.py.)
* **Noise floor.** Sensor noise adds to the detail measures whatever the blur: the noise level
  of each frame is estimated (Immerkaer's 3x3 operator; texture can only raise it) and taken off
  that frame's own detail (sigma^2 x each kernel's gain on white noise). Per frame, not per shot:
  an encoder quantises its frame types differently (H.264 B-frames at a higher QP keep less of
  the noise), so the noise left in a noisy clip varies up to threefold in variance from frame to
  frame, and taking only the shot's lowest level off left the excess on the I and P frames: the
  sharp B-frames then looked blurred beside them (issue 14's noise clips: 13 sharp frames called
  blurred). The Laplacian level that tells a flat shot still takes off the shot's lowest level.
* **Relative judgement.** Motion blur takes away the detail along its direction (the Laplacian,
  the sum over directions, loses at most about half), so the detail is measured per direction:
  the variance of the second difference along 0, 45, 90 and 135 degrees, at the analysis scale
  and at half of it (noise weighs four times less there). A frame's ratio in each direction is
  its detail over the shot's sharp level near it (the ``PERCENTILE`` of the frames within
  ``RADIUS`` in the same shot, each weighted by exp(-distance / ``TAU``), so the content nearest
  in time counts most); its relative score is the geometric mean over the two scales of the
  least ratio, and it is blurred under the shot's line, unless the shot is flat (its Laplacian
  level, noise floor off, is at most ``FLAT_SHOT``: nothing to deblur). So a soft, low-contrast
  or noisy shot is judged against its own sharp frames, not against a detailed one, a clip that
  opens blurred against the sharp frames that come later, and mild blur by the direction it
  took away.
* **Coded type.** An encoder quantises its frame types differently: the sharp B-frames of an
  H.264 clip keep less fine detail than its P-frames (0.85-0.89 of the P-frames' level on a
  low-contrast test clip, the lowest 0.59), so beside the P-frames they looked blurred. A frame
  is compared with the frames of its own coded type (``frame_type``: I, P or B, from the
  decoder) near it, where there are at least ``SAME_TYPE`` of them; an I-frame, usually alone in
  its shot, with all frames. Scaling each type's detail by its share instead (tried first)
  called sharp frames of synth_clip's moving scenes blurred.
* **The shot's line** (``shot_ratio``) is ``RATIO``, raised up to ``RATIO_HI`` where the shot's
  sharp frames agree closely: ``SPREAD`` robust standard deviations of their log relative detail
  under their median. Its sharp frames are the upper of the two groups that split its frames
  best (Otsu's criterion on the log relative detail). Mild blur (2-4 px under H.264) takes away
  a quarter of the detail, where the sharp frames of a steady shot vary by a few per cent: a
  fixed 0.65 missed it. Where the sharp frames' detail varies (content moving in and out), the
  line stays at ``RATIO``; a blurred group that is part of the split keeps the spread honest
  (the frames above a fixed 0.75 had looked tight beside a sharp group at 0.6-0.8).
* **Runs grow (hysteresis).** Camera shake blurs runs of frames, and a run of mild blur is often
  caught in part: some of its frames under the shot's line, the rest just above it. A frame
  under the shot's upper line (``join_line``: ``JOIN_SPREAD`` robust standard deviations under
  its sharp frames' median, at most ``JOIN_HI``) that touches a blurred frame is blurred too
  (``join_runs``), as Canny's hysteresis grows an edge: a lone frame under the upper line stays
  sharp, so a sharp frame that varies alone is not called blurred, while a run found in part is
  found whole.

The defaults were chosen on the hard clips of tests/selector_media.py (scikit-image photos) and
synth_clip (12 seeds x 30/50/70 % blurred): every clip >= 0.95, synth_clip 1.000 (benchmarks/
select_accuracy.py measures held-out photographs too). The per-frame noise floor was chosen on
the same clips made from the validation photographs and four pairs of training ones (64 clips,
never the test photographs): accuracy 0.966 -> 0.973, false positives 29 -> 12 (the noise clips:
19 -> 3); synth_clip still 1.000. The thumbnails' cuts, ``PERCENTILE`` 95 (was 100: one outlier
frame, such as an I-frame far sharper than the frames an encoder predicts from it, set the
level), ``RATIO`` 0.65 (was 0.6) and ``FLAT_SHOT`` 1 (was 2: a soft, low-contrast shot's blurred
frames were all left sharp) were chosen with benchmarks/select_dev.py on 168 clips from 19
validation and 24 training photographs, 128 from 33 more photographs of the test split (the 9
whose clips README reports stay held out) and synth_clip: clips under 95 % 16 -> 11 and
16 -> 14, accuracy 0.983 -> 0.988 and 0.976 -> 0.979, false positives 53 -> 26 and 38 -> 20;
synth_clip 0.999 -> 0.998 (one clip at 0.938). Weighting the finer scale more did not help.
The shot's line (``SPREAD`` 8, ``RATIO_HI`` 0.8, ``SHARP_REF`` 0.5) was chosen on the same
clips with no false positive on their all-sharp clips as a condition: clips under 95 % 11 -> 10
(development) and 14 -> 14 (the 33 photographs); ``SPREAD`` 6 found more mild blur but called
frames of the all-sharp clips blurred, and a line from Otsu's split alone, clamped to 0.65-0.9,
did worse. The coded type and ``RATIO`` 0.6 (the line's settings swept again with it) then, on
the same clips encoded again: clips under 95 % 11 -> 7 and 14 -> 11, false positives 31 -> 12
and 22 -> 6, false negatives 64 -> 72 and 113 -> 114; synth_clip unchanged (one clip at 0.938),
no false positive on the all-sharp clips. The hysteresis (``JOIN_SPREAD`` 5.5, ``JOIN_HI`` 0.85)
was chosen on those clips and on the same photographs' clips at 640x360 (photographs cut to 960
px: 168 and 128 clips), fewest clips under 95 % over the five sets with no false positive on
their all-sharp clips: 7 -> 9, 11 -> 10, 15 -> 11, 20 -> 15 (320x240 development, 33
photographs; 640x360 the same), synth_clip one clip under 95 % as before (its worst 0.938 ->
0.896); false negatives 72 -> 57, 114 -> 98, 152 -> 126, 174 -> 138, false positives 12 -> 20,
6 -> 9, 2 -> 4, 4 -> 4, synth_clip 3 -> 7.

``label_scores`` is the rule on saved features; ``ContextSelector`` replays its labels through
the streaming selector interface (lookahead 0), so the restore pass uses the pre-pass's scores
and never recomputes them.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import cv2
import numpy as np

from vdeblur.select.laplacian import (
    ANALYSIS_SIDE, HIST_BINS, Decision, laplacian_var, luma_hist, luma_thumb, noise_sigma, value_range,
)

#: a cut: a content change above CUT and above CUT_FACTOR x the local median change; a thumbnail's
#: change (1 - correlation) counts THUMB_WEIGHT times (module docstring)
CUT, CUT_FACTOR, THUMB_WEIGHT = 0.3, 4.0, 0.6
#: the relative rule: blurred when the detail is under RATIO x the sharp level near it: the PERCENTILE
#: of the shot's frames within RADIUS, each weighted by exp(-distance / TAU)
RATIO, RADIUS, PERCENTILE, TAU = 0.6, 60, 95.0, 40.0
#: a shot whose sharp frames agree closely raises its line (up to RATIO_HI): SPREAD robust standard
#: deviations of log relative detail under the median of its sharp frames (the upper group of an
#: Otsu split, above SHARP_REF): shot_ratio
SPREAD, RATIO_HI, SHARP_REF = 8.0, 0.8, 0.5
#: hysteresis: a frame under the shot's upper line (JOIN_SPREAD robust standard deviations under its
#: sharp frames' median, at most JOIN_HI) joins a blurred run it touches: join_runs
JOIN_SPREAD, JOIN_HI = 5.5, 0.85
#: a frame's sharp level is that of the frames of its own coded type (I, P, B) near it, where at
#: least SAME_TYPE of them are within RADIUS in the shot
SAME_TYPE = 6
#: a shot whose Laplacian level (noise floor off) is at most FLAT_SHOT is flat: nothing is blurred
FLAT_SHOT = 1.0
BINS = HIST_BINS
#: shorter side of the scale the directional detail and the noise are measured at. 720 would see
#: a 720p frame's short blurs at full length, but costs 11 ms a 720p frame (the pre-pass's budget
#: is 15 % of an unsharp run) and did not separate 2-4 px blur better on the 720p test clips.
DETAIL_SIDE = ANALYSIS_SIDE
#: second differences along 0, 90, 45 and 135 degrees (diagonals per unit length): motion blur
#: takes the detail along its direction away, the Laplacian (their sum) loses at most about half
_DIR_KERNELS = (np.float32([[1, -2, 1]]), np.float32([[1], [-2], [1]]),
                np.float32([[0, 0, 0.5], [0, -1, 0], [0.5, 0, 0]]), np.float32([[0.5, 0, 0], [0, -1, 0], [0, 0, 0.5]]))
_DIR_NOISE = (6.0, 6.0, 1.5, 1.5)  # their variance on unit white noise
_GAINS = np.array(_DIR_NOISE + tuple(v / 4 for v in _DIR_NOISE))  # ... and at half scale (noise averaged 2x2)
_LAP_NOISE = 20.0  # Laplacian variance of unit white noise (3x3 kernel, sum of squares)


@dataclass
class Features:
    """What the pre-pass keeps per frame: a few floats and a small histogram."""

    score: float  # blur_score: Laplacian variance at the analysis scale, 8-bit scale
    noise: float  # Immerkaer noise sigma estimate, 8-bit scale (an upper bound)
    hist: np.ndarray  # BINS normalised luma histogram (float32)
    dirs: tuple[float, ...] = (0.0,) * 8  # directional detail at the analysis scale and half of it
    thumb: np.ndarray | None = None  # laplacian.luma_thumb (None: flat, or not measured)
    ptype: int = 0  # coded picture type: 1 I, 2 P, 3 B, 0 not known (frame_type)

    @property
    def signature(self) -> tuple:
        """What :func:`content_change` compares: (histogram, thumbnail)."""
        return self.hist, self.thumb


def frame_features(gray: np.ndarray, data_range: float | None = None) -> Features:
    """score and histogram (at ANALYSIS_SIDE), noise and directional detail (at DETAIL_SIDE and
    half of it) of one luma plane."""
    g = np.asarray(gray)
    if g.ndim != 2 or min(g.shape) < 3:
        raise ValueError(f"frame_features expects a 2-D luma plane, got shape {g.shape}")
    if data_range is None:
        data_range = value_range(g)
    if g.dtype not in (np.uint8, np.float32):
        g = g.astype(np.float32)
    g = np.ascontiguousarray(g)
    h, w = g.shape
    if min(h, w) > DETAIL_SIDE:  # the directional detail and the noise
        s = DETAIL_SIDE / min(h, w)
        g = cv2.resize(g, (max(3, round(w * s)), max(3, round(h * s))), interpolation=cv2.INTER_AREA)
    fd = g.astype(np.float32) if g.dtype != np.float32 else g
    h, w = g.shape
    if min(h, w) > ANALYSIS_SIDE:  # the Laplacian score and the histogram: blur_score's scale
        s = ANALYSIS_SIDE / min(h, w)
        g = cv2.resize(g, (max(3, round(w * s)), max(3, round(h * s))), interpolation=cv2.INTER_AREA)
    k = 255.0 / data_range
    hist = luma_hist(g, k)
    sd2 = laplacian_var(g)
    sigma = noise_sigma(fd, k)
    half = cv2.resize(fd, (max(3, fd.shape[1] // 2), max(3, fd.shape[0] // 2)), interpolation=cv2.INTER_AREA)
    dirs = tuple(float(cv2.meanStdDev(cv2.filter2D(x, cv2.CV_32F, dk))[1][0, 0]) ** 2 * k * k
                 for x in (fd, half) for dk in _DIR_KERNELS)
    return Features(sd2 * k * k, sigma, hist, dirs, luma_thumb(g, k))


def frame_type(frame) -> int:
    """The coded picture type of a decoded ``io.reader.Frame``: 1 I, 2 P, 3 B, 0 not known (a
    frame from the ffmpeg pipe, or another type)."""
    t = getattr(getattr(frame, "av_frame", None), "pict_type", None)
    try:
        t = int(getattr(t, "value", t))  # FFmpeg's AVPictureType: an int, or an enum in some PyAV versions
    except (TypeError, ValueError):
        return 0
    return t if t in (1, 2, 3) else 0


def hist_change(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation between two normalised histograms (0: equal, 1: disjoint)."""
    return 0.5 * float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).sum())


def content_change(a: tuple, b: tuple) -> float:
    """How far frame b's content is from frame a's, for cuts (module docstring): the larger of the
    histograms' total variation and THUMB_WEIGHT x (1 - the thumbnails' correlation), the latter
    left out where either frame is flat or has none. ``a``, ``b``: (histogram, thumbnail or
    None), as ``Features.signature``."""
    d = hist_change(a[0], b[0])
    if a[1] is not None and b[1] is not None:
        d = max(d, THUMB_WEIGHT * (1.0 - float(a[1] @ b[1])))
    return d


def find_cuts(signatures: list) -> list[int]:
    """First frames of the shots after the first (see the module docstring), from each frame's
    (histogram, thumbnail) or histogram alone."""
    sig = [s if isinstance(s, tuple) else (s, None) for s in signatures]
    return cuts_from_changes([0.0] + [content_change(sig[i - 1], sig[i]) for i in range(1, len(sig))])


def cuts_from_changes(changes: list[float] | np.ndarray) -> list[int]:
    """``find_cuts`` on the content change of each frame from the one before (frame 0: 0)."""
    d = np.asarray(changes, np.float64)
    cuts = []
    for i in range(1, len(d)):
        if d[i] <= CUT:
            continue
        near = np.concatenate([d[max(1, i - 8):i], d[i + 1:i + 9]])
        base = float(np.median(near)) if len(near) else 0.0
        if d[i] > CUT_FACTOR * base:
            cuts.append(i)
    return cuts


@dataclass
class Shot:
    first: int
    last: int
    level: float  # the shot's sharp level on the blur_score scale (its P90, noise floor off)
    thresholds: list[float]  # per direction: RATIO x the shot's sharp level there (noise floor off)
    noise_floor: float  # the shot's lowest noise sigma (8-bit scale); each frame's own is taken off its detail
    ratio: float = RATIO  # the shot's line on the relative detail (shot_ratio)
    join: float = RATIO  # its upper line: a frame under it joins a blurred run it touches (join_line)


@dataclass
class Labels:
    blurred: list[bool]
    scores: list[float]
    shots: list[Shot] = field(default_factory=list)
    relative: list[float] = field(default_factory=list)  # per frame: least directional ratio to the sharp level
    lost: int = 0  # frames the pre-pass could not decode
    damaged: bool = False
    every: int = 1  # --select-every K: only each group's middle frame shows its score

    def shown_score(self, i: int) -> float | None:
        """Frame i's score as the rows show it: None off a group's middle (batch mode), as when
        streaming."""
        if self.every > 1:
            n, g = len(self.blurred), i // self.every * self.every
            if i != g + (min(self.every, n - g) - 1) // 2:
                return None
        return self.scores[i]


def sharp_group(relative: np.ndarray, sharp_ref: float = SHARP_REF) -> tuple[float, float] | None:
    """(median, robust standard deviation) of a shot's sharp frames in log relative detail: the
    upper of the two groups that split the shot's log relative detail best (Otsu's criterion: the
    largest between-group variance), above ``sharp_ref``; None where fewer than 3 (or under 4
    frames in all). The robust standard deviation is 1.4826 x the median absolute deviation."""
    x = np.sort(np.log(np.maximum(np.asarray(relative, np.float64), 1e-9)))
    n = len(x)
    if n < 4:
        return None
    j = np.arange(1, n)
    c = np.cumsum(x)
    between = j * (n - j) * ((c[-1] - c[:-1]) / (n - j) - c[:-1] / j) ** 2
    k = int(j[np.argmax(between)])  # x[:k] | x[k:]
    up = x[k:][x[k:] > np.log(sharp_ref)]
    if len(up) < 3:
        return None
    m = float(np.median(up))
    return m, 1.4826 * float(np.median(np.abs(up - m)))


def shot_ratio(relative: np.ndarray, ratio: float = RATIO, *, spread: float = SPREAD,
               ratio_hi: float = RATIO_HI, sharp_ref: float = SHARP_REF) -> float:
    """The line on one shot's relative detail: ``ratio``, raised towards ``ratio_hi`` where the
    shot's sharp frames (:func:`sharp_group`) agree closely: ``spread`` robust standard deviations
    under their median, in log relative detail; no sharp group: ``ratio`` (module docstring)."""
    g = sharp_group(relative, sharp_ref) if ratio_hi > ratio else None
    if g is None:
        return ratio
    return float(np.clip(np.exp(g[0] - spread * g[1]), ratio, ratio_hi))


def join_line(relative: np.ndarray, line: float, *, spread: float = JOIN_SPREAD, hi: float = JOIN_HI,
              sharp_ref: float = SHARP_REF) -> float:
    """The upper line of a shot's hysteresis (:func:`join_runs`): ``spread`` robust standard
    deviations under its sharp frames' median (:func:`sharp_group`), between ``line`` (the shot's
    own) and ``hi``; no sharp group: ``line``."""
    g = sharp_group(relative, sharp_ref)
    if g is None:
        return line
    return float(max(min(np.exp(g[0] - spread * g[1]), hi), line))


def join_runs(blurred: np.ndarray, relative: np.ndarray, a: int, b: int, join: float) -> None:
    """Hysteresis on frames a..b-1 of one shot, in place: a frame whose relative detail is under
    ``join`` and that touches a blurred frame is blurred too, so a run grows both ways while its
    frames stay under ``join`` (module docstring)."""
    for i in range(a + 1, b):
        if not blurred[i] and blurred[i - 1] and relative[i] < join:
            blurred[i] = True
    for i in range(b - 2, a - 1, -1):
        if not blurred[i] and blurred[i + 1] and relative[i] < join:
            blurred[i] = True


def label_scores(feats: list[Features], **kw) -> Labels:
    """Labels of a whole clip from its per-frame features (the rule: module docstring); keywords
    as ``label_columns``."""
    d = [0.0] + [content_change(feats[i - 1].signature, feats[i].signature) for i in range(1, len(feats))]
    return label_columns(np.array([f.score for f in feats], np.float64), np.array([f.noise for f in feats]),
                         np.array([f.dirs for f in feats], np.float64).reshape(len(feats), 8), d,
                         types=np.array([f.ptype for f in feats], np.int8), **kw)


def label_columns(scores: np.ndarray, noise_sigma: np.ndarray, dirs: np.ndarray, changes: list[float] | np.ndarray,
                  *, ratio: float = RATIO, radius: int = RADIUS, percentile: float = PERCENTILE,
                  threshold: float | None = None, tau: float = TAU, flat: float = FLAT_SHOT,
                  spread: float = SPREAD, ratio_hi: float = RATIO_HI, sharp_ref: float = SHARP_REF,
                  types: np.ndarray | None = None, same_type: int = SAME_TYPE,
                  join_spread: float = JOIN_SPREAD, join_hi: float = JOIN_HI) -> Labels:
    """The rule on the pre-pass's columns: blur_score, noise sigma, the 8 directional details and
    the content change from the frame before, per frame, and each frame's coded type
    (``frame_type``; None or 0: not known). ``threshold``: a fixed blur_score threshold instead of
    the relative rule (shots are still found and reported)."""
    n = len(scores)
    if n == 0:  # nothing decoded: the restore pass says so
        return Labels([], [], [], [])
    scores = np.asarray(scores, np.float64)
    dirs = np.asarray(dirs, np.float64).reshape(n, 8)
    noise_sigma = np.asarray(noise_sigma, np.float64)
    cuts = cuts_from_changes(changes)
    bounds = [0] + cuts + [n]
    blurred = np.zeros(n, bool)
    rel = np.ones(n, np.float64)
    shots: list[Shot] = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        sigma = float(noise_sigma[a:b].min())
        # each frame's noise variance per direction: its sigma^2 x the kernel's gain, a quarter of
        # it at half scale (module docstring: per frame, as the encoder leaves it)
        d = np.maximum(dirs[a:b] - _GAINS * noise_sigma[a:b, None] ** 2, 0.0)
        lap = scores[a:b] - min(_LAP_NOISE * sigma * sigma, float(scores[a:b].min()))
        shot_level = float(np.percentile(lap, 90))
        kind = np.zeros(b - a, np.int8) if types is None else np.asarray(types[a:b], np.int8)
        for i in range(a, b):
            near = np.arange(max(a, i - radius) - a, min(b, i + radius + 1) - a)
            if kind[i - a]:  # judged against the frames of its own coded type, where there are enough
                same = near[kind[near] == kind[i - a]]
                if len(same) >= same_type:
                    near = same
            w = np.exp(-np.abs(near + a - i) / tau)[:, None]  # nearer frames count more
            r = d[i - a] / np.maximum(np.percentile(d[near] * w, percentile, axis=0), 1e-9)
            rel[i] = float(np.sqrt(max(r[:4].min(), 0.0) * max(r[4:].min(), 0.0)))
        line = shot_ratio(rel[a:b], ratio, spread=spread, ratio_hi=ratio_hi, sharp_ref=sharp_ref)
        join = join_line(rel[a:b], line, spread=join_spread, hi=join_hi, sharp_ref=sharp_ref)
        if threshold is not None:
            blurred[a:b] = scores[a:b] < threshold
        elif shot_level > flat:
            blurred[a:b] = rel[a:b] < line
            join_runs(blurred, rel, a, b, join)
        shots.append(Shot(a, b - 1, shot_level, (line * np.percentile(d[:, :4], percentile, axis=0)).tolist(),
                          sigma, line, join))
    return Labels(blurred.tolist(), scores.tolist(), shots, rel.tolist())


class ContextSelector:
    """Labels known in advance (the pre-pass), replayed frame by frame: each frame is decided at
    once, with the score the pre-pass measured. ``offset`` maps the engine's frame numbers to the
    clip's (a segment numbers its frames from 0)."""

    lookahead = 0
    history = 0

    def __init__(self, labels: Labels, every: int = 1, offset: int = 0):
        self.labels = labels
        self.every = every
        self.offset = offset

    def needs_score(self, index: int) -> bool:
        return False

    def push(self, index: int, gray: np.ndarray | None = None) -> list[Decision]:
        i = index + self.offset
        if not 0 <= i < len(self.labels.blurred):
            from vdeblur.errors import InputError

            raise InputError(f"frame {i} was not seen by the pre-pass (the file changed?)")
        return [Decision(index, self.labels.shown_score(i), self.labels.blurred[i])]

    def flush(self) -> list[Decision]:
        return []


def has_context(select: str) -> bool:
    """Whether selector ``select`` labels with the whole file in view when the input is a file."""
    return select.strip().lower() in ("laplacian", "fsm")


def scan_columns(path: str, *, frame_hook=None, high_depth: bool = False, items=None) -> tuple[dict, int, bool]:
    """Decode ``path`` once (no restoring, no RGB conversion unless ``frame_hook`` asks for it:
    the Y plane) and keep what the whole-file rule reads of each frame: ``({"score", "noise",
    "dirs", "change", "ptype"}: columns, frames lost, damaged)`` (:func:`label_columns`'s
    arguments). ``frame_hook(frame)`` sees each decoded frame (classify's timestamps, the fsm's
    scores). ``items(reader)``: the items to score, of the open reader (a piece:
    ``jobs.span.piece_of``), their frames numbered from 0, instead of them all; frames lost then
    counts decoding errors only."""
    from vdeblur.io.reader import Frame, VideoReader

    # columns of 1-, 4- and 8-byte numbers (13 a frame, 49 bytes): a 2-hour 60 fps video's take 21 MB
    scores, sigmas, dirs, changes, types = array("d"), array("f"), array("f"), array("f"), array("b")
    prev = None
    with VideoReader(path, copy_streams=False) as reader:
        reader.high_depth = high_depth
        for item in reader.items() if items is None else items(reader):
            if isinstance(item, Frame):
                f = frame_features(item.luma())
                scores.append(f.score)
                sigmas.append(f.noise)
                dirs.extend(f.dirs)
                changes.append(0.0 if prev is None else content_change(prev, f.signature))
                types.append(frame_type(item))
                prev = f.signature
                if frame_hook is not None:
                    frame_hook(item)
        if items is not None:  # the stream's length says nothing of a piece's
            lost = reader.stats.decode_errors
            damaged = bool(lost or reader.stats.demux_error)
        else:
            lost, damaged = reader.stats.lost(reader.info), reader.stats.damaged(reader.info)
    cols = {"score": np.frombuffer(scores, np.float64), "noise": np.frombuffer(sigmas, np.float32),
            "dirs": np.frombuffer(dirs, np.float32).reshape(len(scores), 8),
            "change": np.frombuffer(changes, np.float32), "ptype": np.frombuffer(types, np.int8)}
    return cols, lost, damaged


def scan(path: str, *, threshold: float | None = None, frame_hook=None, high_depth: bool = False,
         items=None) -> Labels:
    """:func:`scan_columns`, then every frame labelled by the whole-file rule; ``lost`` and
    ``damaged`` set."""
    cols, lost, damaged = scan_columns(path, frame_hook=frame_hook, high_depth=high_depth, items=items)
    labels = label_columns(cols["score"], cols["noise"], cols["dirs"], cols["change"], threshold=threshold,
                           types=cols["ptype"])
    labels.lost, labels.damaged = lost, damaged
    return labels


def spread_every(labels: Labels, every: int) -> Labels:
    """``every=K``: each group of K frames takes the label of its middle frame (Table 9's batch
    mode; every frame is still scored, the pre-pass is cheap)."""
    labels.every = every
    if every > 1:
        n = len(labels.blurred)
        for g in range(0, n, every):
            m = g + (min(every, n - g) - 1) // 2
            for i in range(g, min(n, g + every)):
                labels.blurred[i] = labels.blurred[m]
    return labels


def prepass(path: str, *, threshold: float | None = None, every: int = 1, frame_hook=None,
            high_depth: bool = False, select: str = "laplacian", weights: str | None = None,
            items=None) -> Labels:
    """Decode ``path`` once (:func:`scan`) and label every frame with the whole clip in view;
    ``every=K``: :func:`spread_every`. ``frame_hook(frame)`` sees each decoded frame (classify's
    timestamps). ``select="fsm"``: the fsm's whole-file rule (select/fsm.py ``prepass_fsm``,
    ``weights`` its file). ``items``: a piece only, as :func:`scan`."""
    if select.strip().lower() == "fsm":
        from vdeblur.select.fsm import prepass_fsm

        return prepass_fsm(path, threshold=threshold, every=every, frame_hook=frame_hook,
                           high_depth=high_depth, weights=weights, items=items)
    return spread_every(scan(path, threshold=threshold, frame_hook=frame_hook, high_depth=high_depth,
                             items=items), every)
