"""Training pairs made on the fly, in torch, on the training device: every call draws new crops
of photographs and new degradations, so there is no fixed set of frames to overfit.

One sample is a window of ``frames`` consecutive video frames (the temporal methods need motion
that is consistent from frame to frame) and the sharp target of frame ``current``:

* **Camera shake**: the view of a photograph moves along a smooth path: a pan (velocity and
  acceleration), hand tremor (two sinusoids of 0.2-0.5 cycles per frame interval, i.e. 6-15 Hz at
  30 fps), roll about a point in or near the crop, and zoom. The blur length over the current
  frame's exposure is drawn log-uniform from 0.3 px to ``max_blur`` px; the exposure from 5 % to
  all of the frame interval (a short exposure of a fast pan blurs as much as a long one of a slow
  pan, but the frames of the window lie further apart).
* **Moving objects**: with probability ``p_object`` a soft-edged elliptical crop of another
  photograph moves across the frame on a path of its own.
* **Mild defocus** (probability ``p_defocus``): a Gaussian of 0.3-1.2 px on the input only.
* **Averaging**: each exposure is the mean of sub-frames spaced at most one output pixel apart
  (so box-filtered sub-frames join without ghosts), in linear light (gamma 2.2, as GoPro) or, with
  probability ``p_gamma_avg``, of the gamma-encoded values (as DVD and REDS were made).
* **Targets at the exposure's mean pose**: the sharp frame is the view at the mean camera pose and
  object position over the current frame's exposure, which is where the blur is centred (a
  sub-frame's own pose can sit a pixel away when the path curves; no net can undo that).
* **Supersampling**: views are warped (bilinear) at ``ss`` x the output resolution from the
  photograph's own pixels and area-averaged down, so a sharp target is not randomly softened by
  the sub-pixel phase of a bilinear warp (at ss = 4 the warp's kernel spans a quarter pixel).
* **Sharp content**: a share ``p_static`` of samples has no motion at all (input = target before
  noise and compression), the log-uniform blur length makes many more nearly sharp, and in a
  window each other frame is sharp (a short exposure) with probability ``p_sharp_frame``, as in
  partially blurred video (REBVIDS).
* **Sensor noise**: R2-D4's Poisson-Gaussian noise (Eq. 1; ``degrade.NOISE_PRESETS``), a level
  drawn per sample from ``noise`` (``None`` = clean), on the 0-255 scale, rounded to 8 bit.
* **Compression**: after blur and noise, with probability ``p_jpeg``, JPEG through OpenCV at a
  quality drawn from ``jpeg_quality`` (4:2:0, one quality per window): a cheap stand-in for H.264 /
  HEVC at CRF 15-30 (a codec's blocking, ringing and loss of fine texture; not its motion-
  compensated artefacts). It runs on the CPU, per frame.

All randomness comes from the ``numpy.random.Generator`` passed to :meth:`OnlineDegrader.sample`
(noise from a torch generator seeded from it), so a seed gives the same batch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vdeblur.errors import InputError

GAMMA = 2.2
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "val", "test")


def list_photos(root: str, split: str | None = None) -> list[str]:
    """The photographs of ``root/split/`` (the layout ``benchmarks/gather_photos.py`` writes), or
    of ``root/`` itself when it has no such folder. Sorted; an empty or missing folder is an
    InputError."""
    if not os.path.isdir(root):
        raise InputError(f"photo folder {root}: does not exist or is not a folder")
    folder = os.path.join(root, split) if split and os.path.isdir(os.path.join(root, split)) else root
    paths = sorted(os.path.join(folder, n) for n in os.listdir(folder)
                   if n.lower().endswith(IMAGE_EXTS) and not n.startswith("."))
    if not paths:
        raise InputError(f"photo folder {folder}: no .png/.jpg photographs")
    return paths


def _read(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read photograph {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class PhotoPool:
    """Up to ``size`` photographs held on ``device`` as uint8 [3, H, W]; :meth:`refresh` swaps one
    for a photograph read from disk, so every photograph of a large folder is seen over a run
    without holding all of them in memory."""

    def __init__(self, paths: list[str], device: torch.device | str = "cpu", size: int = 64,
                 rng: np.random.Generator | None = None):
        if not paths:
            raise InputError("no photographs to train on")
        self.paths, self.device = list(paths), torch.device(device)
        rng = rng or np.random.default_rng(0)
        order = rng.permutation(len(self.paths))[: min(size, len(self.paths))]
        self.items = [self._load(self.paths[i]) for i in order]

    def _load(self, path: str) -> torch.Tensor:
        return torch.from_numpy(_read(path)).permute(2, 0, 1).contiguous().to(self.device)

    def get(self, rng: np.random.Generator) -> torch.Tensor:
        return self.items[int(rng.integers(len(self.items)))]

    def refresh(self, rng: np.random.Generator) -> None:
        if len(self.paths) > len(self.items):
            self.items[int(rng.integers(len(self.items)))] = self._load(self.paths[int(rng.integers(len(self.paths)))])


@dataclass
class DegradeConfig:
    crop: int = 64
    shape: tuple[int, int] | None = None  # (h, w) instead of crop x crop (test sets)
    frames: int = 1  # window length
    current: int = 0  # index of the target's frame in the window
    ss: int = 4  # supersampling of the views
    ss_blur: int = 2  # supersampling of the sub-frames of an exposure of at least 4 sub-frames
    max_blur: float = 24.0  # output px over the current frame's exposure (the log-uniform top)
    max_speed: float = 48.0  # output px per frame interval
    max_sub: int = 32  # sub-frames per exposure at most
    scale: tuple[float, float] = (0.75, 1.5)  # photo px per supersampled view px
    p_static: float = 0.2
    p_object: float = 0.3
    p_defocus: float = 0.3
    p_gamma_avg: float = 0.5
    p_sharp_frame: float = 0.15
    noise: list = field(default_factory=list)  # levels (alpha, sigma) or None, one drawn per sample
    p_jpeg: float = 0.85
    jpeg_quality: tuple[int, int] = (45, 95)


class OnlineDegrader:
    """``sample(rng, batch)`` -> ``{"x": [B, T, 3, h, w], "y": [B, 3, h, w]}`` floats in 0-1 on the
    pool's device, plus ``"clean"`` (the current frame blurred, before noise and compression) when
    noise levels are configured (R2-D4's denoising target)."""

    def __init__(self, pool: PhotoPool, cfg: DegradeConfig):
        self.pool, self.cfg = pool, cfg
        self.device = pool.device
        self.h, self.w = cfg.shape or (cfg.crop, cfg.crop)
        self._grids: dict[int, torch.Tensor] = {}

    def _grid(self, s: int) -> torch.Tensor:
        """[hv * wv, 3]: (x, y, 1) of the view's sample points at ``s`` per output px, in output px
        from the view's centre."""
        if s not in self._grids:
            jx = (torch.arange(self.w * s, device=self.device, dtype=torch.float32) + 0.5) / s - self.w / 2
            jy = (torch.arange(self.h * s, device=self.device, dtype=torch.float32) + 0.5) / s - self.h / 2
            u = torch.stack(torch.meshgrid(jx, jy, indexing="xy"), -1).reshape(-1, 2)
            self._grids[s] = torch.cat([u, torch.ones_like(u[:, :1])], 1)
        return self._grids[s]

    # ------------------------------------------------------------------------------- motion
    def _motion(self, rng: np.random.Generator) -> dict:
        cfg = self.cfg
        if rng.random() < cfg.p_static:
            return {"static": True, "e": 0.0}
        length = math.exp(rng.uniform(math.log(0.3), math.log(cfg.max_blur)))
        e = rng.uniform(max(0.05, min(1.0, length / cfg.max_speed)), 1.0)
        v = length / e
        a = rng.uniform(0, 2 * math.pi)
        half = min(self.h, self.w) / 2
        m = {
            "static": False, "e": e,
            "vel": v * np.array([math.cos(a), math.sin(a)]),
            "acc": v * rng.uniform(-0.3, 0.3, 2),
            "tremor": [(rng.uniform(0, 0.3) * max(length, 1.0) * rng.uniform(0.3, 1, 2), rng.uniform(0.2, 0.5),
                        rng.uniform(0, 2 * math.pi, 2)) for _ in range(2)],
            "omega": rng.uniform(-1, 1) * rng.uniform(0, 0.5) * v / half if rng.random() < 0.5 else 0.0,
            "zeta": rng.uniform(-1, 1) * rng.uniform(0, 0.3) * v / half if rng.random() < 0.3 else 0.0,
            "centre": rng.uniform(-1, 1, 2) * (self.w, self.h),
        }
        return m

    @staticmethod
    def _pose(m: dict, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Translation [n, 2] (output px), rotation [n] (rad), log zoom [n] at times ``t``."""
        t = np.asarray(t, np.float64)
        if m["static"]:
            return np.zeros((len(t), 2)), np.zeros(len(t)), np.zeros(len(t))
        p = m["vel"] * t[:, None] + 0.5 * m["acc"] * t[:, None] ** 2
        for amp, f, ph in m["tremor"]:
            p = p + amp * (np.sin(2 * math.pi * f * t[:, None] + ph) - np.sin(ph))
        return p, m["omega"] * t, m["zeta"] * t

    def _path_px(self, m: dict, t0: float, e: float) -> float:
        """Longest path of the crop's corners over the exposure [t0 - e/2, t0 + e/2], output px."""
        if m["static"] or e <= 0:
            return 0.0
        t = t0 + e * (np.linspace(0, 1, 33) - 0.5)
        p, th, z = self._pose(m, t)
        h, w = self.h / 2, self.w / 2
        corners = np.array([[-w, -h], [w, -h], [-w, h], [w, h]]) - m["centre"]
        longest = 0.0
        for c in corners:
            rot = np.stack([np.cos(th) * c[0] - np.sin(th) * c[1], np.sin(th) * c[0] + np.cos(th) * c[1]], 1)
            pts = rot * np.exp(z)[:, None] + p
            longest = max(longest, float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()))
        return longest

    # ------------------------------------------------------------------------------ rendering
    def _views(self, photo: torch.Tensor, poses: tuple, k: float, centre: np.ndarray, rot_c: np.ndarray,
               obj: dict | None, obj_q: np.ndarray | None, ss: int | None = None) -> torch.Tensor:
        """Linear-light views [n, 3, h, w] of ``photo`` at the n poses (area-downsampled).

        Pose (p, theta, log zoom) maps an output point u (px from the view's centre) to the scene
        point rc + zoom R(theta) (u - rc) + p, rc the centre of roll; the photo has k * ss of its
        pixels per output pixel's ss-th part. ``ss``: sample points per output px (default the
        configured ss; the scene's scale does not change with it)."""
        cfg, dev = self.cfg, self.device
        p, th, z = (np.asarray(a, np.float64) for a in poses)
        n = p.shape[0]
        cos, sin = np.cos(th) * np.exp(z), np.sin(th) * np.exp(z)
        sc = k * cfg.ss
        # photo px = A u + b (pixel centres at integers), per pose
        ax = np.stack([cos, -sin], 1) * sc
        ay = np.stack([sin, cos], 1) * sc
        bx = centre[0] + sc * (rot_c[0] - cos * rot_c[0] + sin * rot_c[1] + p[:, 0])
        by = centre[1] + sc * (rot_c[1] - sin * rot_c[0] - cos * rot_c[1] + p[:, 1])
        hw, hh = self.w / 2, self.h / 2
        cx = np.array([-hw, hw, -hw, hw]); cy = np.array([-hh, -hh, hh, hh])  # noqa: E702
        gx = ax[:, :1] * cx + ax[:, 1:] * cy + bx[:, None]
        gy = ay[:, :1] * cx + ay[:, 1:] * cy + by[:, None]
        _, ph, pw = photo.shape
        x0, x1 = int(max(0, math.floor(gx.min()) - 2)), int(min(pw, math.ceil(gx.max()) + 3))
        y0, y1 = int(max(0, math.floor(gy.min()) - 2)), int(min(ph, math.ceil(gy.max()) + 3))
        if x1 - x0 < 2 or y1 - y0 < 2:  # the view left the photo: take it from the whole photo
            x0, y0, x1, y1 = 0, 0, pw, ph
        region = (photo[:, y0:y1, x0:x1].float() / 255).pow(GAMMA)[None]
        hr, wr = y1 - y0, x1 - x0
        # normalised (align_corners=False): (2 (X - x0) + 1) / wr - 1
        coef = np.zeros((n, 3, 2))
        coef[:, :2, 0] = ax * 2 / wr
        coef[:, 2, 0] = (2 * (bx - x0) + 1) / wr - 1
        coef[:, :2, 1] = ay * 2 / hr
        coef[:, 2, 1] = (2 * (by - y0) + 1) / hr - 1
        ss = ss or cfg.ss
        u1 = self._grid(ss)
        grid = u1 @ torch.as_tensor(coef, dtype=torch.float32, device=dev)  # [n, P, 2]
        hv, wv = self.h * ss, self.w * ss
        out = F.grid_sample(region, grid.view(1, n * hv, wv, 2), mode="bilinear", padding_mode="reflection",
                            align_corners=False)
        if obj is not None and obj_q is not None:
            osz = obj["rgba"].shape[-1]
            q = np.asarray(obj_q, np.float64)  # [n, 2] top-left, output px
            oc = np.zeros((n, 3, 2))
            oc[:, 0, 0] = oc[:, 1, 1] = 2 * cfg.ss / osz
            oc[:, 2, 0] = 2 * cfg.ss * (hw - q[:, 0]) / osz - 1
            oc[:, 2, 1] = 2 * cfg.ss * (hh - q[:, 1]) / osz - 1
            og = u1 @ torch.as_tensor(oc, dtype=torch.float32, device=dev)
            o = F.grid_sample(obj["rgba"][None], og.view(1, n * hv, wv, 2), mode="bilinear",
                              padding_mode="zeros", align_corners=False)
            out = out * (1 - o[:, 3:]) + o[:, :3]
        out = F.avg_pool2d(out, ss)  # blocks never straddle two views (hv is a multiple of ss)
        return out.view(3, n, self.h, self.w).permute(1, 0, 2, 3)

    def _object(self, rng: np.random.Generator) -> dict:
        """A soft-edged ellipse cut from a photograph: premultiplied linear RGBA at ss x resolution."""
        cfg = self.cfg
        photo = self.pool.get(rng)
        size = max(2, int(min(self.h, self.w) * rng.uniform(0.25, 0.5))) * cfg.ss
        _, ph, pw = photo.shape
        src = int(min(ph, pw, size * rng.uniform(0.75, 1.5)))
        y, x = int(rng.integers(ph - src + 1)), int(rng.integers(pw - src + 1))
        rgb = (photo[:, y : y + src, x : x + src].float() / 255).pow(GAMMA)[None]
        rgb = F.interpolate(rgb, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
        j = (torch.arange(size, device=self.device, dtype=torch.float32) + 0.5) / size * 2 - 1
        yy, xx = torch.meshgrid(j, j, indexing="ij")
        ang = rng.uniform(0, math.pi)
        ax, ay = rng.uniform(0.6, 0.95), rng.uniform(0.4, 0.95)
        u = xx * math.cos(ang) + yy * math.sin(ang)
        w = -xx * math.sin(ang) + yy * math.cos(ang)
        r = torch.sqrt((u / ax) ** 2 + (w / ay) ** 2)
        alpha = ((1 - r) * size / (2 * cfg.ss)).clamp(0, 1)  # a one-output-pixel soft edge
        return {"rgba": torch.cat([rgb * alpha, alpha[None]]), "size": size / cfg.ss}

    def _object_path(self, rng: np.random.Generator, size: float) -> dict:
        cfg = self.cfg
        speed = math.exp(rng.uniform(math.log(0.3), math.log(cfg.max_speed / 2)))
        a = rng.uniform(0, 2 * math.pi)
        return {"q0": rng.uniform(-size / 2, np.array([self.w, self.h]) - size / 2), "vel": speed * np.array([math.cos(a), math.sin(a)])}

    # -------------------------------------------------------------------------------- sample
    def sample_one(self, rng: np.random.Generator, sharp: list[bool] | None = None,
                   all_targets: bool = False, motion: dict | None = None,
                   info: dict | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs [T, 3, h, w] 0-255 float before noise and compression, target [3, h, w],
        clean current frame [3, h, w]). ``sharp[i]``: frame i is a single instant (else the
        configured draw); ``all_targets``: the target is [T, 3, h, w], every frame's; ``motion``:
        a camera path from :meth:`_motion` instead of a new draw. ``info``, when given, is filled
        with the current frame's blur: ``camera_px`` (the longest path of the crop's corners over
        its exposure, output px), ``object_px`` (the moving object's travel, 0 without one) and
        ``defocus`` (the Gaussian's sigma, 0 without)."""
        cfg = self.cfg
        photo = self.pool.get(rng)
        _, ph, pw = photo.shape
        m = motion if motion is not None else self._motion(rng)
        k = rng.uniform(*cfg.scale)
        k = min(k, (pw - 4) / (self.w * cfg.ss), (ph - 4) / (self.h * cfg.ss))  # a small photo
        hx, hy = self.w * cfg.ss * k / 2, self.h * cfg.ss * k / 2
        centre = np.array([rng.uniform(hx, max(hx, pw - hx)), rng.uniform(hy, max(hy, ph - hy))]) - 0.5
        obj = obj_path = None
        if rng.random() < cfg.p_object:
            obj = self._object(rng)
            obj_path = self._object_path(rng, obj["size"])
        gamma_avg = rng.random() < cfg.p_gamma_avg
        times, counts = [], []
        for i in range(cfg.frames):
            t = float(i - cfg.current)
            if sharp is not None:
                e = 0.0 if sharp[i] else m["e"]
            else:
                e = m["e"] if (i == cfg.current or rng.random() >= cfg.p_sharp_frame) else 0.0
            travel = self._path_px(m, t, e)
            if info is not None and i == cfg.current:
                info["camera_px"] = travel
                info["object_px"] = float(np.linalg.norm(obj_path["vel"])) * e if obj_path is not None else 0.0
            if obj_path is not None:
                travel = max(travel, float(np.linalg.norm(obj_path["vel"])) * e)
            n = int(min(cfg.max_sub, max(1, math.ceil(travel) + 1))) if e > 0 else 1
            ts = t + e * ((np.arange(n) + 0.5) / n - 0.5) if n > 1 else np.array([t])
            times.append(ts)
            counts.append(n)
        tall = np.concatenate(times)
        p, th, z = self._pose(m, tall)
        # the targets: the mean pose (and object position) over each exposure
        wanted = range(cfg.frames) if all_targets else [cfg.current]
        ps, ths, zs, qs = [p], [th], [z], []
        for i in wanted:
            pc, thc, zc = self._pose(m, times[i])
            ps.append(pc.mean(0, keepdims=True))
            ths.append([thc.mean()])
            zs.append([zc.mean()])
            if obj_path is not None:
                qs.append((obj_path["q0"] + obj_path["vel"] * times[i][:, None]).mean(0, keepdims=True))
        p, th, z = np.concatenate(ps), np.concatenate(ths), np.concatenate(zs)
        q = None
        if obj_path is not None:
            q = np.concatenate([obj_path["q0"] + obj_path["vel"] * tall[:, None], *qs])
        rot_c = m.get("centre", np.zeros(2))
        # sub-frames of longer exposures at ss_blur (their average smooths far more than a
        # bilinear warp's phase); targets and short exposures at the full ss
        low = np.zeros(len(p), bool)
        if cfg.ss_blur and cfg.ss_blur < cfg.ss:
            pos = 0
            for n in counts:
                low[pos : pos + n] = n >= 4
                pos += n
        lin = torch.empty((len(p), 3, self.h, self.w), device=self.device)
        for mask, s in ((~low, cfg.ss), (low, cfg.ss_blur)):
            if mask.any():
                idx = np.flatnonzero(mask)
                lin[torch.as_tensor(idx, device=self.device)] = self._views(
                    photo, (p[idx], th[idx], z[idx]), k, centre, rot_c, obj, None if q is None else q[idx], ss=s)
        target = lin[len(tall):].clamp(0, 1).pow(1 / GAMMA) * 255
        target = target if all_targets else target[0]
        frames, pos = [], 0
        for n in counts:
            sub = lin[pos : pos + n]
            pos += n
            if gamma_avg:
                f = sub.clamp(0, 1).pow(1 / GAMMA).mean(0)
            else:
                f = sub.mean(0).clamp(0, 1).pow(1 / GAMMA)
            frames.append(f)
        x = torch.stack(frames)
        if rng.random() < cfg.p_defocus:
            sigma = rng.uniform(0.3, 1.2)
            x = _gaussian(x.pow(GAMMA), sigma).clamp(0, 1).pow(1 / GAMMA)
            if info is not None:
                info["defocus"] = sigma
        elif info is not None:
            info["defocus"] = 0.0
        x = torch.round(x * 255)
        target = torch.round(target)
        return x, target, x[cfg.current].clone()

    def sample(self, rng: np.random.Generator, batch: int, crop: int | None = None) -> dict[str, torch.Tensor]:
        """A batch (``crop`` must equal the configured crop; it is there for ``Pairs``' signature)."""
        cfg = self.cfg
        if crop is not None and crop != cfg.crop:
            raise ValueError(f"OnlineDegrader: crop {crop} != configured {cfg.crop}")
        gen = torch.Generator(device=self.device)
        gen.manual_seed(int(rng.integers(2**62)))
        xs, ys, cs = [], [], []
        for _ in range(batch):
            x, y, c = self.sample_one(rng)
            xs.append(sensor_and_codec(x, *draw_sensor_and_codec(cfg, rng), gen))
            ys.append(y)
            cs.append(c)
        out = {"x": torch.stack(xs) / 255, "y": torch.stack(ys) / 255}
        if cfg.noise:
            out["clean"] = torch.stack(cs) / 255
        self.pool.refresh(rng)
        return out


def draw_sensor_and_codec(cfg: "DegradeConfig", rng: np.random.Generator) -> tuple[tuple | None, int | None]:
    """A sample's noise level (a ``cfg.noise`` entry: None = clean) and JPEG quality (None: not
    compressed, probability 1 - ``cfg.p_jpeg``), drawn in that order."""
    level = cfg.noise[int(rng.integers(len(cfg.noise)))] if cfg.noise else None
    q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)) if rng.random() < cfg.p_jpeg else None
    return level, q


def sensor_and_codec(x: torch.Tensor, level: tuple | None, quality: int | None,
                     gen: torch.Generator) -> torch.Tensor:
    """Frames (0-255) after R2-D4's Poisson-Gaussian noise at ``level`` and then JPEG at
    ``quality``, as :func:`draw_sensor_and_codec` drew them (None: that step is skipped)."""
    if level is not None:
        x = poisson_gaussian_torch(x, *level, gen)
    return jpeg(x, quality) if quality is not None else x


def _gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, int(math.ceil(3 * sigma)))
    k = torch.exp(-((torch.arange(-r, r + 1, dtype=torch.float32, device=x.device)) ** 2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[-3]
    flat = x.reshape(-1, c, *x.shape[-2:])
    flat = F.pad(flat, (r, r, r, r), mode="reflect")
    flat = F.conv2d(flat, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    flat = F.conv2d(flat, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return flat.view(x.shape)


def poisson_gaussian_torch(y: torch.Tensor, alpha: float, sigma: float,
                           gen: torch.Generator | None = None) -> torch.Tensor:
    """R2-D4 Eq. 1 on a 0-255 tensor, as ``degrade.poisson_gaussian``: x = alpha * Poisson(y /
    alpha) + N(0, sigma^2), rounded and clipped to 0-255."""
    if alpha <= 0 or sigma < 0:
        raise ValueError("poisson_gaussian: need alpha > 0 and sigma >= 0")
    shot = torch.poisson(y.float() / alpha, generator=gen) * alpha
    read = torch.randn(y.shape, generator=gen, device=y.device, dtype=torch.float32) * sigma
    return torch.clamp(torch.round(shot + read), 0, 255)


def jpeg(frames: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG-compress each of [T, 3, h, w] (0-255) through OpenCV at ``quality`` (4:2:0)."""
    out = []
    for f in frames:
        img = f.permute(1, 2, 0).to("cpu", torch.uint8).numpy()
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1] if ok else img
        out.append(torch.from_numpy(np.ascontiguousarray(dec)).permute(2, 0, 1))
    return torch.stack(out).to(frames.device, torch.float32)


#: The frame selector's labels (issue 14), from the current frame's blur over its exposure in output
#: (analysis-scale) pixels. Blurred from ``BLURRED_PX``: the hard clips' mild blur (2-4 px) counts as
#: blurred, and 2 px is where a motion blur takes the finest detail along its direction away. Sharp up
#: to ``SHARP_PX``: sub-pixel motion, no more than the softening of a bilinear warp, a codec or the
#: mild defocus every sample may carry. Between them the label is a matter of taste and the sample is
#: left out of the loss (``-1``).
SHARP_PX, BLURRED_PX = 0.7, 2.0


def blur_label(camera_px: float, object_px: float = 0.0) -> int:
    """1 (blurred), 0 (sharp) or -1 (ambiguous) for a frame whose camera path over the exposure is
    ``camera_px`` and whose moving object (a part of the frame) travels ``object_px``: a blurred
    camera blurs the frame; a sharp camera with an object that is not sharp is a partly blurred
    frame (REBVIDS' partial blur), whose whole-frame label is ambiguous."""
    if camera_px >= BLURRED_PX:
        return 1
    if camera_px <= SHARP_PX:
        return 0 if object_px <= SHARP_PX else -1
    return -1


class LabelledFrames:
    """Single frames for training the frame selector (fsm): ``sample(rng, batch)`` ->
    ``{"x": [B, 3, h, w] 0-1, "label": [B] (1 blurred, 0 sharp, -1 ambiguous), "blur": [B] camera px}``.

    Each batch has one of ``shapes`` (h, w), drawn per batch: whole-frame-ish views at the
    selector's analysis scale. A frame is the current frame of :class:`OnlineDegrader` (camera
    shake, moving objects, defocus, averaging in linear or gamma light), labelled by
    :func:`blur_label`; then, with probability ``p_contrast``, its contrast is scaled about its mean
    by a factor log-uniform in ``contrast`` (low-contrast footage), then noise and JPEG as
    :meth:`OnlineDegrader.sample` adds them (``cfg.noise``, ``cfg.p_jpeg``)."""

    def __init__(self, pool: PhotoPool, shapes: list[tuple[int, int]], cfg: DegradeConfig,
                 p_contrast: float = 0.3, contrast: tuple[float, float] = (0.2, 1.0)):
        from dataclasses import replace

        if not shapes:
            raise ValueError("LabelledFrames needs at least one shape")
        self.pool, self.cfg = pool, cfg
        self.degraders = [OnlineDegrader(pool, replace(cfg, shape=(int(h), int(w)), frames=1, current=0))
                          for h, w in shapes]
        self.p_contrast, self.contrast = p_contrast, contrast

    def sample(self, rng: np.random.Generator, batch: int, shape: int | None = None,
               pairs: bool = False) -> dict[str, torch.Tensor]:
        """A batch of one shape (``shape``: its index in ``shapes``, else drawn). ``pairs``: the
        batch is ``batch // 2`` pairs (samples 2i, 2i + 1) of one view of one photograph, first
        still (no camera motion) and then under the drawn motion, with the same contrast, noise
        level and JPEG quality: the only difference within a pair is the camera's blur (the
        selector is then trained to rank a shot's frames, as its per-shot rule uses it)."""
        import copy

        cfg = self.cfg
        d = self.degraders[int(rng.integers(len(self.degraders))) if shape is None else shape]
        gen = torch.Generator(device=d.device)
        gen.manual_seed(int(rng.integers(2**62)))
        xs, labels, blur = [], [], []
        for _ in range(batch // 2 if pairs else batch):
            if pairs:
                m = d._motion(rng)
                a = np.random.default_rng(int(rng.integers(2**62)))
                views = [(copy.deepcopy(a), {"static": True, "e": 0.0}), (a, m)]
            else:
                views = [(rng, None)]
            c = math.exp(rng.uniform(math.log(self.contrast[0]), math.log(self.contrast[1]))) \
                if rng.random() < self.p_contrast else 1.0
            level, q = draw_sensor_and_codec(cfg, rng)
            for r, motion in views:
                info: dict = {}
                x, _, _ = d.sample_one(r, motion=motion, info=info)
                if c != 1.0:
                    x = torch.round((x.mean() + c * (x - x.mean())).clamp(0, 255))
                xs.append(sensor_and_codec(x, level, q, gen)[0])
                labels.append(blur_label(info["camera_px"], info["object_px"]))
                blur.append(info["camera_px"])
        self.pool.refresh(rng)
        return {"x": torch.stack(xs) / 255, "label": torch.tensor(labels, dtype=torch.long, device=d.device),
                "blur": torch.tensor(blur, dtype=torch.float32)}


def render_window(degrader: OnlineDegrader, rng: np.random.Generator, sharp: list[bool] | None = None,
                  motion: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One window as uint8 arrays: inputs [T, h, w, 3] before noise and compression and every
    frame's target [T, h, w, 3], for building fixed test sets from the same generator."""
    x, y, _ = degrader.sample_one(rng, sharp=sharp, all_targets=True, motion=motion)
    to = lambda t: t.clamp(0, 255).to("cpu", torch.uint8).movedim(-3, -1).numpy()  # noqa: E731
    return to(x), to(y)


@dataclass
class Photos:
    """The photographs of one split of a photo folder (``--dataset photos``): training pairs are
    made from them on the fly by :class:`OnlineDegrader`."""

    root: str
    split: str
    paths: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, root: str, split: str) -> "Photos":
        return cls(root, split, list_photos(root, split))

    def __len__(self) -> int:
        return len(self.paths)
