"""Test clips with real motion for ``--method lucky``: a camera pans and shakes across a held-out
photograph, a parallax layer moves faster than the background, an object moves on its own path,
and some frames are blurred the way REBVIDS makes them (the mean of the sub-frames of the motion
during the exposure; deblurnet-frame-selection.md IV-B, eq. 7) while the others are sharp.

The photograph is the right view of scikit-image's motorcycle stereo pair: the shipped weights
were trained on the left view and the other stills (benchmarks/skimage_stills.py), so this view
is held out. The moving object is textured from scikit-image's colour wheel (not a training still).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


def held_out_photo() -> np.ndarray:
    import skimage.data as data

    return data.stereo_motorcycle()[1]  # RGB uint8, 500 x 741


def object_texture() -> np.ndarray:
    import skimage.data as data

    return data.colorwheel()[..., :3]


@dataclass
class MotionClip:
    frames: list[np.ndarray]  # what the camera saw: RGB uint8 (blurred or sharp)
    references: list[np.ndarray]  # the sharp frame at the middle of each exposure
    blurred: list[bool]  # which frames were made blurred
    object_masks: list[np.ndarray] = field(default_factory=list)  # where the moving object is (reference)


def _translate(img: np.ndarray, dx: float, dy: float, angle: float, size: tuple[int, int],
               centre: tuple[float, float], border: int = cv2.BORDER_REFLECT) -> np.ndarray:
    """The part of ``img`` a camera at (dx, dy), turned by ``angle`` degrees, sees (w x h)."""
    w, h = size
    m = cv2.getRotationMatrix2D(centre, angle, 1.0)
    m[:, 2] -= (dx, dy)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=border)


def render(t: float, size: tuple[int, int], photo: np.ndarray, tex: np.ndarray, *,
           pan: tuple[float, float], shake: float, parallax: float, obj: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The scene at time ``t`` (frames) as float32 RGB in [0, 255], and the object's mask. Motion
    is given for a view 192 pixels wide and scales with the view (``photo`` is scaled alike)."""
    w, h = size
    u = w / 192.0
    rng = np.random.default_rng(seed)
    ph = rng.uniform(0, 2 * np.pi, 4)
    # camera: a steady pan plus a hand's shake (sums of sines of 2.5-5 Hz at 30 fps: smooth within
    # an exposure, changing direction from frame to frame)
    cx = u * pan[0] * t + u * shake * (np.sin(0.6 * t + ph[0]) + 0.5 * np.sin(1.1 * t + ph[1]))
    cy = u * pan[1] * t + u * shake * (np.sin(0.5 * t + ph[2]) + 0.5 * np.sin(1.0 * t + ph[3]))
    angle = 0.15 * np.sin(0.9 * t + ph[0])
    ox, oy = 40.0 * u, 30.0 * u  # start of the view inside the photograph
    bg = _translate(photo, ox + cx, oy + cy, angle, size, (w / 2, h / 2)).astype(np.float32)
    # parallax layer: the lower band of the view, from another part of the photograph, moving
    # ``parallax`` times as fast as the background (it is nearer the camera)
    band = _translate(photo, 300 * u + parallax * cx, 250 * u + parallax * cy, angle, size, (w / 2, h / 2)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    edge = 0.72 * h + 0.05 * h * np.sin(xx / (0.11 * w) + parallax * cx / (20 * u))
    a = np.clip(yy - edge + 0.5, 0, 1)[..., None]
    img = bg * (1 - a) + band * a
    mask = np.zeros((h, w), np.float32)
    if obj:
        # an object moving on its own path across the view, against the camera's motion
        r = 0.16 * min(w, h)
        px = w * 0.25 + u * (5.5 * t + 3.0 * np.sin(0.8 * t))
        py = h * 0.40 + u * (2.0 * t + 2.0 * np.cos(0.7 * t))
        th, tw = tex.shape[:2]
        m = cv2.getRotationMatrix2D((tw / 2, th / 2), 12.0 * t, (2 * r) / min(th, tw) * 1.4)
        m[:, 2] += (px - tw / 2, py - th / 2)
        o = cv2.warpAffine(tex, m, (w, h), flags=cv2.INTER_CUBIC).astype(np.float32)
        mask = np.clip(r + 0.5 - np.hypot(xx - px, yy - py), 0, 1)
        img = img * (1 - mask[..., None]) + o * mask[..., None]
    return img, mask


def make_clip(n: int = 24, size: tuple[int, int] = (192, 128), *, seed: int = 0, sub: int = 9,
              blurred: list[bool] | None = None, blurred_fraction: float = 0.6, pan: tuple[float, float] = (4.0, 1.0),
              shake: float = 5.0, parallax: float = 1.4, obj: bool = True, exposure: float = 1.0) -> MotionClip:
    """A partly blurred clip of ``n`` frames (RGB uint8, ``size`` = (w, h)).

    A blurred frame is the mean of ``sub`` sub-frames over its exposure (``exposure`` frame
    intervals, centred on the frame's time); a sharp frame is the middle sub-frame, which is
    also every frame's reference. ``blurred`` fixes the labels, else about ``blurred_fraction``
    of the frames are blurred at random (the first and the last kept sharp).
    """
    rng = np.random.default_rng(seed)
    photo, tex = held_out_photo(), object_texture()
    if size[0] != 192:
        photo = cv2.resize(photo, None, fx=size[0] / 192.0, fy=size[0] / 192.0, interpolation=cv2.INTER_CUBIC)
    if blurred is None:
        blurred = [bool(rng.random() < blurred_fraction) for _ in range(n)]
        blurred[0] = blurred[-1] = False
    kw = dict(pan=pan, shake=shake, parallax=parallax, obj=obj, seed=seed)
    frames, refs, masks = [], [], []
    for i in range(n):
        ref, mask = render(float(i), size, photo, tex, **kw)
        refs.append(np.clip(ref + 0.5, 0, 255).astype(np.uint8))
        masks.append(mask > 0.5)
        if blurred[i]:
            ts = i + exposure * (np.arange(sub) / (sub - 1) - 0.5)
            acc = np.zeros_like(ref)
            for t in ts:
                acc += render(float(t), size, photo, tex, **kw)[0]
            frames.append(np.clip(acc / sub + 0.5, 0, 255).astype(np.uint8))
        else:
            frames.append(refs[-1])
    return MotionClip(frames, refs, list(blurred), masks)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    d = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if d == 0 else float(10 * np.log10(255.0 ** 2 / d))
