"""Selector accuracy on real footage with motion blur added (issue 14): real video content,
sensor noise and compression, which the photograph clips of select_accuracy.py only imitate.

    python benchmarks/select_real.py VIDEO [VIDEO ...] [--frames 150] [--crf 23] [--seeds 3]
                                     [--selectors laplacian,fsm] [--json]

Each video's first ``--frames`` frames are decoded; runs of 3-8 frames (about 40 % of them,
``selector_media._runs``) are blurred with a straight motion kernel of random direction
(``motion_psf``), a length per run between 2 and 4 px (``mild``) or 5 and 12 px (``strong``) at
the video's size;
the clip is encoded with libx264 at ``--crf`` into a temporary folder and labelled by
``vdeblur classify``'s whole-file code. The frames the video holds are the sharp ones: whatever
blur they have of their own counts as sharp. "blurred" is the positive class. Frames per clip,
accuracy, precision, recall, false positives and negatives.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import av
import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from select_accuracy import labels_of, scores  # noqa: E402
from media import write_video  # noqa: E402
from selector_media import _runs  # noqa: E402


def read_frames(path: str, n: int) -> tuple[list[np.ndarray], float]:
    out = []
    with av.open(path) as c:
        v = c.streams.video[0]
        rate = float(v.average_rate or 25)
        for f in c.decode(v):
            out.append(f.to_ndarray(format="rgb24"))
            if len(out) >= n:
                break
    return out, rate


def make(frames: list[np.ndarray], seed: int, lengths: tuple[float, float]) -> tuple[list[np.ndarray], list[bool]]:
    from vdeblur.methods.classical.psf import motion_psf

    rng = np.random.default_rng(seed)
    lab = _runs(len(frames), rng)
    out, k = [], None
    for i, (f, b) in enumerate(zip(frames, lab)):
        if b and (i == 0 or not lab[i - 1]):  # one kernel a run, as one shake
            k = motion_psf(rng.uniform(*lengths), rng.uniform(0, 180)).numpy()
        out.append(cv2.filter2D(f, -1, k, borderType=cv2.BORDER_REFLECT) if b else f)
    return out, lab


def encode(path: str, frames: list[np.ndarray], rate: float, crf: int) -> None:
    """libx264 (yuv420p, veryfast) at ``crf``, as ``tests/media.write_video`` writes; odd sizes cropped."""
    h, w = frames[0].shape[:2]
    h, w = h - h % 2, w - w % 2
    write_video(path, size=(w, h), fps=round(rate), frames=[np.ascontiguousarray(f[:h, :w]) for f in frames],
                options={"crf": str(crf), "preset": "veryfast"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("videos", nargs="+")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--crf", type=int, default=23)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--selectors", default="laplacian,fsm")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    totals: dict[str, tuple[list, list]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for video in a.videos:
            src, rate = read_frames(video, a.frames)
            for kind, lengths in (("mild", (2.0, 4.0)), ("strong", (5.0, 12.0))):
                for seed in range(a.seeds):
                    frames, truth = make(src, seed, lengths)
                    path = os.path.join(tmp, "clip.mp4")
                    encode(path, frames, rate, a.crf)
                    for sel in a.selectors.split(","):
                        got = labels_of(path, sel, "file")
                        acc, prec, rec, fp, fn = scores(truth, got)
                        tt, gg = totals.setdefault(f"{sel} {kind}", ([], []))
                        tt += truth
                        gg += got
                        row = {"video": os.path.basename(video), "blur": kind, "seed": seed, "selector": sel,
                               "frames": len(truth), "accuracy": acc, "precision": prec, "recall": rec, "fp": fp, "fn": fn}
                        print(json.dumps(row) if a.json else
                              f"{row['video']:16s} {kind:6s} seed {seed} {sel:9s} {len(truth):4d} frames  "
                              f"acc {acc:.3f} prec {prec:.3f} recall {rec:.3f}  FP {fp:3d} FN {fn:3d}", flush=True)
    for key, (tt, gg) in totals.items():
        acc, prec, rec, fp, fn = scores(tt, gg)
        print(f"OVERALL {key:18s} acc {acc:.3f} prec {prec:.3f} recall {rec:.3f}  FP {fp} FN {fn}")


if __name__ == "__main__":
    main()
