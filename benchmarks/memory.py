"""Streaming check: peak memory of `vdeblur run` must not grow with the length of the video.

    python benchmarks/memory.py [--frames 150] [--method unsharp] [--segment 2]

Runs the same clip content at N and 4N frames (640x360) and prints the peak RSS of each run (one
child process each) and their ratio as one JSON object. A ratio near 1.0 means streaming.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--method", default="unsharp")
    ap.add_argument("--segment", type=float, help="passed to `vdeblur run --segment` (keyframe segments)")
    a = ap.parse_args()
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
