"""Milliseconds per 1280x720 frame and peak memory for every method and architecture variant.

    python benchmarks/methods_speed.py                      # CPU, fp32, channels_last
    python benchmarks/methods_speed.py --device cuda --precision fp16 --variants paper,small
    python benchmarks/methods_speed.py --only golf:small,wiener

Each entry runs in its own child process (so its peak RSS / CUDA peak is its own): one warm-up
call, then --repeat timed calls; the median is reported. Architectures run with random weights:
this measures speed, not quality. Prints one JSON object per entry.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

ARCHS = {
    # name: (module, class, variants dict, input kind)
    "golf": ("vdeblur.methods.archs.golf", "Golf", "GOLF_VARIANTS", "image"),
    "srn": ("vdeblur.methods.archs.srn", "SRN", "SRN_VARIANTS", "image"),
    "atrous": ("vdeblur.methods.archs.atrous", "AtrousNet", "ATROUS_VARIANTS", "image"),
    "mlfa": ("vdeblur.methods.archs.mlfa", "MLFA", "MLFA_VARIANTS", "window3"),
    "deblurnet": ("vdeblur.methods.archs.deblurnet", "DeblurNetFDM", "DEBLURNET_VARIANTS", "image"),
    "fsm": ("vdeblur.methods.archs.deblurnet", "DeblurNetFSM", "FSM_VARIANTS", "image"),
    "r2d4": ("vdeblur.methods.archs.r2d4", "R2D4", "R2D4_VARIANTS", "r2d4"),
}
CLASSICAL = ["identity", "unsharp", "wiener", "richardson-lucy"]

CHILD = r"""
import importlib, json, resource, statistics, sys, time
import torch
from vdeblur.engine.device import resolve_device
from vdeblur.engine.precision import autocast
from vdeblur.engine.restorer import pad_to

kind, name, variant, dev, precision, repeat, h, w = sys.argv[1:9]
repeat, h, w = int(repeat), int(h), int(w)
device = resolve_device(dev)
torch.manual_seed(0)
if kind == "classical":
    from vdeblur.methods.registry import create
    net = create(name)
    multiple, inp = 1, "window1"
else:
    mod, cls, var, inp = json.loads(variant)
    m = importlib.import_module(mod)
    variant = var[1]
    net = getattr(m, cls)(**getattr(m, var[0])[variant])
    multiple = getattr(net, "pad_multiple", 1)
net = net.to(device, memory_format=torch.channels_last).eval() if hasattr(net, "eval") else net
params = sum(p.numel() for p in net.parameters()) if hasattr(net, "parameters") else 0
x = torch.rand(1, 3, h, w, device=device)
x, _, _ = pad_to(x, multiple)
x = x.contiguous(memory_format=torch.channels_last)
if inp == "window1":
    call = lambda: net(x[:, None])
elif inp == "window3":
    xs = torch.stack([x, x, x], 1)
    call = lambda: net(xs)
elif inp == "r2d4":
    past = torch.stack([x, x], 1)
    call = lambda: net(x, past, past)
else:
    call = lambda: net(x)
times = []
with torch.inference_mode(), autocast(device, precision):
    for i in range(repeat + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append((time.perf_counter() - t0) * 1000)
peak = (torch.cuda.max_memory_allocated() / 2**20) if device.type == "cuda" else \
    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"method": name, "variant": variant if kind != "classical" else None, "params": params,
                  "ms_per_frame": round(statistics.median(times), 1), "peak_mb": round(peak, 1),
                  "device": str(device), "precision": precision, "size": f"{w}x{h}"}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--variants", default="small", help="comma list of variant names to run")
    ap.add_argument("--only", default="", help="comma list of name or name:variant")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", default="1280x720")
    a = ap.parse_args()
    w, h = map(int, a.size.split("x"))
    only = {o for o in a.only.split(",") if o}
    jobs = [("classical", n, "null") for n in CLASSICAL]
    for name, (mod, cls, var, inp) in ARCHS.items():
        try:
            m = __import__(mod, fromlist=[var])
        except ImportError:
            continue
        for variant in getattr(m, var):
            if variant in a.variants.split(","):
                jobs.append(("arch", name, json.dumps([mod, cls, [var, variant], inp])))
    for kind, name, payload in jobs:
        variant = json.loads(payload)[2][1] if kind == "arch" else None
        if only and name not in only and f"{name}:{variant}" not in only:
            continue
        p = subprocess.run([sys.executable, "-c", CHILD, kind, name, payload, a.device, a.precision,
                            str(a.repeat), str(h), str(w)], capture_output=True, text=True)
        if p.returncode:
            print(json.dumps({"method": name, "variant": variant, "error": p.stderr.strip().splitlines()[-1:]}))
        else:
            print(p.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
