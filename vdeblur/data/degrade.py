"""Degradations for building training sets: frame averaging, REBVIDS schedules, camera motion, noise.

* ``average_frames``: GoPro-style blur synthesis, a captured frame is the mean of the latent sharp
  frames over the exposure, B = 1/e * integral L(tau) dtau (Nahli et al., DeblurNet, sec. IV-B.2,
  eq. 7), optionally in linear light (the camera response undone with gamma 2.2, then re-applied).
* ``rebvids_plan``: the REBVIDS *partially blurred* model (DeblurNet sec. IV-B.2): intervals of a
  random length of 7-12 high-frame-rate frames are averaged into one blurred frame, some intervals
  are skipped (their frames stay sharp), so sharp frames lie between blurred ones; at most 70 % of
  the frames are blurred.
* ``camera_motion_stack`` / ``camera_motion_renderer``: sub-frames of a still image seen by a camera
  on a smooth random trajectory with shake (sub-pixel warps), plus an independently moving object
  (the sprite of ``vdeblur.data.synth``), to average into blurred frames (dynamic scenes, blur from
  camera shake and moving objects: R2-D4 sec. II-B, DeblurNet sec. IV-B).
* ``poisson_gaussian``: Poisson-Gaussian noise, R2-D4 (video denoising and deblurring) eq. 1,
  x = alpha * P(y / alpha) + N(0, sigma^2) on the 0-255 scale; ``NOISE_PRESETS`` are the paper's
  low / moderate / severe levels (sec. V).

Everything is deterministic given the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import cv2
import numpy as np

from vdeblur.data.synth import RUN_MAX, RUN_MIN, _sprite, _to_linear, paste_sprite, rigid_view

_STILL_SS = 4  # supersampling of camera_motion_renderer's views

# R2-D4 sec. V: {alpha, sigma} for low, moderate and severe noise (Eq. 1, 0-255 scale)
NOISE_PRESETS: dict[str, tuple[float, float]] = {
    "low": (0.5, 0.9),
    "moderate": (1.9, 1.7),
    "severe": (7.1, 3.3),
}


def poisson_gaussian(img_uint8: np.ndarray, alpha: float, sigma: float,
                     rng: np.random.Generator) -> np.ndarray:
    """R2-D4 eq. 1: x = alpha * Poisson(y / alpha) + N(0, sigma^2), y the 0-255 image; uint8 out.

    The noise variance is alpha * y + sigma^2 (signal-dependent shot noise plus read noise);
    the result is rounded and clipped to 0-255.
    """
    if alpha <= 0 or sigma < 0:
        raise ValueError("poisson_gaussian: need alpha > 0 and sigma >= 0")
    y = np.asarray(img_uint8).astype(np.float64)
    x = alpha * rng.poisson(y / alpha) + rng.normal(0.0, sigma, y.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _lut(gamma: float) -> np.ndarray:
    return np.power(np.arange(256, dtype=np.float64) / 255.0, gamma)


def average_frames(frames: Sequence[np.ndarray], linearize: bool, gamma: float = 2.2) -> np.ndarray:
    """Mean of uint8 frames (DeblurNet eq. 7, GoPro-style); uint8 out.

    ``linearize``: undo the camera response (x/255)^gamma before averaging and re-apply it after,
    as in the GoPro dataset; otherwise the sRGB values are averaged. One frame comes back as is.
    """
    frames = list(frames)
    if not frames:
        raise ValueError("average_frames: no frames")
    if len(frames) == 1:
        return np.array(frames[0], dtype=np.uint8, copy=True)
    lut = _lut(gamma) if linearize else None
    acc = np.zeros(frames[0].shape, np.float64)
    for f in frames:
        acc += lut[f] if lut is not None else f
    acc /= len(frames)
    if lut is not None:
        acc = np.power(acc, 1.0 / gamma) * 255.0
    return np.clip(np.floor(acc + 0.5), 0, 255).astype(np.uint8)


def rebvids_plan(n_frames: int, rng: np.random.Generator, min_len: int = RUN_MIN,
                 max_len: int = RUN_MAX, max_blurred: float = 0.7,
                 p_blur: float = 0.75) -> list[tuple[int, int] | None]:
    """The REBVIDS partially blurred schedule (DeblurNet sec. IV-B.2) over ``n_frames`` source frames.

    One entry per output frame, in order: ``None`` = a sharp frame, the next source frame as is;
    ``(start, end)`` = a blurred frame, the mean of source frames ``start..end-1`` (half-open,
    ``min_len <= end - start <= max_len``). The source is cut into consecutive intervals of random
    length; each is averaged (probability ``p_blur``) or skipped (its frames output sharp). An
    interval is averaged only if the blurred share of the output so far stays <= ``max_blurred``,
    so every prefix, and the whole plan, has at most 70 % blurred frames, the plan starts with sharp
    frames and runs of blurred frames have sharp frames between them. Every source frame is used
    exactly once; a tail shorter than an interval stays sharp.
    """
    if n_frames < 0 or not 1 <= min_len <= max_len or not 0 <= max_blurred <= 1:
        raise ValueError("rebvids_plan: need n_frames >= 0, 1 <= min_len <= max_len, "
                         "0 <= max_blurred <= 1")
    plan: list[tuple[int, int] | None] = []
    pos = nb = 0
    while pos < n_frames:
        length = int(rng.integers(min_len, max_len + 1))
        blur = bool(rng.random() < p_blur)
        if blur and pos + length <= n_frames and nb + 1 <= max_blurred * (len(plan) + 1) + 1e-9:
            plan.append((pos, pos + length))
            nb += 1
            pos += length
        else:
            k = min(length, n_frames - pos)
            plan += [None] * k
            pos += k
    return plan


def camera_motion_renderer(
    still_rgb: np.ndarray, n_sub: int, rng: np.random.Generator, *,
    size: tuple[int, int] | None = None, pan: float = 0.08, shake_px: float = 2.0,
    shake_periods: tuple[float, float] = (16.0, 40.0),
    max_rotation: float = 0.015, object_size: float = 0.25, gamma: float = 2.2, motion: float = 1.0,
) -> Callable[[int], np.ndarray]:
    """``render(k)`` -> sub-frame k (0 <= k < n_sub) of ``still_rgb`` seen by a moving camera;
    ``render([k0, ..., kn])`` -> the sharp frame at the centre of that exposure (the mean camera
    pose and object position over it), the target that is aligned with the blur of those
    sub-frames: a sub-frame's own pose (GoPro's middle frame) sits up to a pixel away from the
    blur's centre when the path curves, an offset no network can recover.

    The camera follows a smooth random trajectory: a slow back-and-forth pan (amplitude ``pan`` of
    the frame's smaller side, one to two periods over the clip), a slow roll (up to
    ``max_rotation`` rad), plus shake (three sinusoids of up to ``shake_px`` output pixels with
    periods of ``shake_periods`` sub-frames: hand tremor of 6-15 Hz at 240 sub-frames per second,
    so the path within one 7-sub-frame exposure is smooth: a blur whose path loops gives no
    clue where its sharp frame lies);
    each sub-frame is a sub-pixel ``cv2.warpAffine`` in linear light. A textured object
    (``object_size`` of the smaller side; ``object_size=0`` for none) moves independently across
    the frame, bouncing off its edges. ``size`` = (W, H) of the output (default: the still's);
    the still is rescaled so the view plus its motion margin fits inside it. ``motion`` scales the
    camera's speed: the pan sweeps ``motion`` times as often (same amplitude), the shake is
    ``motion`` times larger and the object ``motion`` times faster, so blur lengths grow about
    linearly with it. uint8 RGB out.
    Averaging consecutive sub-frames gives blurred frames (DeblurNet sec. IV-B.2, eq. 7).
    """
    if still_rgb.ndim != 3 or still_rgb.shape[2] != 3 or n_sub < 1 or motion <= 0:
        raise ValueError("camera_motion_renderer: need an HxWx3 image, n_sub >= 1 and motion > 0")
    sh, sw = still_rgb.shape[:2]
    w, h = size if size is not None else (sw, sh)
    side = min(w, h)
    amp = rng.uniform(0.5, 1.0, 2) * pan * side * rng.choice([-1.0, 1.0], 2)
    periods = np.maximum(n_sub / (rng.uniform(1.0, 2.0, 2) * motion), 8.0)
    phases = rng.uniform(0, 2 * np.pi, 2)
    shakes = [(rng.uniform(0.3, 1.0, 2) * shake_px * motion, rng.uniform(*shake_periods, 2), rng.uniform(0, 2 * np.pi, 2))
              for _ in range(3)]
    rot_amp = rng.uniform(-1.0, 1.0) * max_rotation
    rot_per, rot_ph = max(n_sub / rng.uniform(0.5, 1.5), 8.0), rng.uniform(0, 2 * np.pi)

    def pose(t: float) -> tuple[np.ndarray, float]:
        p = amp * np.sin(2 * np.pi * t / periods + phases)
        for a, per, ph in shakes:
            p = p + a * np.sin(2 * np.pi * t / per + ph)
        return p, rot_amp * math.sin(2 * np.pi * t / rot_per + rot_ph)

    reach = float(np.abs(amp).max() + sum(a.max() for a, _, _ in shakes))
    margin = int(math.ceil(reach + abs(rot_amp) * (w + h) / 2)) + 2
    scale = max((w + 2 * margin) / sw, (h + 2 * margin) / sh)
    cw, ch = max(w + 2 * margin, int(math.ceil(sw * scale))), max(h + 2 * margin, int(math.ceil(sh * scale)))
    # Views are rendered at SS x the output size and area-downsampled: a bilinear warp smooths by
    # an amount that depends on the sub-pixel offset, which would make "sharp" targets randomly
    # soft (an error no network can undo); at 4x the warp's kernel spans a quarter of an output pixel.
    ss = _STILL_SS
    interp = cv2.INTER_AREA if scale * ss < 1 else cv2.INTER_CUBIC
    scene = _to_linear(cv2.resize(still_rgb, (cw * ss, ch * ss), interpolation=interp), gamma)
    c_out = np.array([(w * ss - 1) / 2, (h * ss - 1) / 2])
    c_src = np.array([(cw * ss - 1) / 2, (ch * ss - 1) / 2])

    osz = int(object_size * side)
    sprite = _sprite(rng, osz * ss, gamma) if osz >= 8 else None
    lim = np.maximum(np.array([w, h], float) - osz, 1.0)
    o0 = rng.uniform(0, 1, 2) * lim
    ovel = rng.uniform(0.3, 1.2, 2) * rng.choice([-1.0, 1.0], 2) * motion  # output px per sub-frame

    def obj_pos(k: float) -> np.ndarray:
        q = np.mod(o0 + ovel * k, 2 * lim)
        return np.where(q > lim, 2 * lim - q, q)  # bouncing off the frame's edges

    def render(k: int | Sequence[int]) -> np.ndarray:
        if isinstance(k, (int, np.integer)):
            (p, th), q = pose(float(k)), obj_pos(float(k))
        else:  # the centre of an exposure: the mean camera pose and object position over it
            poses = [pose(float(i)) for i in k]
            p, th = np.mean([a for a, _ in poses], axis=0), float(np.mean([b for _, b in poses]))
            q = np.mean([obj_pos(float(i)) for i in k], axis=0)
        img = rigid_view(scene, th, c_src + p * ss, c_out, (w * ss, h * ss))
        if sprite is not None:
            paste_sprite(img, sprite, q * ss, osz * ss)
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        out = np.power(np.clip(img, 0, 1), 1 / gamma) * 255 + 0.5
        return np.clip(out, 0, 255).astype(np.uint8)

    return render


def camera_motion_stack(still_rgb: np.ndarray, n_sub: int, rng: np.random.Generator,
                        **kwargs) -> list[np.ndarray]:
    """The ``n_sub`` sub-frames of ``camera_motion_renderer`` (same keywords) as a list of uint8 RGB.

    ``average_frames(camera_motion_stack(still, 7, rng), linearize=True)`` is one blurred frame
    with camera shake and a moving object (DeblurNet sec. IV-B.2, eq. 7).
    """
    render = camera_motion_renderer(still_rgb, n_sub, rng, **kwargs)
    return [render(k) for k in range(n_sub)]
