"""Cost of keyframe segments: `vdeblur run` in one pass vs cut into segments (--segment), same
input, same settings, in one run, alternating, medians and their ratio; and the size of OUT.

    python benchmarks/segments_overhead.py                     # a 720p clip, 300 frames, keyframe every 2 s
    python benchmarks/segments_overhead.py --method unsharp --segment 2 --repeat 5

The segmented run does more work: a keyframe scan (demux only), warm-up frames for recurrent
methods, one part file per segment and the join (a packet copy). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

from io_overhead import make_clip  # noqa: E402


def run(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vdeblur", "run", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--method", default="identity")
    ap.add_argument("--segment", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--preset", default="veryfast")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        inp = a.input
        if inp is None:
            inp = os.path.join(d, "in.mp4")
            make_clip(inp, a.frames)  # x264 default: a keyframe every 250 frames at most
            # a keyframe every 2 s, as phone and action cameras write
            import av

            src = inp
            inp = os.path.join(d, "gop.mp4")
            with av.open(src) as c_in, av.open(inp, "w") as c_out:
                v = c_out.add_stream("libx264", rate=30)
                v.width, v.height, v.pix_fmt = 1280, 720, "yuv420p"
                v.options = {"crf": "18", "preset": "veryfast", "g": "60", "keyint_min": "60", "sc_threshold": "0"}
                for f in c_in.decode(video=0):
                    f.pict_type = av.video.frame.PictureType.NONE
                    for p in v.encode(f):
                        c_out.mux(p)
                for p in v.encode():
                    c_out.mux(p)
        common = [inp, "-m", a.method, "--select", "none", "--preset", a.preset, "--force"]
        one = os.path.join(d, "one.mp4")
        seg = os.path.join(d, "seg.mp4")
        t_one, t_seg = [], []
        for _ in range(a.repeat):
            t_one.append(run(common + ["-o", one, "--segment", "0"]))
            t_seg.append(run(common + ["-o", seg, "--segment", str(a.segment)]))
        m1, m2 = statistics.median(t_one), statistics.median(t_seg)
        print(json.dumps({
            "input": a.input or f"synthetic 1280x720, {a.frames} frames, keyframe every 60",
            "method": a.method, "segment_s": a.segment,
            "one_pass_s": round(m1, 3), "segmented_s": round(m2, 3), "ratio": round(m2 / m1, 3),
            "one_pass_runs": [round(t, 3) for t in t_one], "segmented_runs": [round(t, 3) for t in t_seg],
            "size_one_pass": os.path.getsize(one), "size_segmented": os.path.getsize(seg),
        }))


if __name__ == "__main__":
    main()
