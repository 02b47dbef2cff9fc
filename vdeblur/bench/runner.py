"""methods x dataset -> rows: mean PSNR/SSIM (RGB, 8-bit, full frame) and ms per frame, beside
the input's own PSNR/SSIM; for selectors, their accuracy against the dataset's own labels (a
frame is blurred when its input differs from its target)."""

from __future__ import annotations

import time
from itertools import islice
from fractions import Fraction
from typing import Any, Callable, Iterator

import numpy as np

from vdeblur.metrics.mean import mean_finite


def _pairs(seq: Any, noisy: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(input, target) of a sequence; with ``noisy`` the input is its noisy/ frame."""
    if not noisy:
        yield from seq.frames()
        return
    from vdeblur.errors import InputError

    if not seq.has_noisy:
        raise InputError(f"{seq.name}: no noisy/ frames (make the data with `vdeblur synth --noise ...`)")
    for _, target, noisy_input in seq.frames(include_noisy=True):
        yield noisy_input, target


def bench_method(dataset: Any, method: str, *, device: str = "auto", precision: str = "fp32",
                 cfg: dict[str, Any] | None = None, limit: int | None = None,
                 noisy: bool = False) -> dict[str, Any]:
    """Run ``method`` over every sequence of ``dataset`` through the engine (windows, state and
    padding as in `vdeblur run`, every frame restored) and score it against the targets; with
    ``noisy`` the inputs are the sequences' noisy/ frames (R2-D4's joint task)."""
    from vdeblur.engine.device import resolve_device
    from vdeblur.engine.pipeline import Engine
    from vdeblur.engine.restorer import Restorer
    from vdeblur.io.reader import Frame
    from vdeblur.metrics import psnr, ssim
    from vdeblur.methods.registry import create
    from vdeblur.select import make_selector

    dev = resolve_device(device)
    m = create(method, **(cfg or {}))
    restorer = Restorer(m, dev, precision)
    rows: dict[str, list[float]] = {"psnr": [], "ssim": [], "psnr_input": [], "ssim_input": [], "ms": []}
    done = 0
    for seq in dataset.sequences():
        if limit is not None and done >= limit:
            break
        pairs = list(islice(_pairs(seq, noisy), None if limit is None else limit - done))
        done += len(pairs)
        targets = [t for _, t in pairs]

        def items() -> Iterator[Frame]:
            for i, (inp, _) in enumerate(pairs):
                yield Frame(i, i, Fraction(1, 25), array=inp)

        outs: list[tuple[int, np.ndarray | None]] = []
        engine = Engine(restorer, make_selector("none"), batch_size=1)
        t0 = time.perf_counter()
        engine.run(items(), lambda f, o: outs.append((f.index, o)), lambda p: None)
        rows["ms"].append((time.perf_counter() - t0) * 1000 / max(1, len(pairs)))
        for (i, out), target in zip(outs, targets):
            inp = pairs[i][0]
            out = inp if out is None else out
            rows["psnr"].append(psnr(out, target))
            rows["ssim"].append(ssim(out, target, device=dev))
            rows["psnr_input"].append(psnr(inp, target))
            rows["ssim_input"].append(ssim(inp, target, device=dev))
    return {
        "method": method,
        "psnr": mean_finite(rows["psnr"]),
        "ssim": mean_finite(rows["ssim"]),
        "psnr_input": mean_finite(rows["psnr_input"]),
        "ssim_input": mean_finite(rows["ssim_input"]),
        "ms_per_frame": mean_finite(rows["ms"]),
        "frames": done,
    }


def bench_selector(dataset: Any, selector: str, *, limit: int | None = None,
                   weights: str | None = None, every: int = 1) -> dict[str, Any]:
    """Accuracy of a selector against labels derived from the data (input != target: blurred)."""
    from vdeblur.io.reader import Frame
    from vdeblur.select import make_selector, selector_input

    correct = total = 0
    for seq in dataset.sequences():
        if limit is not None and total >= limit:
            break
        sel = make_selector(selector, every=every, weights=weights)
        labels: list[bool] = []
        decisions: list[Any] = []
        for i, (inp, target) in enumerate(seq.frames()):
            if limit is not None and total + i >= limit:
                break
            labels.append(not np.array_equal(inp, target))
            decisions += sel.push(i, selector_input(sel, Frame(i, i, Fraction(1, 25), array=inp)))
        decisions += sel.flush()
        correct += sum(d.blurred == labels[d.index] for d in decisions)
        total += len(labels)
    return {"selector": selector, "accuracy": correct / total if total else None, "frames": total}


def run_bench(dataset: Any, methods: list[str], selectors: list[str], *, on_row: Callable[[dict], None],
              **kw: Any) -> None:
    for m in methods:  # NAME, or NAME:VARIANT (a key of the method's variants)
        name, _, variant = m.partition(":")
        row = bench_method(dataset, name.strip(), cfg={"variant": variant.strip()} if variant else None, **kw)
        on_row({**row, "method": m.strip()})
    for s in selectors:
        on_row(bench_selector(dataset, s, limit=kw.get("limit")))  # on the clean blurred frames
