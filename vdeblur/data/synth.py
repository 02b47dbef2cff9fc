"""Procedural partially blurred clips with sharp ground truth -- REBVIDS in miniature.

Nahli et al. sec. IV-B.2: a captured frame is the average of the latent sharp images over the
exposure, B = 1/e * integral L(tau) dtau (eq. 7), synthesised GoPro-style by averaging consecutive
high-frame-rate frames; REBVIDS averages only *some* intervals of 7 to 12 frames and leaves sharp
frames between them, so the video is partially blurred (Table 4). Here the latent images are
renders of a procedural scene (smooth colour fields, shapes, stripes, fine noise, text-like
glyphs; larger than the frame) seen by a camera with smooth pan + slow rotation, plus a separately
moving textured object. Blurred runs carry fast camera motion and shake; a blurred frame is the
mean of ``average`` sub-frame renders spanning (average-1)/average of a frame interval, averaged
in linear light (gamma 2.2, as GoPro). Sharp frames are single instants: blurred == sharp.
Renders are done at 2x and area-downsampled, so sharp frames are anti-aliased, not interpolated.
No files, no network; deterministic for a seed.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field

import cv2
import numpy as np

_SS = 2  # supersampling of the renders
RUN_MIN, RUN_MAX = 7, 12  # REBVIDS blurred-interval lengths, sec. IV-B.2


@dataclass
class SynthClip:
    """``blurred[i]``/``sharp[i]``: uint8 HxWx3 RGB; ``labels[i]``: True = blurred.

    ``blur_px[i]``: the camera's path length during frame i's exposure, in output pixels (0.0 for
    sharp frames); the moving object and the rotation add to the blur."""

    blurred: list[np.ndarray]
    sharp: list[np.ndarray]
    labels: list[bool]
    blur_px: list[float] = field(default_factory=list)


def _blur_runs(rng: np.random.Generator, n: int, fraction: float) -> list[bool]:
    """Runs of ~RUN_MIN..RUN_MAX blurred frames between sharp gaps; round(fraction*n) blurred."""
    nb = min(n, max(0, round(fraction * n)))
    if nb in (0, n):
        return [nb == n] * n
    k = min(max(1, round(nb / ((RUN_MIN + RUN_MAX) / 2))), n - nb + 1)
    w = rng.integers(RUN_MIN, RUN_MAX + 1, k).astype(float)
    runs = np.maximum(1, np.floor(w / w.sum() * nb)).astype(int)
    runs[: nb - runs.sum()] += 1  # top up to exactly nb (runs >= 1, k <= nb)
    spare = (n - nb) - (k - 1)  # sharp frames beyond one between consecutive runs
    gaps = rng.multinomial(spare, rng.dirichlet(np.ones(k + 1)))
    gaps[1:-1] += 1
    labels: list[bool] = []
    for i in range(k):
        labels += [False] * int(gaps[i]) + [True] * int(runs[i])
    return labels + [False] * int(gaps[k])


def _canvas(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A textured sRGB uint8 scene h x w x 3 at render scale."""
    def field_(step: int, lo: float, hi: float, ch: int = 3) -> np.ndarray:
        small = rng.uniform(lo, hi, (h // step + 2, w // step + 2, ch)).astype(np.float32)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, ch)

    img = field_(96, 40, 215) + field_(12, -25, 25, 1)
    img = np.clip(img, 0, 255).astype(np.uint8)
    area = h * w / (64 * 64 * _SS * _SS)  # shapes per 64x64 output px
    col = lambda: tuple(int(c) for c in rng.integers(0, 256, 3))  # noqa: E731
    for _ in range(int(2 * area)):  # shapes
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(4, 24) * _SS)
        kind, th = rng.integers(0, 3), int(rng.choice([-1, -1, 2, 4]))
        if kind == 0:
            cv2.circle(img, (cx, cy), r, col(), th, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(img, (cx - r, cy - r // 2), (cx + r, cy + r // 2), col(), th, cv2.LINE_AA)
        else:
            pts = (np.array([cx, cy]) + rng.integers(-r, r + 1, (5, 2))).astype(np.int32)
            cv2.fillPoly(img, [pts], col(), cv2.LINE_AA)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(int(0.4 * area) + 1):  # stripe patches
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        pw, ph = int(rng.integers(16, 48) * _SS), int(rng.integers(16, 48) * _SS)
        sl = np.s_[y0 : y0 + ph, x0 : x0 + pw]
        a, period = rng.uniform(0, np.pi), rng.uniform(3, 10) * _SS
        g = np.cos(2 * np.pi * (xx[sl] * np.cos(a) + yy[sl] * np.sin(a)) / period)
        c1, c2 = np.array(col(), np.float32), np.array(col(), np.float32)
        img[sl] = (c1 + (c2 - c1) * (g[..., None] > 0)).astype(np.uint8)
    for _ in range(int(0.3 * area) + 1):  # fine noise patches ("sand", foliage)
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        pw, ph = int(rng.integers(16, 48) * _SS), int(rng.integers(16, 48) * _SS)
        patch = img[y0 : y0 + ph, x0 : x0 + pw].astype(np.int16)
        noise = rng.integers(-60, 61, patch.shape[:2] + (1,), dtype=np.int16)
        img[y0 : y0 + ph, x0 : x0 + pw] = np.clip(patch + noise, 0, 255).astype(np.uint8)
    letters = string.ascii_letters + string.digits
    for _ in range(int(1.5 * area)):  # text-like glyphs
        s = "".join(rng.choice(list(letters), int(rng.integers(3, 9))))
        org = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN,
                               cv2.FONT_HERSHEY_DUPLEX]))
        scale = float(rng.uniform(0.3, 0.8)) * _SS
        cv2.putText(img, s, org, font, scale, col(), _SS, cv2.LINE_AA)
    return img


def _sprite(rng: np.random.Generator, size: int, gamma: float) -> np.ndarray:
    """The moving object: premultiplied linear RGBA float32, a textured soft-edged ellipse."""
    img = np.zeros((size, size, 3), np.uint8)
    c1, c2 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    cell = max(2, size // 8)
    yy, xx = np.mgrid[0:size, 0:size]
    img[:] = np.where((((yy // cell) + (xx // cell)) % 2 == 0)[..., None], c1, c2)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, "OBJ", (size // 6, size // 2), font, size / 80, (255, 255, 0), 2)
    alpha = np.zeros((size, size), np.uint8)
    axes, angle = (size // 2 - 2, size // 3), float(rng.uniform(0, 180))
    cv2.ellipse(alpha, (size // 2, size // 2), axes, angle, 0, 360, 255, -1, cv2.LINE_AA)
    a = (alpha.astype(np.float32) / 255)[..., None]
    return np.concatenate([_to_linear(img, gamma) * a, a], axis=2)


def _to_linear(img: np.ndarray, gamma: float) -> np.ndarray:
    return np.power(img.astype(np.float32) / 255.0, gamma)


def rigid_view(scene: np.ndarray, th: float, src_center: np.ndarray, out_center: np.ndarray,
               size: tuple[int, int]) -> np.ndarray:
    """The ``size`` (w, h) view of ``scene`` rotated by ``th`` about ``src_center``, which lands on
    ``out_center`` (sub-pixel, bilinear, reflected borders): one camera pose."""
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    m = np.hstack([rot, (src_center - rot @ out_center)[:, None]]).astype(np.float64)
    return cv2.warpAffine(scene, m, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


def paste_sprite(img: np.ndarray, sprite: np.ndarray, q: np.ndarray, size: int) -> None:
    """Alpha-composite a premultiplied RGBA ``sprite`` into ``img`` in place at sub-pixel ``q``."""
    h, w = img.shape[:2]
    x0, y0 = int(math.floor(q[0])), int(math.floor(q[1]))
    x1, y1 = min(w, x0 + size + 2), min(h, y0 + size + 2)
    if x1 > x0 and y1 > y0:
        mo = np.array([[1.0, 0, q[0] - x0], [0, 1.0, q[1] - y0]])
        roi = cv2.warpAffine(sprite, mo, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)
        dst = img[y0:y1, x0:x1]
        dst *= 1.0 - roi[..., 3:]
        dst += roi[..., :3]


def synth_clip(
    n_frames: int = 48, height: int = 180, width: int = 320, seed: int = 0, average: int = 7,
    blur_fraction: float = 0.5, *, gamma: float = 2.2, min_blur_px: float = 4.0,
) -> SynthClip:
    """A deterministic partially blurred clip (see the module docstring, sec. IV-B.2).

    ``average``: sub-frames averaged per blurred frame (GoPro: 7). ``blur_fraction``: share of
    blurred frames, in runs of 7-12 (REBVIDS). Every blurred frame's camera path during exposure is
    at least ``min_blur_px`` output pixels (typically 1-3x that). ~0.5 s for the defaults.
    """
    if n_frames < 1 or height < 16 or width < 16 or average < 2 or not 0 <= blur_fraction <= 1:
        raise ValueError("synth_clip: need n_frames >= 1, height/width >= 16, average >= 2, "
                         "0 <= blur_fraction <= 1")
    rng = np.random.default_rng(seed)
    labels = _blur_runs(rng, n_frames, blur_fraction)
    span = (average - 1) / average  # exposure, in frame intervals
    offsets = (np.arange(average) - (average - 1) / 2) / average

    # camera (output px, radians): slow pan and sway (bounded, so the scene stays small for long
    # clips), slow roll; each blurred run adds a fast push (steered back towards the start) + shake
    two = lambda lo, hi: rng.uniform(lo, hi, 2)  # noqa: E731
    waves = [(two(30, 80), two(150, 300), two(0, 6.3)), (two(2, 6), two(30, 80), two(0, 6.3))]
    rot_amp, rot_per = rng.uniform(0.003, 0.01), rng.uniform(30, 80)
    runs: list[list] = []
    drift = np.zeros(2)
    for i, b in enumerate(labels):
        if not b or (i > 0 and labels[i - 1]):
            continue
        e = i
        while e + 1 < n_frames and labels[e + 1]:
            e += 1
        speed = rng.uniform(1.0, 3.0) * min_blur_px / span  # px/frame: 1-3 min_blur per exposure
        a = rng.uniform(0, 2 * np.pi)
        if np.hypot(*drift) > 40:
            a = math.atan2(-drift[1], -drift[0]) + rng.uniform(-1, 1)
        v = speed * np.array([math.cos(a), math.sin(a)])
        drift += v * (e - i + 1)
        runs.append([i, e, v, two(0.1, 0.3) * min_blur_px, two(0.3, 0.9), two(0, 6.3),
                     rng.uniform(-0.004, 0.004)])

    def camera(t: float) -> tuple[np.ndarray, float]:
        p = sum(amp * np.sin(2 * np.pi * t / per + ph) for amp, per, ph in waves)
        th = rot_amp * math.sin(2 * np.pi * t / rot_per)
        for s, e, v, shake, freq, ph, roll in runs:
            dt = min(max(t - (s - 0.5), 0.0), e - s + 1.0)  # time spent in the run so far
            env = min(max(2 * (t - (s - 1)), 0.0), 1.0) * min(max(2 * ((e + 1) - t), 0.0), 1.0)
            p = p + v * dt + env * shake * np.sin(2 * np.pi * freq * t + ph)
            th += roll * dt
        return p, th

    times = [i + (offsets if labels[i] else np.zeros(1)) for i in range(n_frames)]
    for attempt in range(8):  # speed up a run whose slowest exposure moved < min_blur_px
        poses = [[camera(float(t)) for t in ts] for ts in times]
        blur_px = [float(np.linalg.norm(np.diff([p for p, _ in ps], axis=0), axis=1).sum())
                   if labels[i] else 0.0 for i, ps in enumerate(poses)]
        slow = [(r, min(blur_px[r[0] : r[1] + 1])) for r in runs]
        slow = [(r, low) for r, low in slow if low < min_blur_px]
        if not slow or attempt == 7:
            break
        for r, low in slow:
            r[2] = r[2] * (1.25 * min_blur_px / max(low, 0.25 * min_blur_px))
    centres = [camera(float(i)) for i in range(n_frames)]  # the sharp twins (even ``average``)
    allp = np.array([p for ps in poses + [centres] for p, _ in ps])
    pmin, pmax = allp.min(0), allp.max(0)
    thmax = max(abs(th) for ps in poses + [centres] for _, th in ps)
    rh, rw = height * _SS, width * _SS
    margin = int(8 * _SS + thmax * (rh + rw)) + 2
    ch = rh + int(math.ceil(_SS * (pmax[1] - pmin[1]))) + 2 * margin
    cw = rw + int(math.ceil(_SS * (pmax[0] - pmin[0]))) + 2 * margin
    scene = _to_linear(_canvas(rng, ch, cw), gamma)

    # the object: screen-space motion bouncing inside the frame
    osz = max(8, int(0.3 * min(height, width))) * _SS
    sprite = _sprite(rng, osz, gamma)
    ovel = rng.uniform(1.5, 4.0, 2) * rng.choice([-1, 1], 2) * _SS
    o0 = rng.uniform(0, 1, 2) * (np.array([rw, rh]) - osz)

    def obj_pos(t: float) -> np.ndarray:
        lim = np.maximum(np.array([rw, rh]) - osz, 1.0)
        q = np.mod(o0 + ovel * t, 2 * lim)
        return np.where(q > lim, 2 * lim - q, q)

    c = np.array([(rw - 1) / 2, (rh - 1) / 2])

    def render(t: float, p: np.ndarray, th: float) -> np.ndarray:
        img = rigid_view(scene, th, c + _SS * (p - pmin) + margin, c, (rw, rh))
        paste_sprite(img, sprite, obj_pos(t), osz)
        return img

    def encode(lin: np.ndarray) -> np.ndarray:
        small = cv2.resize(lin, (width, height), interpolation=cv2.INTER_AREA)
        out = np.power(np.clip(small, 0, 1), 1 / gamma) * 255 + 0.5
        return np.clip(out, 0, 255).astype(np.uint8)

    blurred, sharp = [], []
    for i in range(n_frames):
        ts, ps = times[i], poses[i]
        if not labels[i]:
            f = encode(render(float(ts[0]), *ps[0]))
            blurred.append(f)
            sharp.append(f.copy())
            continue
        renders = [render(float(t), p, th) for t, (p, th) in zip(ts, ps)]
        blurred.append(encode(np.mean(renders, axis=0, dtype=np.float32)))
        centre = renders[average // 2] if average % 2 else render(float(i), *centres[i])
        sharp.append(encode(centre))
    return SynthClip(blurred, sharp, labels, blur_px)
