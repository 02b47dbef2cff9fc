"""Development figures for the whole-file selector rules (issue 14): the hard clips of
tests/selector_media.py made from development photographs (the validation and training ones of
benchmarks/gather_photos.py, never the test ones), decoded once and kept as columns, so that the
rules (``context.label_columns`` for laplacian, ``fsm.label_fsm`` for fsm) can be compared on
them without decoding again (``--synth``: vdeblur.data.synth_clip's moving scenes too).

    python benchmarks/select_dev.py --photos runs/photos2/val --cache runs/select_dev/val.npz
    python benchmarks/select_dev.py --cache runs/select_dev/val.npz --set ratio=0.55 --set fsm.margin=0.5
    python benchmarks/select_dev.py --cache runs/select_dev/val.npz --sweep-fsm
    python benchmarks/select_dev.py --photos runs/photos2/val --photos runs/select_dev/train24 \
        --size 640x360 --photo-side 960 --cache runs/select_dev/dev640.npz   # 24 training photographs

Each clip is encoded as benchmarks/select_accuracy.py encodes it; its columns are what the
pre-pass keeps per frame (blur score, noise sigma, the 8 directional details, the histogram
change from the frame before) and the fsm's logit. ``--set NAME=VALUE`` passes a keyword to
``label_columns`` (``ratio``, ``radius``, ``percentile``, ``tau``, ``spread``, ``ratio_hi``,
``join_spread``, ``join_hi``) or, prefixed ``fsm.``, to
``label_fsm``. Prints the clips under 95 % and the overall figures per selector; ``--sweep-fsm``
ranks settings of the fsm rule (``lap_weight``, ``margin``, ``percentile``) by the number of clips
under 95 %, then overall accuracy.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from select_accuracy import photo_sets, scores  # noqa: E402
from selector_media import CLIPS, make_clip, write_clip  # noqa: E402


def decode_columns(path: str, fsm) -> dict[str, np.ndarray]:
    """The pre-pass's columns of ``path`` (``context.scan_columns``) and the fsm's logit of each
    frame (0 without ``fsm``)."""
    from vdeblur.select.context import scan_columns

    logits: list[float] = []
    cols, _, _ = scan_columns(path, frame_hook=lambda item: logits.append(
        fsm.logit(item.rgb()) if fsm is not None else 0.0))
    return {**{k: np.asarray(v, np.float64) for k, v in cols.items()}, "logit": np.asarray(logits, np.float64)}


def build(folders: list[str], frames: int, size: tuple[int, int], weights: str | None,
          synth: bool = False, photo_side: int = 700) -> list[dict]:
    from vdeblur.select.fsm import load_fsm

    fsm = load_fsm(weights, "cpu", 1, None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if synth:  # vdeblur.data.synth_clip: 12 seeds x 30/50/70 % blurred
            from media import write_video
            from vdeblur.data import synth_clip

            for seed in range(12):
                for frac in (0.3, 0.5, 0.7):
                    c = synth_clip(seed=seed, blur_fraction=frac)
                    path = os.path.join(tmp, "synth.mp4")
                    h, w = c.blurred[0].shape[:2]
                    write_video(path, size=(w, h), fps=25, frames=c.blurred,
                                options={"crf": "18", "preset": "veryfast", "threads": "1"})
                    rows.append({"photos": f"synth seed {seed}", "clip": f"synth {frac:.0%}",
                                 "truth": np.array(c.labels), **decode_columns(path, fsm)})
        for folder in folders:
            for pname, pair in photo_sets(folder, photo_side)[1:]:  # not scikit-image's pair (the tests' own)
                for seed, name in enumerate(CLIPS):
                    clip = make_clip(name, n=frames, size=size, seed=seed, photos=pair)
                    path = os.path.join(tmp, f"{name}.mp4")
                    write_clip(path, clip)
                    rows.append({"photos": pname, "clip": name, "truth": np.array(clip.blurred),
                                 **decode_columns(path, fsm)})
                    print(f"  {pname:28s} {name}", file=sys.stderr, flush=True)
    return rows


def save(path: str, rows: list[dict]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    flat = {}
    for i, r in enumerate(rows):
        for k, v in r.items():
            flat[f"{i}/{k}"] = np.asarray(v)
    np.savez_compressed(path, **flat)


def load(path: str) -> list[dict]:
    z = np.load(path, allow_pickle=False)
    rows: dict[int, dict] = {}
    for key in z.files:
        i, k = key.split("/", 1)
        v = z[key]
        rows.setdefault(int(i), {})[k] = str(v) if v.dtype.kind == "U" else v
    return [rows[i] for i in sorted(rows)]


def labels(row: dict, selector: str, lap_kw: dict, fsm_kw: dict) -> np.ndarray:
    from vdeblur.select.context import label_columns
    from vdeblur.select.fsm import label_fsm

    ctx = label_columns(row["score"], row["noise"], row["dirs"].reshape(-1, 8), row["change"],
                        types=row.get("ptype"), **lap_kw)
    if selector == "laplacian":
        return np.array(ctx.blurred)
    return np.array(label_fsm(row["logit"], ctx, **fsm_kw).blurred)


def evaluate(rows: list[dict], selector: str, lap_kw: dict, fsm_kw: dict, show: bool = True) -> tuple:
    tt, gg, accs = [], [], []
    for r in rows:
        got = labels(r, selector, lap_kw, fsm_kw)
        acc, prec, rec, fp, fn = scores(list(r["truth"]), list(got))
        accs.append(acc)
        tt += list(r["truth"])
        gg += list(got)
        if show and acc < 0.95:
            print(f"    {selector:9s} {r['photos']:28s} {r['clip']:13s} {acc:.3f}  FP {fp:2d} FN {fn:2d}")
    acc, prec, rec, fp, fn = scores(tt, gg)
    return acc, prec, rec, fp, fn, min(accs), sum(a < 0.95 for a in accs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", action="append", default=[], help="folder of development photographs (repeatable)")
    ap.add_argument("--weights", default=None, help="fsm weights (default: weights.toml's)")
    ap.add_argument("--synth", action="store_true", help="also vdeblur.data.synth_clip's clips (12 seeds x 3)")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--photo-side", type=int, default=700, help="longest side the photographs are cut to first")
    ap.add_argument("--cache", required=True, help=".npz of the columns: written when absent, read when present")
    ap.add_argument("--set", action="append", default=[], help="NAME=VALUE (fsm.NAME for the fsm rule)")
    ap.add_argument("--sweep-fsm", action="store_true", help="rank settings of the fsm rule")
    a = ap.parse_args()
    if os.path.exists(a.cache):
        rows = load(a.cache)
    else:
        w, h = (int(v) for v in a.size.split("x"))
        rows = build(a.photos, a.frames, (w, h), a.weights, a.synth, a.photo_side)
        save(a.cache, rows)
    lap_kw, fsm_kw = {}, {}
    for s in a.set:
        k, v = s.split("=", 1)
        (fsm_kw if k.startswith("fsm.") else lap_kw)[k.removeprefix("fsm.")] = float(v)
    print(f"{len(rows)} clips; laplacian {lap_kw or 'defaults'}; fsm {fsm_kw or 'defaults'}")
    if a.sweep_fsm:
        grid = {"lap_weight": [0.0, 1.0, 2.0, 3.0, 5.0, 8.0], "margin": [0.0, 0.25, 0.5, 1.0, 2.0],
                "percentile": [10.0, 25.0, 50.0]}
        res = []
        for vals in itertools.product(*grid.values()):
            kw = {**fsm_kw, **dict(zip(grid, vals))}
            acc, _, _, fp, fn, worst, under = evaluate(rows, "fsm", lap_kw, kw, show=False)
            res.append((under, -acc, worst, fp, fn, kw))
        for under, nacc, worst, fp, fn, kw in sorted(res, key=lambda r: r[:2])[:10]:
            print(f"  under 95 % {under:3d}  accuracy {-nacc:.4f}  worst {worst:.3f}  FP {fp} FN {fn}  {kw}")
    for sel in ("laplacian", "fsm"):
        acc, prec, rec, fp, fn, worst, under = evaluate(rows, sel, lap_kw, fsm_kw)
        print(f"{sel:9s} accuracy {acc:.3f} precision {prec:.3f} recall {rec:.3f} FP {fp} FN {fn}"
              f"  worst clip {worst:.3f}  clips under 95 % {under}")


if __name__ == "__main__":
    main()
