"""Per-frame PSNR gains of ``--method lucky`` on development clips, in one process, variant beside
variant (for developing the method; the acceptance figures come from lucky_crops.py and
default_method.py on the held-out set).

    python benchmarks/lucky_dev.py TREE [TREE ...] [--motion SEEDS] [--against OLD_LUCKY.py ...] [-v]

TREE: a ``benchmarks/make_testset.py`` tree (e.g. ``/tmp/lk_dev/partial``, built on photographs
that are NOT the held-out ones): each clip is written losslessly and labelled by the whole-file
laplacian pre-pass as ``vdeblur run`` labels it; every frame labelled blurred is restored by lucky
from the frames its ``pick`` chooses. ``--motion 1,2,3``: also the test scenes of
tests/motion_media.py (``--size``, default 320x192, 24 frames, those seeds), H.264-compressed,
labelled alike.
``--against FILE``: other versions of vdeblur/methods/lucky.py run on the same frames.
Printed per variant: mean gain over all frames, over the frames labelled blurred, the worst
frame, and the frames more than 0.1 dB below their input; ``-v``: every frame below +0.5 dB.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import sys
import tempfile

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))


def _load(path: str, name: str):
    from unittest import mock

    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    with mock.patch("vdeblur.methods.registry.register_method", lambda *_, **__: (lambda f: f)):
        spec.loader.exec_module(mod)  # not registered: "lucky" is
    return mod


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    d = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if d == 0 else float(10 * np.log10(255.0 ** 2 / d))


def clips(trees: list[str], seeds: list[int], tmp: str, size: tuple[int, int] = (320, 192)):
    """(name, decoded frames, true frames, labels) of every development clip."""
    from vdeblur.io.writer import write_rgb_video
    from vdeblur.select.context import prepass

    for tree in trees:
        for seq in sorted(os.listdir(os.path.join(tree, "test"))):
            d = os.path.join(tree, "test", seq)
            blur = [cv2.imread(p)[:, :, ::-1].copy() for p in sorted(glob.glob(f"{d}/blur/*.png"))]
            sharp = [cv2.imread(p)[:, :, ::-1].copy() for p in sorted(glob.glob(f"{d}/sharp/*.png"))]
            path = os.path.join(tmp, "c.mkv")
            write_rgb_video(path, blur, fps=25)
            yield f"{os.path.basename(tree.rstrip('/'))}/{seq}", blur, sharp, dict(enumerate(prepass(path).blurred))
    if seeds:
        from media import read_video, write_video
        from motion_media import make_clip

        for s in seeds:
            clip = make_clip(24, size, seed=s)
            path = os.path.join(tmp, "m.mp4")
            write_video(path, frames=clip.frames, size=size, options={"preset": "medium", "crf": "18", "threads": "1"})
            yield f"motion/seed{s}", read_video(path)["frames"], clip.references, dict(enumerate(prepass(path).blurred))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs="*")
    ap.add_argument("--motion", default="", help="comma-separated seeds of motion_media clips")
    ap.add_argument("--size", default="320x192", help="of the motion clips")
    ap.add_argument("--against", action="append", default=[])
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vdeblur", "methods", "lucky.py")
    variants = {"current": _load(here, "lucky_current").Lucky}
    for i, p in enumerate(a.against):
        variants[os.path.basename(p)] = _load(p, f"lucky_v{i}").Lucky
    seeds = [int(s) for s in a.motion.split(",") if s.strip()]
    rows: dict[str, list[tuple[str, int, bool, float]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        size = tuple(int(v) for v in a.size.lower().split("x"))
        for name, dec, ref, labels in clips(a.trees, seeds, tmp, size):
            for v, cls in variants.items():
                m = cls()
                for i in range(len(dec)):
                    if not labels[i]:
                        rows[v].append((name, i, False, 0.0))
                        continue
                    out = m.restore_frame(dec[i], [dec[j] for j in m.pick(i, labels)])
                    rows[v].append((name, i, True, _psnr(out, ref[i]) - _psnr(dec[i], ref[i])))
    for v, r in rows.items():
        g = np.array([x[3] for x in r])
        lab = np.array([x[3] for x in r if x[2]])
        worst = min(r, key=lambda x: x[3])
        print(f"{v:24s} all {g.mean():+.3f} dB  labelled-blurred {lab.mean():+.3f} dB ({len(lab)})  "
              f"worst {worst[3]:+.2f} ({worst[0]} #{worst[1]})  below -0.1: {(g < -0.1).sum()}")
        if a.v:
            for x in r:
                if x[2] and x[3] < 0.5:
                    print(f"    {x[0]} #{x[1]}: {x[3]:+.2f}")


if __name__ == "__main__":
    main()
