"""A held-out test set like users' footage, from the held-out (test) photographs (issue 11).

    python benchmarks/make_testset.py PHOTOS OUT [--seqs 2] [--frames 10] [--size 320x192] [--seed 0]

PHOTOS is a ``benchmarks/gather_photos.py`` folder (its ``test/`` photographs, never trained on).
Each clip is rendered by the training generator (``vdeblur/data/online.py``: camera shake with
pan, tremor, roll and zoom, a moving object in a share of clips, exposures averaged in linear
light or in gamma-encoded values, sharp targets at each exposure's mean pose, 4x supersampled),
then H.264-compressed through PyAV (libx264, CRF 23, yuv420p, BT.601 limited range, exact
colour conversion of ``vdeblur.io.colour``) and decoded back: the inputs are what a user's
decoder gives. Targets are the uncompressed renders. Layout: ``vdeblur bench --dataset synth``
trees (``ROOT/test/<seq>/{blur,sharp[,noisy]}/000000.png``):

* ``OUT/blurred``: every frame blurred (blur over an exposure log-uniform 2-20 px): the gain on
  blurred frames.
* ``OUT/sharp``: the same kind of clips with instantaneous exposures (moving camera, no blur):
  what a method does to sharp content (it should leave it alone).
* ``OUT/partial``: partially blurred clips as REBVIDS: runs of blurred frames between sharp ones.
* ``OUT/noisy-{low,moderate,severe}``: the blurred clips with R2-D4's Poisson-Gaussian noise
  (Eq. 1) added before compression, in ``noisy/`` (``vdeblur bench --noisy``); ``blur/`` holds
  the compressed clean clip.

Deterministic for a seed (the encoder runs single-threaded).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from vdeblur.data.degrade import NOISE_PRESETS, poisson_gaussian
from vdeblur.data.online import DegradeConfig, OnlineDegrader, PhotoPool, list_photos, render_window
from vdeblur.io.colour import ColourSpec, encode_frame, frame_to_rgb

SPEC = ColourSpec(5, False)  # BT.601, limited range


def h264(frames: list[np.ndarray], crf: int = 23) -> list[np.ndarray]:
    """Encode RGB uint8 frames with libx264 (CRF ``crf``, yuv420p) in memory and decode them back."""
    import io

    buf = io.BytesIO()
    h, w = frames[0].shape[:2]
    with av.open(buf, "w", format="matroska") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.options = {"crf": str(crf), "preset": "medium", "threads": "1"}
        s.codec_context.time_base = Fraction(1, 25)
        s.codec_context.colorspace = 5
        s.codec_context.color_range = 1
        for i, f in enumerate(frames):
            vf = encode_frame("yuv420p", SPEC, restored=f)
            vf.pts = i
            vf.time_base = Fraction(1, 25)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    buf.seek(0)
    with av.open(buf) as c:
        out = [frame_to_rgb(vf, SPEC) for vf in c.decode(video=0)]
    if len(out) != len(frames):
        raise RuntimeError(f"h264 round trip gave {len(out)} of {len(frames)} frames")
    return out


def write(root: Path, seq: str, kind: str, frames: list[np.ndarray]) -> None:
    d = root / "test" / seq / kind
    d.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(d / f"{i:06d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))


def partial_plan(n: int, rng: np.random.Generator) -> list[bool]:
    """True = sharp: runs of 2-4 sharp frames between runs of 2-5 blurred ones (REBVIDS-like)."""
    out: list[bool] = []
    sharp = bool(rng.random() < 0.5)
    while len(out) < n:
        out += [sharp] * int(rng.integers(2, 5) if sharp else rng.integers(2, 6))
        sharp = not sharp
    return out[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos")
    ap.add_argument("out")
    ap.add_argument("--seqs", type=int, default=2, help="clips per photograph and kind")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--size", default="320x192")
    ap.add_argument("--crf", type=int, default=23)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    w, h = (int(v) for v in a.size.split("x"))
    paths = list_photos(a.photos, "test")
    if not os.path.isdir(os.path.join(a.photos, "test")):
        sys.exit(f"{a.photos} has no test/ folder: make it with benchmarks/gather_photos.py")
    out = Path(a.out)
    cfg = DegradeConfig(shape=(h, w), frames=a.frames, current=a.frames // 2, ss=4, max_blur=20.0,
                        max_speed=20.0, scale=(0.6, 0.9), p_static=0.0, p_object=0.3, p_defocus=0.0,
                        p_sharp_frame=0.0)
    manifest = []
    for pi, path in enumerate(paths):
        pool = PhotoPool([path], size=1)
        deg = OnlineDegrader(pool, cfg)
        name = Path(path).stem.split("-", 1)[-1][-40:]
        for kind in ("blurred", "sharp", "partial"):
            for s in range(a.seqs):
                rng = np.random.default_rng([a.seed, pi, s, ("blurred", "sharp", "partial").index(kind)])
                m = None
                if kind == "blurred":
                    while True:  # at least 2 px of blur on the target's exposure
                        m = deg._motion(rng)
                        if not m["static"] and deg._path_px(m, 0.0, m["e"]) >= 2.0:
                            break
                    plan = [False] * a.frames
                else:
                    plan = [True] * a.frames if kind == "sharp" else partial_plan(a.frames, rng)
                x, y = render_window(deg, rng, sharp=plan, motion=m)
                seq = f"{pi:02d}-{name}-{s}"
                comp = h264(list(x), a.crf)
                write(out / kind, seq, "blur", comp)
                write(out / kind, seq, "sharp", list(y))
                manifest.append({"tree": kind, "seq": seq, "photo": path, "sharp_frames": plan})
                if kind == "blurred" and s == 0:
                    for level, (alpha, sigma) in NOISE_PRESETS.items():
                        nrng = np.random.default_rng([a.seed, pi, s, 7, list(NOISE_PRESETS).index(level)])
                        noisy = h264([poisson_gaussian(f, alpha, sigma, nrng) for f in x], a.crf)
                        write(out / f"noisy-{level}", seq, "blur", comp)
                        write(out / f"noisy-{level}", seq, "sharp", list(y))
                        write(out / f"noisy-{level}", seq, "noisy", noisy)
        print(f"{pi + 1}/{len(paths)} {name}", file=sys.stderr)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"wrote {len(manifest)} clips of {a.frames} frames ({w}x{h}) to {out}")


if __name__ == "__main__":
    main()
