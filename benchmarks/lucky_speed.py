"""Speed of ``--method lucky`` per blurred 1280x720 frame, and where the time goes.

    python benchmarks/lucky_speed.py [--size 1280x720] [--frames 12] [--seed 3] [--threads 2]

A clip of the test scenes (tests/motion_media.py: camera pan and shake over a held-out photograph,
a parallax layer, a moving object, partly blurred as REBVIDS is) is rendered; every frame it made
blurred that has a sharp neighbour within the radius is restored by lucky from the frames its
labels pick, and, side by side in the same loop (alternating which goes first), by ``unsharp``
through the engine's Restorer, the cheapest single-frame method, as a yardstick for the machine's
load. Printed: the median milliseconds per blurred frame of each and their ratio, lucky's time per
stage (flow, warp, blur estimate, trust test, blend, ...; means per frame), the PSNR gain over
the input (against the clip's true frames), and the load average before and after. On a machine
loaded by other work the wall time is inflated; the CPU time of lucky's calls (process_time, all
threads) is printed beside it, and with ``--threads 1`` it approximates an unloaded core's wall
time. ``--against FILE``: another version of vdeblur/methods/lucky.py (e.g. ``git show
HEAD~1:vdeblur/methods/lucky.py > /tmp/old.py``) runs in the same loop too; printed: its median and
the ratio new / old, the fair comparison on a loaded machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="OpenCV and torch threads")
    ap.add_argument("--against", help="another lucky.py to time side by side (old vs new)")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.lower().split("x"))

    import cv2
    import torch

    cv2.setNumThreads(a.threads)
    torch.set_num_threads(a.threads)
    from motion_media import make_clip, psnr

    from vdeblur.engine.restorer import Restorer
    from vdeblur.methods.registry import create

    load0 = os.getloadavg()
    t0 = time.perf_counter()
    clip = make_clip(a.frames, (w, h), seed=a.seed)
    print(f"rendered {a.frames} frames of {w}x{h} in {time.perf_counter() - t0:.1f} s; "
          f"{sum(clip.blurred)} blurred", flush=True)
    labels = dict(enumerate(clip.blurred))
    lucky = create("lucky")
    unsharp = Restorer(create("unsharp"), torch.device("cpu"))
    other = None
    if a.against:
        import importlib.util
        from unittest import mock

        spec = importlib.util.spec_from_file_location("lucky_against", a.against)
        mod = importlib.util.module_from_spec(spec)
        with mock.patch("vdeblur.methods.registry.register_method", lambda *_, **__: (lambda f: f)):
            spec.loader.exec_module(mod)  # not registered: "lucky" is
        other = mod.Lucky()
    t_lucky, t_unsharp, cpu_lucky, gains, used, t_other, gains_other = [], [], [], [], [], [], []
    for k, t in enumerate(i for i, b in enumerate(clip.blurred) if b):
        picked = lucky.pick(t, labels)
        if not picked:
            continue
        frame, nb = clip.frames[t], [clip.frames[i] for i in picked]

        def run_lucky() -> np.ndarray:
            s, c = time.perf_counter(), time.process_time()
            out = lucky.restore_frame(frame, nb)
            t_lucky.append(time.perf_counter() - s)
            cpu_lucky.append(time.process_time() - c)
            return out

        def run_unsharp() -> None:
            s = time.perf_counter()
            unsharp.restore([[frame]])
            t_unsharp.append(time.perf_counter() - s)

        def run_other() -> None:
            if other is not None:
                s = time.perf_counter()
                o = other.restore_frame(frame, nb)
                t_other.append(time.perf_counter() - s)
                gains_other.append(psnr(o, clip.references[t]) - psnr(frame, clip.references[t]))

        if k % 2:
            run_unsharp()
            run_other()
            out = run_lucky()
        else:
            out = run_lucky()
            run_other()
            run_unsharp()
        used.append(len(nb))
        gains.append(psnr(out, clip.references[t]) - psnr(frame, clip.references[t]))
    if not t_lucky:
        sys.exit("no blurred frame with a sharp neighbour: use more --frames")
    n = len(t_lucky)
    ml, mu = statistics.median(t_lucky) * 1000, statistics.median(t_unsharp) * 1000
    print(f"lucky:   median {ml:.0f} ms per blurred {w}x{h} frame ({n} frames, {np.mean(used):.1f} sharp neighbours each); "
          f"CPU time {statistics.median(cpu_lucky) * 1000:.0f} ms (all threads; less sensitive to other load)")
    print(f"unsharp: median {mu:.0f} ms per frame, same frames, same loop; lucky / unsharp = {ml / mu:.1f}")
    if t_other:
        mo = statistics.median(t_other) * 1000
        print(f"against {a.against}: median {mo:.0f} ms per frame, same frames, same loop; new / old = {ml / mo:.2f}; "
              f"its PSNR gain mean {np.mean(gains_other):+.2f} dB, min {min(gains_other):+.2f} dB")
    total = sum(lucky.timer.seconds.values())
    print("lucky's time per stage (mean ms per frame, share):")
    for stage, sec in sorted(lucky.timer.seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:14s} {sec * 1000 / n:7.1f} ms  {100 * sec / total:5.1f} %")
    print(f"PSNR gain over the input: mean {np.mean(gains):+.2f} dB, min {min(gains):+.2f} dB")
    print(f"load average (1 min) before {load0[0]:.1f}, after {os.getloadavg()[0]:.1f}; "
          f"{os.cpu_count()} CPUs; threads {a.threads}")


if __name__ == "__main__":
    main()
