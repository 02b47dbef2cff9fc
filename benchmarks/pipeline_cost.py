"""Where a frame's time goes in a plain CPU run (``--method unsharp --select none``), stage by stage.

The stages of one frame, timed one after the other on the same frames (medians over the clip,
wall and CPU milliseconds; CPU counts every thread of the process: OpenCV's, torch's, x264's):

    decode      PyAV decode (thread_type AUTO), the demuxed packets of the clip
    to_rgb      io/colour.frame_to_rgb: the exact YUV -> RGB
    restore     the engine's Restorer running the method (default unsharp) on the RGB
    to_yuv      io/colour.encode_frame: the restored RGB back onto the decoded samples
    encode      libx264 (--preset, --crf) encoding the frame, as the writer does

("sys": the kernel's share of the CPU time: page faults of freshly allocated buffers, mostly),
and the whole run (``vdeblur run`` in a subprocess, wall and CPU per frame) for comparison: what
the stages do not explain is the pipeline's own cost (queues, threads, Python, start-up). The
whole run is timed --repeat times in each variant, alternating: as it is, with glibc's malloc
left alone (VDEBLUR_MALLOC=default, io/memory.py), and with --against DIR an older vdeblur.

    python benchmarks/pipeline_cost.py                       # makes a 720p clip (60 frames)
    python benchmarks/pipeline_cost.py --input in.mp4 --frames 30 --method unsharp --repeat 3

Prints one JSON object on stdout.
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

import numpy as np


def _clock() -> tuple[float, float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)  # microseconds, where os.times() counts 10 ms ticks
    return time.perf_counter(), r.ru_utime, r.ru_stime


def _run(cmd: list[str], **popen: object) -> tuple[float, float, float]:
    """(wall, user, system) seconds of a command (and its children)."""
    w0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err.decode()[-2000:]}")
    return time.perf_counter() - w0, ru.ru_utime, ru.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--method", default="unsharp")
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--repeat", type=int, default=1, help="whole runs of each variant (0: none)")
    ap.add_argument("--against", metavar="DIR", help="also run the vdeblur package found in DIR")
    ap.add_argument("--malloc", choices=("tuned", "default"), default="tuned",
                    help="the stages with io/memory.py's malloc settings, or glibc's own")
    a = ap.parse_args()

    import av

    from vdeblur.engine.device import resolve_device
    from vdeblur.engine.restorer import Restorer
    from vdeblur.io.colour import encode_frame, frame_to_rgb, spec_for_frame
    from vdeblur.io.memory import keep_frame_buffers
    from vdeblur.methods.registry import create

    if a.malloc == "tuned":
        keep_frame_buffers()

    with tempfile.TemporaryDirectory() as tmp:
        src = a.input
        if not src:
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            from io_overhead import make_clip

            src = os.path.join(tmp, "in.mp4")
            make_clip(src, a.frames)
        restorer = Restorer(create(a.method), resolve_device("cpu"), "fp32")
        ms: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        kernel: dict[str, list[float]] = {}

        def add(name: str, t0: tuple[float, float, float]) -> None:
            w, u, k = _clock()
            ms.setdefault(name, []).append((w - t0[0]) * 1000)
            cpu.setdefault(name, []).append((u - t0[1] + k - t0[2]) * 1000)
            kernel.setdefault(name, []).append((k - t0[2]) * 1000)

        out = av.open(os.path.join(tmp, "out.mp4"), "w")
        n = 0
        with av.open(src) as inp:
            v = inp.streams.video[0]
            v.thread_type = "AUTO"
            s = out.add_stream("libx264", rate=v.average_rate)
            s.width, s.height, s.pix_fmt = v.codec_context.width, v.codec_context.height, v.codec_context.pix_fmt
            s.time_base = v.time_base
            s.thread_type = "AUTO"
            s.options = {"crf": str(a.crf), "preset": a.preset}
            packets = iter(inp.demux(v))
            frames = []
            while n < a.frames:
                t0 = _clock()
                pkt = next(packets, None)
                got = list(pkt.decode()) if pkt is not None else list(v.decode(None))
                if got or pkt is None:
                    add("decode", t0)
                frames += got
                if pkt is None and not frames:
                    break
                while frames and n < a.frames:
                    f = frames.pop(0)
                    spec = spec_for_frame(f)
                    t0 = _clock()
                    rgb = frame_to_rgb(f, spec)
                    add("to_rgb", t0)
                    t0 = _clock()
                    restored = restorer.restore([[rgb]], None)[0][0]
                    add("restore", t0)
                    t0 = _clock()
                    vf = encode_frame(f.format.name, spec, restored=restored, source=f, source_spec=spec,
                                      source_rgb=rgb)
                    add("to_yuv", t0)
                    vf.pts = f.pts
                    t0 = _clock()
                    for p in s.encode(vf):
                        out.mux(p)
                    add("encode", t0)
                    n += 1
                if pkt is None:
                    break
        t0 = _clock()
        for p in s.encode(None):
            out.mux(p)
        out.close()
        add("encode_flush", t0)
        result: dict = {"frames": n, "method": a.method, "preset": a.preset, "malloc": a.malloc}
        for key, d in (("median_ms", ms), ("median_cpu_ms", cpu), ("median_sys_ms", kernel)):
            result[key] = {k: round(statistics.median(v), 1) for k, v in d.items() if k != "encode_flush"}
        # x264 buffers frames (lookahead) and encodes them later: its cost per frame is its total
        result["encode_total_per_frame"] = {"ms": round((sum(ms["encode"]) + ms["encode_flush"][0]) / n, 1),
                                            "cpu_ms": round((sum(cpu["encode"]) + cpu["encode_flush"][0]) / n, 1)}
        cmd = [sys.executable, "-m", "vdeblur", "run", src, "-o", os.path.join(tmp, "run.mp4"), "--force",
               "--method", a.method, "--select", "none", "--crf", str(a.crf), "--preset", a.preset,
               "--frames", str(n)]
        variants = {"run": {}, "run_malloc_default": {"env": {**os.environ, "VDEBLUR_MALLOC": "default"}}}
        if a.against:
            variants["run_against"] = {"env": {**os.environ, "PYTHONPATH": os.path.abspath(a.against)},
                                       "cwd": a.against}
        runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in variants}
        for _ in range(a.repeat):  # alternating, so all see the same machine load
            for k, popen in variants.items():
                runs[k].append(_run(cmd, **popen))
        for k, v in runs.items():
            if v:
                result[k + "_per_frame"] = {
                    "ms": round(statistics.median(w for w, _, _ in v) * 1000 / n, 1),
                    "cpu_ms": round(statistics.median(u + k_ for _, u, k_ in v) * 1000 / n, 1),
                    "sys_ms": round(statistics.median(k_ for _, _, k_ in v) * 1000 / n, 1)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
