"""Milliseconds per 1280x720 frame for every method, now and before, side by side in one run.

    python benchmarks/methods_speed.py                      # CPU, fp32, channels_last, vs BASELINE
    python benchmarks/methods_speed.py --baseline none --device cuda --precision fp16 --size 1920x1080
    python benchmarks/methods_speed.py --only golf:small,wiener,mlfa-method --repeat 5
    python benchmarks/methods_speed.py --baseline HEAD --json benchmarks/results/cpu_methods_speed_4.jsonl

Each entry runs in its own child process (so its peak RSS / CUDA peak is its own): one warm-up
call, then --repeat timed calls; the median is reported (with --rounds N, N such children per tree,
alternating which goes first, and the median child). "Before" is the package as it was at
--baseline (a git revision, extracted with ``git archive`` into a temporary folder and imported
from there); its child runs right before the current one, entry by entry, so both see the same
load. Architectures run with random weights (speed, not quality). ``mlfa-method`` and
``r2d4-method`` are the methods as the engine calls them, on windows sliding over distinct frames
with the state carried: the steady-state cost of a frame in a video (mlfa's stage 1 once per
frame, r2d4's past features reused). Prints one table (and, with --json FILE, one JSON row per entry).
Beside each entry, "prev ms" is the "now" figure of the newest saved table for this device
(``benchmarks/results/<device>_methods_speed*.jsonl``, same size and precision; --previous FILE
or none): the published figure, measured on another day under another load, for reference only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: the commit before issue 15's speed work: "before" in the table
BASELINE = "33534fe"

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
#: label: (method, its options); "-motion" gives the PSF a blind estimate finds on blurred footage
#: (random test frames make the blind estimate answer "no blur", the identity PSF)
CLASSICAL = {"identity": ("identity", {}), "unsharp": ("unsharp", {}), "wiener": ("wiener", {}),
             "richardson-lucy": ("richardson-lucy", {}),
             "richardson-lucy-motion": ("richardson-lucy", {"psf": "motion:15:30"})}
#: issue 15's CPU targets, ms per 720p frame (small variants, fp32, this 2-core machine)
TARGETS = {"r2d4:small": 2000, "r2d4-method:small": 2000, "r2d4-method:tiny": 2000, "golf:small": 1500, "richardson-lucy": 500, "richardson-lucy-motion": 500, "srn:small": 1000,
           "atrous:small": 1000, "mlfa-method:small": 1000, "fsm:small": 1000, "deblurnet:small": 1000}

CHILD = r"""
import importlib, json, resource, statistics, sys, time
import torch
from vdeblur.engine.device import resolve_device
from vdeblur.engine.precision import autocast
from vdeblur.engine.restorer import pad_to

kind, name, variant, dev, precision, repeat, h, w = sys.argv[1:9]
repeat, h, w = int(repeat), int(h), int(w)
device = resolve_device(dev)
torch.backends.cudnn.benchmark = sys.argv[9] == "1"
torch.manual_seed(0)
if kind == "classical":
    from vdeblur.methods.registry import create
    method, options = json.loads(variant)
    net = create(method, **options)
    multiple, inp = 1, "window1"
elif kind == "method":
    from vdeblur.methods.neural import make_untrained
    net = make_untrained(name.split("-")[0], variant)[0]
    multiple, inp = net.pad_multiple, "sliding"
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
elif inp == "sliding":  # distinct frames, windows moving one frame per call, state carried
    n = net.window
    frames = [torch.rand_like(x) for _ in range(repeat + n)]
    wins = iter([torch.stack(frames[i:i + n], 1) for i in range(repeat + 1)])
    state = [None]
    def call():
        out, state[0] = net(next(wins), state[0])
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


