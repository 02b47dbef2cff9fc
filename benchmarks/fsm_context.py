"""Tune and check the fsm selector's whole-file rule (vdeblur/select/fsm.py ``label_fsm``) on the
hard clips of tests/selector_media.py, made from the validation photographs (never the test ones).

    python benchmarks/fsm_context.py --photos runs/photos/val --weights FILE [--sweep] [--cache F.npz]

Each clip is encoded as benchmarks/select_accuracy.py encodes it and decoded once
(``fsm_columns``: fsm logits and the Laplacian pre-pass's shots); the rule is then applied to the
saved columns, so a sweep over its parameters costs no decoding. Prints per-clip accuracy of the
absolute rule (p > 0.5) and of the per-shot rule, and with ``--sweep`` the parameter settings
ranked by their worst clip, then overall accuracy, then false positives on the all-sharp clips.
"""

from __future__ import annotations

import argparse
import itertools
import os
import pickle
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from select_accuracy import photo_sets  # noqa: E402
from selector_media import CLIPS, make_clip, write_clip  # noqa: E402


def columns(photos: str, weights: str, frames: int, size: tuple[int, int], skimage: bool) -> list[dict]:
    from vdeblur.select.fsm import fsm_columns, load_fsm

    sel = load_fsm(weights, "cpu", 1, None)
    out = []
    sets = photo_sets(photos)
    sets = sets if skimage else sets[1:]
    with tempfile.TemporaryDirectory() as tmp:
        for pname, pair in sets:
            for seed, name in enumerate(CLIPS):
                clip = make_clip(name, n=frames, size=size, seed=seed, photos=pair)
                path = os.path.join(tmp, f"{name}.mp4")
                write_clip(path, clip)
                z, ctx = fsm_columns(path, sel)
                out.append({"photos": pname, "clip": name, "truth": np.array(clip.blurred), "z": z, "ctx": ctx})
                print(f"{pname:28s} {name:15s} logits sharp {np.median(z[~np.array(clip.blurred)]) if (~np.array(clip.blurred)).any() else float('nan'):+.2f}"
                      f" blurred {np.median(z[np.array(clip.blurred)]) if any(clip.blurred) else float('nan'):+.2f}", flush=True)
    return out


def evaluate(rows: list[dict], **kw) -> tuple[float, float, int, list[float]]:
    from vdeblur.select.fsm import label_fsm

    accs, right, total, fp_sharp = [], 0, 0, 0
    for r in rows:
        got = np.array(label_fsm(r["z"], r["ctx"], **kw).blurred)
        accs.append(float((got == r["truth"]).mean()))
        right += int((got == r["truth"]).sum())
        total += len(got)
        if r["clip"] == "all_sharp":
            fp_sharp += int(got.sum())
    return min(accs), right / total, fp_sharp, accs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", default="runs/photos/val")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--skimage", action="store_true", help="also the scikit-image pair")
    ap.add_argument("--cache", default=None, help="save / reuse the decoded columns here (pickle of numbers)")
    ap.add_argument("--sweep", action="store_true")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    if a.cache and os.path.exists(a.cache):
        with open(a.cache, "rb") as fh:
            rows = pickle.load(fh)
    else:
        rows = columns(a.photos, a.weights, a.frames, (w, h), a.skimage)
        if a.cache:
            with open(a.cache, "wb") as fh:
                pickle.dump(rows, fh)
    for label, kw in (("absolute p>0.5", {"threshold": 0.5}), ("per shot (defaults)", {})):
        worst, acc, fp, accs = evaluate(rows, **kw)
        print(f"{label:22s} overall {acc:.3f}  worst clip {worst:.3f}  FP on all-sharp {fp}")
        for r, x in zip(rows, accs):
            if x < 0.95:
                print(f"    {r['photos']:28s} {r['clip']:15s} {x:.3f}")
    if a.sweep:
        grid = {"margin": [0.5, 1.0, 1.5, 2.0, 3.0, 4.0], "floor": [-6.0, -4.0, -2.0, -1.0, 0.0],
                "sure": [2.0, 4.0, 6.0, 8.0, 1e9], "percentile": [0.0, 10.0, 25.0],
                "lap_weight": [0.0, 1.0, 3.0]}
        res = []
        for vals in itertools.product(*grid.values()):
            kw = dict(zip(grid, vals))
            worst, acc, fp, _ = evaluate(rows, **kw)
            res.append((worst, acc, -fp, kw))
        res.sort(key=lambda r: (r[0], r[1], r[2]), reverse=True)
        for worst, acc, nfp, kw in res[:15]:
            print(f"worst {worst:.3f} overall {acc:.3f} FP all-sharp {-nfp}  {kw}")


if __name__ == "__main__":
    main()
