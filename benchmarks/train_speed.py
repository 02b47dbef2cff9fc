"""Training throughput per net on pairs made on the fly from photographs (issue 11).

    python benchmarks/train_speed.py PHOTOS [--steps 12] [--crop 64] [--batch 8] [--device auto]

For each net of train_all.sh, in one run, side by side: the median over ``--steps`` steps (after
2 warm-up steps) of the time to make a batch (``vdeblur.data.online``: warps, averaging, noise,
JPEG) and of one optimiser step (forward, loss, backward, Adam, EMA), and samples per second of
the two together. Prints one JSON line per net and a table. Run it with OMP_NUM_THREADS=1 to
match the background CPU training (one thread per job).

Measured 2026-11-30 on the 2-core CPU, 1 thread, crop 64, batch 8, beside a background training
job and other work (so absolute figures are low; the ratios hold):

| net    | data s/batch | step s | samples/s |
|--------|--------------|--------|-----------|
| atrous | 0.145        | 0.285  | 18.6      |
| mlfa   | 0.171        | 0.621  | 10.1      |
| srn    | 0.166        | 0.159  | 24.7      |
| golf   | 0.073        | 0.772  | 9.5       |
| r2d4   | 0.256        | 1.773  | 3.9       |

No GPU was lent to that session; on one, run it with ``--device cuda --crop 128 --batch 32``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

NETS = [("atrous", ()), ("mlfa", ()), ("srn", ()), ("golf", ()), ("r2d4", ("none", "low", "moderate", "severe"))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="auto")
    a = ap.parse_args()
    from vdeblur.data.online import Photos
    from vdeblur.engine.device import resolve_device
    from vdeblur.methods.neural import make_untrained
    from vdeblur.train.loop import EMA, TrainConfig, _online, train_step

    device = resolve_device(a.device)
    photos = Photos.open(a.photos, "train")
    rows = []
    for name, noise in NETS:
        cfg = TrainConfig(method=name, noise=noise, crop=a.crop, batch=a.batch, device=str(device))
        method, _ = make_untrained(name, "small")
        method = method.to(device, memory_format=torch.channels_last).train()
        opt = torch.optim.Adam(method.net.parameters(), lr=1e-4)
        ema = EMA(method.net, 0.999)
        data = _online(cfg, photos, method, device, a.crop, 0)
        rng = np.random.default_rng(0)
        t_data, t_step = [], []
        for i in range(a.steps + 2):
            t0 = time.perf_counter()
            b = {k: v.to(device) for k, v in data.sample(rng, a.batch).items()}
            if device.type == "cuda":
                torch.cuda.synchronize()
            t1 = time.perf_counter()
            train_step(method, opt, ema, b, cfg, device)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t2 = time.perf_counter()
            if i >= 2:
                t_data.append(t1 - t0)
                t_step.append(t2 - t1)
        d, s = statistics.median(t_data), statistics.median(t_step)
        row = {"net": name, "device": str(device), "crop": a.crop, "batch": a.batch, "threads": torch.get_num_threads(),
               "data_s": round(d, 4), "step_s": round(s, 4), "samples_per_s": round(a.batch / (d + s), 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n| net | data s/batch | step s | samples/s ({rows[0]['device']}, crop {a.crop}, batch {a.batch}, "
          f"{rows[0]['threads']} thread(s)) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['net']} | {r['data_s']:.3f} | {r['step_s']:.3f} | {r['samples_per_s']:.1f} |")


if __name__ == "__main__":
    main()
