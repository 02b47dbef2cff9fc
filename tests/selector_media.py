"""Hard clips for the frame selectors (issue 14): a camera pans and shakes across a photograph;
a blurred frame is the mean of the sub-frames of the camera's motion during its exposure (the
REBVIDS recipe, deblurnet-frame-selection.md IV-B), a sharp frame a single short exposure.

Each clip is one difficulty: ``starts_blurred``, ``ends_blurred``, ``cuts`` (a detailed shot, a
flat one, the detailed one again), ``low_contrast``, ``mild`` (2-4 px of blur), ``noise``,
``crf28`` (H.264 at CRF 28) and ``all_sharp`` (no blurred frame, a cut). The clips are made from
photographs the selectors were never tuned on (by default scikit-image's right view of the
motorcycle pair and its cat; ``benchmarks/select_accuracy.py`` also uses the held-out test
photographs of ``benchmarks/gather_photos.py``) and are all built by one recipe, never one at a
time for a selector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

CLIPS = ("starts_blurred", "ends_blurred", "cuts", "low_contrast", "mild", "noise", "crf28", "all_sharp")


@dataclass
class HardClip:
    name: str
    frames: list[np.ndarray]  # RGB uint8, before encoding
    blurred: list[bool]  # the truth
    cuts: list[int] = field(default_factory=list)  # first frames of the shots after the first
    options: dict[str, str] = field(default_factory=lambda: {"crf": "18", "preset": "veryfast", "threads": "1"})


def default_photos() -> tuple[np.ndarray, np.ndarray]:
    """(detailed, other): held-out scikit-image photographs, RGB uint8."""
    import skimage.data as data

    return data.stereo_motorcycle()[1], data.cat()


def _prepare(photo: np.ndarray, size: tuple[int, int], ss: int) -> np.ndarray:
    """The photograph at the supersampled scale, large enough for the camera's travel."""
    w, h = size
    p = photo if photo.ndim == 3 else np.stack([photo] * 3, -1)
    p = p[..., :3].astype(np.float32)
    s = max(1.5 * w * ss / p.shape[1], 1.5 * h * ss / p.shape[0])
    return cv2.resize(p, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def render_shot(photo: np.ndarray, blur: list[float], size: tuple[int, int], seed: int, *,
                ss: int = 2, contrast: float = 1.0, soften: float = 0.0) -> list[np.ndarray]:
    """Frames of one shot: ``blur[i]`` is frame i's blur length in output pixels (0: sharp). The
    camera pans slowly and shakes; a blurred frame averages sub-frames along the shake's direction
    at that moment (a slightly curved path), spaced at most half an output pixel apart."""
    w, h = size
    rng = np.random.default_rng(seed)
    big = _prepare(photo, size, ss)
    if soften:
        big = cv2.GaussianBlur(big, (0, 0), soften * ss)
    if contrast != 1.0:
        big = big.mean() + contrast * (big - big.mean())
    ph = rng.uniform(0, 2 * np.pi, 4)
    pan = rng.uniform(-0.6, 0.6, 2)
    room = ((big.shape[1] - w * ss) / 2, (big.shape[0] - h * ss) / 2)
    out = []
    for i, length in enumerate(blur):
        cx = pan[0] * i + 3.0 * np.sin(0.7 * i + ph[0])
        cy = pan[1] * i + 3.0 * np.sin(0.55 * i + ph[1])
        theta = np.arctan2(np.cos(0.55 * i + ph[1]) * 0.55, np.cos(0.7 * i + ph[0]) * 0.7) + rng.normal(0, 0.3)
        n = max(1, int(np.ceil(2 * length)) + 1) if length > 0 else 1
        u = np.linspace(-0.5, 0.5, n) if n > 1 else np.zeros(1)
        acc = np.zeros((h * ss, w * ss, 3), np.float32)
        bend = rng.uniform(-0.15, 0.15) * length
        for t in u:
            dx = cx + length * t * np.cos(theta) - bend * (4 * t * t) * np.sin(theta)
            dy = cy + length * t * np.sin(theta) + bend * (4 * t * t) * np.cos(theta)
            x0 = room[0] + ss * dx
            y0 = room[1] + ss * dy
            x0 = float(np.clip(x0, 0, big.shape[1] - w * ss - 1))
            y0 = float(np.clip(y0, 0, big.shape[0] - h * ss - 1))
            m = np.float32([[1, 0, -x0], [0, 1, -y0]])
            acc += cv2.warpAffine(big, m, (w * ss, h * ss), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        img = cv2.resize(acc / len(u), (w, h), interpolation=cv2.INTER_AREA)
        out.append(np.clip(img, 0, 255))
    return out


def _runs(n: int, rng: np.random.Generator, share: float = 0.4, lo: int = 3, hi: int = 8) -> list[bool]:
    """Runs of blurred frames (``lo``..``hi`` long) between sharp ones, about ``share`` of ``n``."""
    lab = [False] * n
    i = int(rng.integers(2, 6))
    while i < n:
        k = int(rng.integers(lo, hi + 1))
        for j in range(i, min(n, i + k)):
            lab[j] = True
        i += k + int(rng.integers(lo, int(hi / share)))
    return lab


def _lengths(lab: list[bool], rng: np.random.Generator, lo: float, hi: float) -> list[float]:
    return [float(rng.uniform(lo, hi)) if b else 0.0 for b in lab]


def make_clip(name: str, n: int = 48, size: tuple[int, int] = (256, 192), seed: int = 0,
              photos: tuple[np.ndarray, np.ndarray] | None = None) -> HardClip:
    """The hard clip ``name`` (one of CLIPS) of ``n`` frames of ``size`` (w, h)."""
    a, b = photos if photos is not None else default_photos()
    rng = np.random.default_rng(1000 + seed)
    strong = (5.0, 12.0)
    if name == "starts_blurred":
        k = int(0.45 * n)
        lab = [True] * k + [False] * (n - k)
        frames = render_shot(a, _lengths(lab, rng, *strong), size, seed)
        return HardClip(name, _u8(frames), lab)
    if name == "ends_blurred":
        k = int(0.45 * n)
        lab = [False] * (n - k) + [True] * k
        frames = render_shot(b, _lengths(lab, rng, *strong), size, seed)
        return HardClip(name, _u8(frames), lab)
    if name == "cuts":
        k = n // 3
        parts = [(a, 1.0, 0.0), (b, 0.4, 1.0), (a, 1.0, 0.0)]
        frames, lab, cuts = [], [], []
        for j, (p, c, soft) in enumerate(parts):
            m = k if j < 2 else n - 2 * k
            lj = _runs(m, rng)
            if j:
                cuts.append(len(frames))
            frames += render_shot(p, _lengths(lj, rng, *strong), size, seed + j, contrast=c, soften=soft)
            lab += lj
        return HardClip(name, _u8(frames), lab, cuts)
    lab = _runs(n, rng)
    if name == "low_contrast":
        frames = render_shot(b, _lengths(lab, rng, *strong), size, seed, contrast=0.25)
        return HardClip(name, _u8(frames), lab)
    if name == "mild":
        frames = render_shot(a, _lengths(lab, rng, 2.0, 4.0), size, seed)
        return HardClip(name, _u8(frames), lab)
    if name == "noise":
        frames = render_shot(b, _lengths(lab, rng, 4.0, 10.0), size, seed)
        frames = [f + rng.normal(0, 8.0, f.shape).astype(np.float32) for f in frames]
        return HardClip(name, _u8(frames), lab)
    if name == "crf28":
        frames = render_shot(a, _lengths(lab, rng, 3.0, 10.0), size, seed)
        return HardClip(name, _u8(frames), lab, options={"crf": "28", "preset": "veryfast", "threads": "1"})
    if name == "all_sharp":
        k = n // 2
        frames = render_shot(a, [0.0] * k, size, seed) + render_shot(b, [0.0] * (n - k), size, seed + 1)
        return HardClip(name, _u8(frames), [False] * n, [k])
    raise ValueError(f"unknown hard clip {name!r}")


def _u8(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [np.clip(f, 0, 255).round().astype(np.uint8) for f in frames]


def write_clip(path, clip: HardClip, fps: int = 30) -> None:
    """Encode ``clip`` with PyAV (libx264, yuv420p; its options say the CRF)."""
    from media import write_video  # tests/ is on sys.path (conftest, or the benchmark)

    h, w = clip.frames[0].shape[:2]
    write_video(path, size=(w, h), fps=fps, frames=clip.frames, options=clip.options)
