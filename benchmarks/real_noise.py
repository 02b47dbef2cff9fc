"""r2d4 (or any method) on real footage with R2-D4's noise added: opencv-doc's street scene.

    python benchmarks/real_noise.py VTEST.avi [--method r2d4] [-p variant=tiny] [--frames 24] [--skip 100]

VTEST.avi: ``examples/data/vtest.avi`` of Debian's opencv-doc (``apt-get download opencv-doc``,
``dpkg -x``). Frames SKIP.. SKIP+FRAMES are written losslessly (H.264 qp 0, 4:4:4) as the clean
reference and, with the Poisson-Gaussian noise of ``vdeblur.data.degrade.NOISE_PRESETS`` (R2-D4
Eq. 1; seed 1), as one noisy clip per level; each noisy clip is run through ``vdeblur run
--method M --select none --reference CLEAN --json``. Prints, per level, the PSNR of the input
and of the output against the clean frames. ``VDEBLUR_WEIGHTS_TOML`` picks other weights.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import av
import numpy as np

from vdeblur.data.degrade import NOISE_PRESETS, poisson_gaussian


def write(path: str, frames: list[np.ndarray]) -> None:
    with av.open(path, "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt, s.options = frames[0].shape[1], frames[0].shape[0], "yuv444p", {"qp": "0"}
        for a in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("video")
    ap.add_argument("--method", default="r2d4")
    ap.add_argument("-p", "--param", action="append", default=[], help="KEY=VALUE, passed to vdeblur run")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--skip", type=int, default=100)
    a = ap.parse_args()
    frames = []
    with av.open(a.video) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= a.skip:
                frames.append(f.to_ndarray(format="rgb24"))
            if len(frames) == a.frames:
                break
    with tempfile.TemporaryDirectory() as d:
        clean = os.path.join(d, "clean.mkv")
        write(clean, frames)
        for level, (alpha, sigma) in NOISE_PRESETS.items():
            rng = np.random.default_rng(1)
            noisy = os.path.join(d, f"{level}.mkv")
            write(noisy, [poisson_gaussian(x, alpha, sigma, rng) for x in frames])
            out = subprocess.run([sys.executable, "-m", "vdeblur", "run", noisy, "-o", os.path.join(d, "o.mkv"),
                                  "--force", "--method", a.method, "--select", "none", "--reference", clean,
                                  "--json", *[x for kv in a.param for x in ("-p", kv)]],
                                 capture_output=True, text=True, check=True).stdout
            summary = json.loads(out.strip().splitlines()[-1])["summary"]
            name = " ".join([a.method, *a.param])
            print(f"{level:9s} input {summary['psnr_input']:.2f} dB -> {name} {summary['psnr']:.2f} dB "
                  f"({summary['psnr'] - summary['psnr_input']:+.2f})", flush=True)


if __name__ == "__main__":
    main()
