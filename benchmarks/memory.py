"""Streaming check: peak memory of `vdeblur run` must not grow with the length of the video.

    python benchmarks/memory.py [--frames 150] [--method unsharp] [--segment 2]

Runs the same clip content at N and 4N frames (640x360) and prints the peak RSS of each run (one
child process each) and their ratio as one JSON object. A ratio near 1.0 means streaming.

    python benchmarks/memory.py --large 4000 [--max-memory 1G] [--large-frames 2]

Large frames instead: a LARGE x LARGE lossless clip (ffv1), restored with every frame selected,
once with the default memory budget and once with --max-memory; prints both peak RSS figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from io_overhead import make_clip  # noqa: E402

PEAK = "import resource, runpy, sys; sys.argv = ['vdeblur'] + sys.argv[1:]\n" \
       "try:\n    runpy.run_module('vdeblur', run_name='__main__')\n" \
       "finally:\n    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"


def peak_rss_mb(args: list[str]) -> float:
    p = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True)
    if p.returncode not in (0,):
        sys.exit(p.stderr[-2000:])
    return int(p.stderr.strip().splitlines()[-1]) / 1024


def make_large(path: str, side: int, frames: int) -> None:
    """A smooth moving pattern, ffv1 in Matroska (no level limits on the frame size)."""
    import av
    import numpy as np

    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    with av.open(path, "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width = s.height = side
        s.pix_fmt = "yuv420p"
        for i in range(frames):
            r = 127.5 + 127.5 * np.sin((x + 7 * i) / 23.0)
            g = 127.5 + 127.5 * np.cos((y - 5 * i) / 31.0)
            b = ((x // 64 + y // 64 + i) % 2) * 200.0 + 20
            img = np.stack([r, g, b], -1).astype(np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def large(a: argparse.Namespace) -> None:
    out = {"method": a.method, "size": f"{a.large}x{a.large}", "frames": a.large_frames}
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "big.mkv")
        make_large(src, a.large, a.large_frames)
        base = ["run", src, "-o", os.path.join(tmp, "o.mkv"), "--force", "--method", a.method, "--select", "none",
                "--codec", "ffv1", "--device", "cpu"]
        out["peak_mb_default"] = round(peak_rss_mb(base), 1)
        out[f"peak_mb_max_memory_{a.max_memory}"] = round(peak_rss_mb(base + ["--max-memory", a.max_memory]), 1)
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--method", default="unsharp")
    ap.add_argument("--segment", type=float, help="passed to `vdeblur run --segment` (keyframe segments)")
    ap.add_argument("--large", type=int, help="side of square frames: measure large frames instead")
    ap.add_argument("--large-frames", type=int, default=2)
    ap.add_argument("--max-memory", default="1G")
    a = ap.parse_args()
    if a.large:
        return large(a)
    out = {"method": a.method, "segment": a.segment}
    extra = ["--segment", str(a.segment)] if a.segment is not None else []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (a.frames, 4 * a.frames):
            src = os.path.join(tmp, f"in{n}.mp4")
            make_clip(src, n, 640, 360)
            out[f"peak_mb_{n}"] = round(peak_rss_mb(["run", src, "-o", os.path.join(tmp, f"o{n}.mp4"), "--method",
                                                     a.method, "--select", "none", "--preset", "ultrafast", *extra]), 1)
    out["ratio"] = round(out[f"peak_mb_{4 * a.frames}"] / out[f"peak_mb_{a.frames}"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