def extract(rev: str, into: Path) -> Path:
    """The package as of ``rev`` under ``into``/vdeblur (``git archive``)."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", rev, "vdeblur"], capture_output=True)
    if archive.returncode:
        sys.exit(f"--baseline {rev}: git archive failed: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def child(tree: Path | None, kind: str, name: str, payload: str, a, h: int, w: int) -> dict:
    env = dict(os.environ)
    cwd = None
    if tree is not None:  # import vdeblur from the extracted tree, not the installed one
        env["PYTHONPATH"] = str(tree) + os.pathsep + env.get("PYTHONPATH", "")
        cwd = str(tree)
    p = subprocess.run([sys.executable, "-c", CHILD, kind, name, payload, a.device, a.precision,
                        str(a.repeat), str(h), str(w), "1" if a.cudnn_benchmark else "0"],
                       capture_output=True, text=True, env=env, cwd=cwd)
    if p.returncode:
        return {"error": (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def previous_figures(path: str, device: str, precision: str, size: str) -> tuple[str | None, dict]:
    """(file, {(method, variant): now_ms}) of the newest saved table (or ``path``; 'none': none)."""
    if path == "none":
        return None, {}
    if path == "auto":
        results = Path(__file__).resolve().parent / "results"
        num = lambda p: int(p.stem.rsplit("_", 1)[1]) if p.stem.rsplit("_", 1)[1].isdigit() else 1  # noqa: E731
        files = sorted(results.glob(f"{device.split(':')[0]}_methods_speed*.jsonl"), key=num)
        if not files:
            return None, {}
        path = str(files[-1])
    try:
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as e:
        sys.exit(f"--previous {path}: cannot read it ({e})")
    return Path(path).name, {(r["method"], r.get("variant")): r.get("now_ms") for r in rows
                             if r.get("precision") == precision and r.get("size") == size}


def pick(runs: list[dict]) -> dict:
    """The run with the median time (an error if any run failed)."""
    bad = [r for r in runs if "error" in r]
    if bad:
        return bad[0]
    return sorted(runs, key=lambda r: r["ms_per_frame"])[(len(runs) - 1) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--variants", default="small", help="comma list of variant names to run")
    ap.add_argument("--only", default="", help="comma list of name or name:variant")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--rounds", type=int, default=1,
                    help="child processes per tree and entry, alternating before/now (median taken)")
    ap.add_argument("--baseline", default=BASELINE,
                    help=f"git revision measured as 'before' (default {BASELINE}); 'none' to skip")
    ap.add_argument("--cudnn-benchmark", action="store_true",
                    help="torch.backends.cudnn.benchmark = True in the children (fixed-size frames)")
    ap.add_argument("--previous", default="auto",
                    help="saved table (.jsonl) whose 'now' figures are printed as 'prev ms'; "
                         "default: the newest benchmarks/results/<device>_methods_speed*.jsonl; 'none'")
    ap.add_argument("--json", default=None, help="also write one JSON row per entry to this file")
    a = ap.parse_args()
    w, h = map(int, a.size.split("x"))
    only = {o for o in a.only.split(",") if o}
    jobs = [("classical", n, json.dumps(spec), None) for n, spec in CLASSICAL.items()]
    for name, (mod, cls, var, inp) in ARCHS.items():
        m = __import__(mod, fromlist=[var])  # an import error is the benchmark's to show, not to skip
        for variant in getattr(m, var):
            if variant in a.variants.split(","):
                jobs.append(("arch", name, json.dumps([mod, cls, [var, variant], inp]), variant))
                if name in ("mlfa", "r2d4"):
                    jobs.append(("method", f"{name}-method", variant, variant))
    jobs = [j for j in jobs if not only or j[1] in only or f"{j[1]}:{j[3]}" in only]
    tmp = Path(tempfile.mkdtemp(prefix="vdeblur-baseline-"))
    try:
        tree = None if a.baseline == "none" else extract(a.baseline, tmp)
        rows = []
        prev_file, prev = previous_figures(a.previous, a.device, a.precision, f"{w}x{h}")
        head = (f"{'method':<24}{'variant':<9}{'params':>9}  {'prev ms':>9}{'before ms':>10}{'now ms':>10}"
                f"{'now/before':>11}{'target ms':>10}  {'peak MB':>8}")
        print(f"# {a.device} {a.precision} {w}x{h}, median of {a.repeat} calls x {a.rounds} rounds; "
              f"before = {a.baseline}; cudnn.benchmark {a.cudnn_benchmark}; prev = {prev_file}", flush=True)
        print(head, flush=True)
        for kind, name, payload, variant in jobs:
            olds, news = [], []
            for r in range(a.rounds):  # alternate which tree goes first
                order = [(tree, olds), (None, news)] if r % 2 == 0 else [(None, news), (tree, olds)]
                for t, out in order:
                    if t is not None or out is news:
                        out.append(child(t, kind, name, payload, a, h, w))
            old, new = pick(olds) if tree is not None else {}, pick(news)
            key = f"{name}:{variant}" if variant else name
            target = TARGETS.get(key) if a.device == "cpu" and (w, h) == (1280, 720) else None
            row = {"method": name, "variant": variant, "params": new.get("params"),
                   "previous_ms": prev.get((name, variant)), "before_ms": old.get("ms_per_frame"), "now_ms": new.get("ms_per_frame"),
                   "target_ms": target, "peak_mb": new.get("peak_mb"), "device": a.device,
                   "precision": a.precision, "size": f"{w}x{h}", "baseline": a.baseline,
                   "error": new.get("error") or old.get("error")}
            rows.append(row)
            ratio = (f"{row['now_ms'] / row['before_ms']:.2f}" if row["now_ms"] is not None
                     and row["before_ms"] else "-")
            fmt = lambda v: "-" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:.1f}"  # noqa: E731
            line = (f"{name:<24}{variant or '-':<9}{row['params'] or 0:>9,}  {fmt(row['previous_ms']):>9}"
                    f"{fmt(row['before_ms']):>10}"
                    f"{fmt(row['now_ms']):>10}{ratio:>11}{fmt(target):>10}  {fmt(row['peak_mb']):>8}")
            if row["error"]:
                line += f"  ERROR {row['error']}"
            print(line, flush=True)
        if a.json:
            Path(a.json).write_text("".join(json.dumps(r) + "\n" for r in rows))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
