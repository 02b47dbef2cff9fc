"""What `--reference` (PSNR/SSIM of every frame against a sharp reference) adds to a run:
`vdeblur run --method unsharp --select none` on a 720p clip, with and without `--reference`,
alternating, in one run; medians of wall and CPU (user + sys) seconds, and their ratios.

    python benchmarks/reference_overhead.py                  # 60 frames of 1280x720, 3 repeats
    python benchmarks/reference_overhead.py --frames 120 --repeat 5 --select laplacian

`--select none` restores every frame, so each frame costs two metric evaluations (input vs
reference, output vs reference). The reference is the same content at another quality (libx264
crf 30), so the figures are finite. Target: wall ratio <= 1.10. Prints one JSON object on stdout.

    python benchmarks/reference_overhead.py --profile        # where the overhead goes, per frame

`--profile` runs no `vdeblur` child: in this process it decodes the clip and the reference and
times, per 720p frame (medians; wall and this process's CPU time), the reference's decode, its RGB
conversion, PSNR and SSIM of one pair, and the whole `ReferenceMetrics.compare` with an output
(two comparisons) and without (a passed-through frame).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from io_overhead import make_clip  # noqa: E402


def transcode(src: str, dst: str, crf: int) -> None:
    import av

    with av.open(src) as i, av.open(dst, "w") as o:
        v = i.streams.video[0]
        s = o.add_stream("libx264", rate=v.average_rate)
        s.width, s.height, s.pix_fmt = v.codec_context.width, v.codec_context.height, "yuv420p"
        s.options = {"crf": str(crf), "preset": "veryfast"}
        for f in i.decode(v):
            f.pict_type = av.video.frame.PictureType.NONE
            f.pts = None
            for p in s.encode(f):
                o.mux(p)
        for p in s.encode():
            o.mux(p)


def timed(args: list[str]) -> tuple[float, float]:
    """(wall, CPU = user + sys) seconds of one `vdeblur` child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "vdeblur", *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(p.stderr[-2000:])
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def profile(src: str, ref: str, frames: int) -> dict:
    """Per-frame wall and CPU milliseconds (medians) of each piece of the --reference work."""
    import cv2

    from vdeblur.io.reader import Frame, VideoReader
    from vdeblur.metrics import ReferenceMetrics, psnr, ssim

    cost: dict[str, list[tuple[float, float]]] = {}

    def note(key: str, t0: tuple[float, float]) -> None:
        w, c = _clock()
        cost.setdefault(key, []).append(((w - t0[0]) * 1e3, (c - t0[1]) * 1e3))

    m = ReferenceMetrics("cpu")
    with VideoReader(src, copy_streams=False) as ri, VideoReader(ref, copy_streams=False) as rr:
        inputs = [f.rgb() for f in ri.items() if isinstance(f, Frame)]
        t = _clock()  # the decoder runs on its own threads: timed over the whole clip
        refs = [f for f in rr.items() if isinstance(f, Frame)]
        w, c = _clock()
        cost["ref_decode"] = [((w - t[0]) * 1e3 / len(refs), (c - t[1]) * 1e3 / len(refs))]
        for inp, f in zip(inputs, refs):
            t = _clock()
            r = f.rgb()
            note("ref_rgb", t)
            out = cv2.addWeighted(inp, 2.0, cv2.GaussianBlur(inp, (0, 0), 2.0), -1.0, 0)  # an unsharp output
            t = _clock()
            psnr(inp, r)
            note("psnr_pair", t)
            t = _clock()
            ssim(inp, r)
            note("ssim_pair", t)
            t = _clock()
            m.compare(inp, out, r)
            note("compare_with_out", t)
            t = _clock()
            m.compare(inp, None, r)
            note("compare_passthrough", t)
    med = {k: {"wall_ms": round(statistics.median(w for w, _ in v), 2),
               "cpu_ms": round(statistics.median(c for _, c in v), 2)} for k, v in cost.items()}
    return {"frames": len(cost["ref_rgb"]), "size": "1280x720", "cpus": len(os.sched_getaffinity(0)),
            "load_avg_1m": round(os.getloadavg()[0], 2), "per_frame": med}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--method", default="unsharp")
    ap.add_argument("--select", default="none")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--profile", action="store_true", help="per-frame cost of each piece, in this process")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, ref = os.path.join(tmp, "in.mp4"), os.path.join(tmp, "ref.mp4")
        make_clip(src, a.frames)
        transcode(src, ref, 30)
        if a.profile:
            print(json.dumps(profile(src, ref, a.frames)))
            return
        base = ["run", src, "-o", os.path.join(tmp, "out.mp4"), "--force", "--method", a.method,
                "--select", a.select, "--device", a.device]
        runs: dict[str, list[tuple[float, float]]] = {"plain": [], "reference": []}
        for _ in range(a.repeat):
            runs["plain"].append(timed(base))
            runs["reference"].append(timed(base + ["--reference", ref]))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
    out = {
        "frames": a.frames, "size": "1280x720", "method": a.method, "select": a.select, "device": a.device,
        "repeat": a.repeat, "cpus": len(os.sched_getaffinity(0)), "load_avg_1m": round(os.getloadavg()[0], 2),
        "wall_s": {k: round(v[0], 2) for k, v in med.items()},
        "cpu_s": {k: round(v[1], 2) for k, v in med.items()},
        "wall_ratio": round(med["reference"][0] / med["plain"][0], 3),
        "cpu_ratio": round(med["reference"][1] / med["plain"][1], 3),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
