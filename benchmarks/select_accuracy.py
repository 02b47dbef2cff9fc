"""Accuracy, precision and recall of the frame selectors on the hard clips (issue 14).

    python benchmarks/select_accuracy.py [--selectors laplacian,fsm] [--photos runs/photos/test]
                                         [--frames 48] [--size 320x240] [--photo-side 700]
                                         [--mode both] [--json]

The clips are ``tests/selector_media.py``'s (a clip that starts blurred, one that ends blurred,
cuts between a detailed and a flat shot, a low-contrast shot, mild 2-4 px blur, noise, H.264 at
CRF 28, no blurred frame at all), encoded with PyAV into a temporary folder and labelled by
``vdeblur classify``'s code: ``--mode stream`` labels as a pipe is labelled (a window over the
frames seen so far and a few ahead), ``--mode file`` with the whole file in view (the decode-only
pre-pass), ``both`` prints both. Photographs: scikit-image's held-out pair by default, and each
pair of the held-out test photographs of ``benchmarks/gather_photos.py`` when ``--photos`` names
their folder (one set of clips per pair). "blurred" is the positive class.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from selector_media import CLIPS, default_photos, make_clip, write_clip  # noqa: E402


def labels_of(path: str, select: str, mode: str) -> list[bool]:
    from vdeblur.cli.classify import classify_video

    got: list[bool] = []
    kw = {} if mode == "file" else {"context": False}
    classify_video(path, select, on_decision=lambda d, t: got.append(bool(d.blurred)), **kw)
    return got


def scores(truth: list[bool], got: list[bool]) -> tuple[float, float, float, int, int]:
    t, g = np.array(truth), np.array(got)
    tp, fp, fn = int((t & g).sum()), int((~t & g).sum()), int((t & ~g).sum())
    acc = float((t == g).mean())
    prec = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else 1.0
    return acc, prec, rec, fp, fn


def photo_sets(folder: str | None, side: int = 700) -> list[tuple[str, tuple[np.ndarray, np.ndarray]]]:
    sets = [("skimage", default_photos())]
    if folder:
        names = sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpg", ".jpeg", ".png")))
        imgs = []
        for n in names:
            im = cv2.imread(os.path.join(folder, n), cv2.IMREAD_COLOR)
            if im is not None:
                s = side / max(im.shape[:2])
                im = cv2.resize(im, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else im
                imgs.append((n, cv2.cvtColor(im, cv2.COLOR_BGR2RGB)))
        for k in range(0, len(imgs) - 1, 2):
            sets.append((f"{imgs[k][0][:12]}+{imgs[k + 1][0][:12]}", (imgs[k][1], imgs[k + 1][1])))
    return sets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--selectors", default="laplacian,fsm")
    ap.add_argument("--photos", default=None, help="folder of held-out photographs (runs/photos/test)")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--photo-side", type=int, default=700, help="longest side the photographs are cut to first")
    ap.add_argument("--mode", default="both", choices=("stream", "file", "both"))
    ap.add_argument("--clips", default=",".join(CLIPS))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    sels = [s for s in a.selectors.split(",") if s]
    modes = ["stream", "file"] if a.mode == "both" else [a.mode]
    totals: dict[tuple[str, str], tuple[list[bool], list[bool]]] = {}
    worst: dict[tuple[str, str], float] = {}
    print(f"{'photos':28s} {'clip':15s} {'selector':10s} {'mode':6s}  acc    prec   recall  FP  FN")
    with tempfile.TemporaryDirectory() as tmp:
        for pname, photos in photo_sets(a.photos, a.photo_side):
            for seed, name in enumerate(a.clips.split(",")):
                clip = make_clip(name, n=a.frames, size=(w, h), seed=seed, photos=photos)
                path = os.path.join(tmp, f"{name}.mp4")
                write_clip(path, clip)
                for sel in sels:
                    for mode in modes:
                        got = labels_of(path, sel, mode)
                        acc, prec, rec, fp, fn = scores(clip.blurred, got)
                        tt, gg = totals.setdefault((sel, mode), ([], []))
                        tt += clip.blurred
                        gg += got
                        worst[(sel, mode)] = min(worst.get((sel, mode), 1.0), acc)
                        if a.json:
                            print(json.dumps({"photos": pname, "clip": name, "selector": sel, "mode": mode,
                                              "accuracy": acc, "precision": prec, "recall": rec, "fp": fp, "fn": fn}))
                        else:
                            print(f"{pname:28s} {name:15s} {sel:10s} {mode:6s}  {acc:.3f}  {prec:.3f}  {rec:.3f}  {fp:3d} {fn:3d}",
                                  flush=True)
    for (sel, mode), (tt, gg) in totals.items():
        acc, prec, rec, fp, fn = scores(tt, gg)
        print(f"{'OVERALL':28s} {'all':15s} {sel:10s} {mode:6s}  {acc:.3f}  {prec:.3f}  {rec:.3f}  {fp:3d} {fn:3d}"
              f"   worst clip {worst[(sel, mode)]:.3f}")


if __name__ == "__main__":
    main()
