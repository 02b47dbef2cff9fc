"""I/O overhead of the pipeline: `ffmpeg` decode+encode alone vs `vdeblur run --method identity
--select none`, same input, same codec settings, in one run, alternating, medians and their ratio.

    python benchmarks/io_overhead.py                 # makes a 720p clip (300 frames) in a temp dir
    python benchmarks/io_overhead.py --input in.mp4 --repeat 5 --preset medium

Also times a bare PyAV transcode loop (the same libx264 build as vdeblur), since the ffmpeg
binary may carry a different x264 build. Target: ratio <= 1.15. Prints one JSON object on stdout.
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


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.decode()[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--io", default="pyav")
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
        t_ff, t_vd, t_bare = [], [], []
        for _ in range(args.repeat):  # alternate, so all see the same machine load
            t_ff.append(timed(ff_cmd))
            t_bare.append(timed(bare_cmd))
            t_vd.append(timed(vd_cmd))
        import av

        with av.open(src) as c:
            n = c.streams.video[0].frames
    m_ff, m_vd, m_bare = statistics.median(t_ff), statistics.median(t_vd), statistics.median(t_bare)
    print(json.dumps({
        "frames": n, "preset": args.preset, "crf": args.crf, "io": args.io,
        "ffmpeg_s": round(m_ff, 3), "vdeblur_s": round(m_vd, 3),
        "ffmpeg_fps": round(n / m_ff, 1), "vdeblur_fps": round(n / m_vd, 1),
        "ratio": round(m_vd / m_ff, 3),
        "bare_pyav_s": round(m_bare, 3), "ratio_to_bare_pyav": round(m_vd / m_bare, 3), "runs_ffmpeg": [round(t, 3) for t in t_ff],
        "runs_vdeblur": [round(t, 3) for t in t_vd], "ffmpeg": ff,
    }))


if __name__ == "__main__":
    main()
