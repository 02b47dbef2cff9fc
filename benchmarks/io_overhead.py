"""I/O overhead of the pipeline: `ffmpeg` decode+encode alone vs `vdeblur run --method identity
--select none`, same input, same codec settings, in one run, alternating, medians and their ratio.

    python benchmarks/io_overhead.py                 # makes a 720p clip (300 frames) in a temp dir
    python benchmarks/io_overhead.py --input in.mp4 --repeat 5 --preset medium
    python benchmarks/io_overhead.py --against /tmp/old   # also an older vdeblur (its package dir's parent)

Also times a bare PyAV transcode loop (the same libx264 build as vdeblur, frame threads as the
ffmpeg CLI), since the ffmpeg binary may carry a different x264 build. Each run's CPU time (user +
system, the process and its children) is recorded beside its wall time: on a shared machine the
CPU ratio moves less with the load. Target (issue 15): ratio <= 1.08. Prints one JSON object on
stdout.
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

import numpy as np


def make_clip(path: str, frames: int, width: int = 1280, height: int = 720) -> None:
    """A moving textured 720p clip with AAC audio (x264 crf 18)."""
    import av

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height // 8 + 8, width // 8 + 8, 3), dtype=np.uint8)
    big = np.kron(base, np.ones((8, 8, 1), np.uint8))
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(path, "w") as c:
        v = c.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"crf": "18", "preset": "veryfast"}
        a = c.add_stream("aac", rate=48000)
        a.layout = "stereo"
        for i in range(frames):
            dx, dy = (i * 3) % 64, (i * 2) % 64
            img = big[dy : dy + height, dx : dx + width].copy()
            img[..., 0] = (img[..., 0].astype(np.int32) + ((xx + 4 * i) % 256) // 4).clip(0, 255)
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        samples = int(48000 * frames / 30)
        for s0 in range(0, samples, 1024):
            af = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, s0
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode():
            c.mux(p)


BARE_PYAV = """
import sys, av
src, dst, crf, preset = sys.argv[1:5]
with av.open(src) as i, av.open(dst, "w") as o:
    v = i.streams.video[0]
    v.thread_type = "AUTO"
    a = [o.add_stream_from_template(s) for s in i.streams.audio]
    s = o.add_stream("libx264", rate=v.average_rate)
    s.width, s.height, s.pix_fmt = v.codec_context.width, v.codec_context.height, "yuv420p"
    s.time_base = v.time_base
    s.codec_context.time_base = v.time_base
    s.thread_type = "AUTO"
    s.options = {"crf": crf, "preset": preset}
    amap = {x.index: y for x, y in zip(i.streams.audio, a)}
    for pkt in i.demux():
        if pkt.stream.type == "video":
            for f in pkt.decode():
                f.pict_type = av.video.frame.PictureType.NONE
                for q in s.encode(f):
                    o.mux(q)
        elif pkt.size and pkt.stream.index in amap:
            pkt.stream = amap[pkt.stream.index]
            o.mux(pkt)
    for q in s.encode():
        o.mux(q)
"""


def timed(cmd: list[str], **popen: object) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the command and its children)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err.decode()[-2000:]}")
    return dt, ru.ru_utime + ru.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--io", default="pyav")
    ap.add_argument("--against", metavar="DIR", help="also time the vdeblur package found in DIR (e.g. "
                    "`git archive REV vdeblur | tar -x -C DIR`), in the same rounds: before/after")
    args = ap.parse_args()

    from vdeblur.io.pipe import ffmpeg_exe

    ff = ffmpeg_exe()
    with tempfile.TemporaryDirectory() as tmp:
        src = args.input or os.path.join(tmp, "in.mp4")
        if not args.input:
            make_clip(src, args.frames)
        out_ff, out_vd = os.path.join(tmp, "ff.mp4"), os.path.join(tmp, "vd.mp4")
        ff_cmd = [ff, "-v", "error", "-y", "-i", src, "-map", "0", "-c:v", "libx264", "-crf", str(args.crf),
                  "-preset", args.preset, "-c:a", "copy", out_ff]
        vd_cmd = [sys.executable, "-m", "vdeblur", "run", src, "-o", out_vd, "--force", "--method", "identity",
                  "--select", "none", "--crf", str(args.crf), "--preset", args.preset, "--io", args.io]
        bare_cmd = [sys.executable, "-c", BARE_PYAV, src, os.path.join(tmp, "bare.mp4"), str(args.crf), args.preset]
        runs: dict[str, list[tuple[float, float]]] = {"ffmpeg": [], "bare_pyav": [], "vdeblur": []}
        if args.against:
            runs["against"] = []
        for _ in range(args.repeat):  # alternate, so all see the same machine load
            runs["ffmpeg"].append(timed(ff_cmd))
            runs["bare_pyav"].append(timed(bare_cmd))
            runs["vdeblur"].append(timed(vd_cmd))
            if args.against:
                env = {**os.environ, "PYTHONPATH": os.path.abspath(args.against)}
                runs["against"].append(timed(vd_cmd, env=env, cwd=args.against))
        import av

        with av.open(src) as c:
            n = c.streams.video[0].frames
    wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
    print(json.dumps({
        "frames": n, "preset": args.preset, "crf": args.crf, "io": args.io,
        "ffmpeg_s": round(wall["ffmpeg"], 3), "vdeblur_s": round(wall["vdeblur"], 3),
        "ffmpeg_fps": round(n / wall["ffmpeg"], 1), "vdeblur_fps": round(n / wall["vdeblur"], 1),
        "ratio": round(wall["vdeblur"] / wall["ffmpeg"], 3),
        "bare_pyav_s": round(wall["bare_pyav"], 3), "ratio_to_bare_pyav": round(wall["vdeblur"] / wall["bare_pyav"], 3),
        "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
        "cpu_ratio": round(cpu["vdeblur"] / cpu["ffmpeg"], 3),
        "cpu_ratio_to_bare_pyav": round(cpu["vdeblur"] / cpu["bare_pyav"], 3),
        "runs_ffmpeg": [round(w, 3) for w, _ in runs["ffmpeg"]],
        "runs_vdeblur": [round(w, 3) for w, _ in runs["vdeblur"]], "ffmpeg": ff,
        **({"against": os.path.abspath(args.against), "against_s": round(wall["against"], 3),
            "against_ratio": round(wall["against"] / wall["ffmpeg"], 3),
            "cpu_ratio_against": round(cpu["against"] / cpu["ffmpeg"], 3)} if args.against else {}),
    }))


if __name__ == "__main__":
    main()
