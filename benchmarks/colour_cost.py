"""Cost of exact colour (vdeblur/io/colour.py) against swscale's default conversion, per frame.

Times, side by side in one run, alternating, medians over --repeat rounds:

* YUV -> RGB: ``frame_to_rgb`` vs ``VideoFrame.to_ndarray(format="rgb24")``
* RGB -> YUV of a restored frame: ``encode_frame`` vs ``from_ndarray(...).reformat(...)``
* for scale, the cheapest method (``unsharp``) restoring the same frame on the CPU

    python benchmarks/colour_cost.py                       # 1920x1080 yuv420p 8-bit
    python benchmarks/colour_cost.py --size 1280x720 --pix-fmt yuv420p10le --repeat 30
    python benchmarks/colour_cost.py --peak-rss 4000      # memory: whole frame vs bands of rows

Threads: numpy runs on one core; swscale's reformat threads are left at PyAV's default unless
--sws-threads is given. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import av
import numpy as np

from vdeblur.io.colour import encode_frame, frame_to_rgb, spec_for


def peak_rss(side: int, mode: str) -> dict:
    """Peak RSS (MB) that converting one SIDExSIDE 4:2:0 frame to RGB adds, in a fresh process:
    ``whole`` (one band) or ``bands`` (the default band size)."""
    import subprocess
    import sys

    code = f"""
import resource, numpy as np, av, json
import vdeblur.io.colour as C
if {mode!r} == "whole":
    C.BAND_PIXELS = 1 << 40
img = np.random.default_rng(0).integers(0, 256, ({side} // 8, {side} // 8, 3), dtype=np.uint8)
src = av.VideoFrame.from_ndarray(img.repeat(8, 0).repeat(8, 1), format="rgb24").reformat(format="yuv420p")
del img
spec = C.ColourSpec(1, False)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rgb = C.frame_to_rgb(src, spec)
print(json.dumps({{"to_rgb_peak_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024,
                  "output_mb": rgb.nbytes // 2**20}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peak-rss", type=int, metavar="SIDE", default=None)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--pix-fmt", default="yuv420p")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--sws-threads", type=int, default=None)
    a = ap.parse_args()
    if a.peak_rss:
        print(json.dumps({"side": a.peak_rss, **{m: peak_rss(a.peak_rss, m) for m in ("whole", "bands")}}))
        return
    w, h = (int(x) for x in a.size.split("x"))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    spec = spec_for(1, 1, w, h, a.pix_fmt)
    src = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24").reformat(
        format=a.pix_fmt, dst_colorspace=spec.colorspace, dst_color_range=1)
    high = "10" in a.pix_fmt
    fmt = "rgb48le" if high else "rgb24"
    rgb = frame_to_rgb(src, spec, high_depth=high)
    restored = rgb.copy()
    restored[::2] = np.clip(restored[::2].astype(np.int32) + 2, 0, 65535 if high else 255).astype(rgb.dtype)

    def t(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1000

    kw = {} if a.sws_threads is None else {"threads": a.sws_threads}
    from vdeblur.engine.device import resolve_device
    from vdeblur.engine.restorer import Restorer
    from vdeblur.methods.registry import create

    restorer = Restorer(create("unsharp"), resolve_device("cpu"), "fp32")
    cases = {
        "to_rgb_exact": lambda: frame_to_rgb(src, spec, high_depth=high),
        "to_rgb_swscale": lambda: src.to_ndarray(format=fmt, **kw),
        "to_yuv_exact": lambda: encode_frame(a.pix_fmt, spec, restored=restored, source=src, source_spec=spec,
                                             source_rgb=rgb),
        "to_yuv_swscale": lambda: av.VideoFrame.from_ndarray(restored, format=fmt).reformat(
            format=a.pix_fmt, dst_colorspace=spec.colorspace, dst_color_range=1, **kw),
    }
    ms: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(a.repeat):
        for k, fn in cases.items():
            ms[k].append(t(fn))
    # the method apart, after: its threads would otherwise still be busy when the conversions run
    ms["unsharp_cpu"] = [t(lambda: restorer.restore([[rgb]], None)) for _ in range(max(3, a.repeat // 3))]
    med = {k: round(statistics.median(v), 2) for k, v in ms.items()}
    print(json.dumps({
        "size": a.size, "pix_fmt": a.pix_fmt, "repeat": a.repeat, "median_ms": med,
        "ratio_to_rgb": round(med["to_rgb_exact"] / med["to_rgb_swscale"], 2),
        "ratio_to_yuv": round(med["to_yuv_exact"] / med["to_yuv_swscale"], 2),
        "round_trip_ms_exact": round(med["to_rgb_exact"] + med["to_yuv_exact"], 1),
        "round_trip_ms_swscale": round(med["to_rgb_swscale"] + med["to_yuv_swscale"], 1),
        "extra_vs_unsharp": round((med["to_rgb_exact"] + med["to_yuv_exact"] - med["to_rgb_swscale"]
                                   - med["to_yuv_swscale"]) / med["unsharp_cpu"], 2),
    }))


if __name__ == "__main__":
    main()
