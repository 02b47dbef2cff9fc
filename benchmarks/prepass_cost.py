"""What the whole-file pre-pass costs beside a `--method unsharp` run (issue 14): at most 15 %.

    python benchmarks/prepass_cost.py [--size 1280x720] [--frames 90] [--rounds 5] [--select fsm]

One 720p H.264 clip (tests/selector_media.py's recipe: a camera shaking over a photograph, runs of
blurred frames) is made in a temporary folder. Each round, in alternating order, times:
``prepass`` (decode + per-frame features + labels: select/context.py), a `run -m unsharp` that
labels with the whole file in view (pre-pass included) and the same run with the streaming
selector (as for a pipe); ``--select fsm`` times the fsm's pre-pass and runs instead (RGB frames
and the network besides the Laplacian features). Medians over the rounds; the ratios are of medians measured side by side
in one process. Single-threaded torch and OpenCV unless --threads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--select", default="laplacian", choices=("laplacian", "fsm"))
    a = ap.parse_args()
    import cv2
    import torch

    cv2.setNumThreads(a.threads)
    torch.set_num_threads(a.threads)
    import vdeblur.jobs.span as span
    from vdeblur.jobs import RunOptions, run_file
    from selector_media import make_clip, write_clip
    from vdeblur.select.context import prepass

    w, h = (int(v) for v in a.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip("crf28", n=a.frames, size=(w, h), seed=0)
        clip.options = {"crf": "20", "preset": "veryfast"}
        src = os.path.join(tmp, "in.mp4")
        write_clip(src, clip)
        opts = RunOptions(method="unsharp", select=a.select, force=True, device="cpu")
        real = span.whole_file_context

        restored: dict[bool, int] = {}

        def run(context: bool) -> None:
            span.whole_file_context = real if context else (lambda o, i: False)
            try:
                s = run_file(src, os.path.join(tmp, "out.mp4"), opts)
                restored[context] = s.restored
            finally:
                span.whole_file_context = real

        jobs = {"prepass": lambda: prepass(src, select=a.select), "run (whole file)": lambda: run(True),
                "run (streaming)": lambda: run(False)}
        times: dict[str, list[float]] = {k: [] for k in jobs}
        run(True)  # warm-up: imports, caches
        for r in range(a.rounds):
            order = list(jobs) if r % 2 == 0 else list(jobs)[::-1]
            for k in order:
                t0 = time.perf_counter()
                jobs[k]()
                times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"--select {a.select}: {a.frames} frames {w}x{h}, {a.rounds} rounds, medians:")
    for k, v in med.items():
        print(f"  {k:18s} {v:7.2f} s  {a.frames / v:7.1f} fps")
    print(f"frames restored: whole file {restored[True]}, streaming {restored[False]} (truth: {sum(clip.blurred)})")
    print(f"prepass / streaming unsharp run:            {med['prepass'] / med['run (streaming)']:.3f}  (target <= 0.15)")
    print(f"whole-file run / streaming run - 1:         {med['run (whole file)'] / med['run (streaming)'] - 1:+.3f}")


if __name__ == "__main__":
    main()
