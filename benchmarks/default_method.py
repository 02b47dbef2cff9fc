"""Which method should `vdeblur run` use by default? Each method as a user runs it (the default
selector, `--reference` for PSNR), on the partially blurred clips of the held-out test set
(`benchmarks/make_testset.py`): mean PSNR over all frames against the input's, the worst frame,
and how many frames end more than 0.1 dB below their input.

    python benchmarks/make_testset.py runs/photos runs/testset   # once
    python benchmarks/default_method.py runs/testset/partial lucky atrous richardson-lucy "lucky -p fallback=atrous"
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np

from vdeblur.io.writer import write_rgb_video


def main(tree: str, methods: list[str]) -> None:
    root = os.path.join(tree, "test")
    rows: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        for seq in sorted(os.listdir(root)):
            w = os.path.join(tmp, seq)
            os.makedirs(w)
            for kind in ("blur", "sharp"):  # lossless clips of the test frames
                frames = [cv2.imread(p)[:, :, ::-1] for p in sorted(glob.glob(f"{root}/{seq}/{kind}/*.png"))]
                write_rgb_video(f"{w}/{kind}.mkv", frames, fps=25)
            for m in methods:
                r = subprocess.run(["vdeblur", "run", f"{w}/blur.mkv", "-o", f"{w}/out.mkv", "--force", "--json",
                                    "--reference", f"{w}/sharp.mkv", "--segment", "0", "-m", *m.split()],
                                   capture_output=True, text=True)
                lines = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
                frames_ = [x for x in lines if "summary" not in x]
                if r.returncode or not frames_:
                    print(f"{m}: {seq} failed ({r.returncode}): {r.stderr.strip()[-300:]}", file=sys.stderr)
                    continue
                rows[m] += [(x["psnr"], x["psnr_input"]) for x in frames_]
    print("| method | frames | input dB | output dB | mean gain | worst frame | frames > 0.1 dB worse |")
    print("|---|---|---|---|---|---|---|")
    for m, v in rows.items():
        a = np.array([p for p in v if np.isfinite(p).all()])
        if not len(a):
            continue
        g = a[:, 0] - a[:, 1]
        print(f"| {m} | {len(a)} | {a[:, 1].mean():.2f} | {a[:, 0].mean():.2f} | {g.mean():+.2f} | {g.min():+.2f} | {(g < -0.1).sum()} |")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
