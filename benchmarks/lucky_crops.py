"""Side-by-side crops and PSNR of ``--method lucky`` against single-frame methods on a test scene.

    python benchmarks/lucky_crops.py [OUT_FOLDER] [--size 640x360] [--frames 30] [--seed 7]

A clip of the test scenes (tests/motion_media.py: camera pan and shake over a held-out photograph,
a parallax layer, a moving object, partly blurred as REBVIDS is) is H.264-compressed and decoded;
the laplacian selector labels it as a run of the file would (``--labels file``: the whole-file
pre-pass; ``--labels stream``: the streaming rule that pipes get). Every labelled-blurred frame is restored by lucky
(from the frames its labels pick) and by each single-frame method (unsharp, blind wiener and
richardson-lucy, and the neural ones whose weights are installed). Printed: the mean PSNR gain
over the input on the frames the clip made blurred, per method, and lucky's worst frame. Written
to OUT_FOLDER (default /tmp/lucky_crops): for the three most blurred frames, crops around the
moving object, the parallax layer and the background, each a row of input | lucky | the best
single-frame method | reference.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

SINGLE = ["unsharp", "wiener", "richardson-lucy", "atrous", "srn", "golf", "deblurnet"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", default="/tmp/lucky_crops")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--labels", choices=("file", "stream"), default="file")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.lower().split("x"))

    import cv2
    import torch
    from media import read_video, write_video
    from motion_media import make_clip, psnr

    from vdeblur.engine.restorer import Restorer
    from vdeblur.errors import VdeblurError
    from vdeblur.methods.registry import create
    from vdeblur.select import make_selector
    from vdeblur.select.context import prepass

    clip = make_clip(a.frames, (w, h), seed=a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "clip.mp4")
        write_video(path, frames=clip.frames, size=(w, h), options={"preset": "medium", "crf": "18"})
        frames = read_video(path)["frames"]
        labels: dict[int, bool] = {}
        if a.labels == "file":
            labels = dict(enumerate(prepass(path).blurred))
    if a.labels == "stream":
        sel = make_selector("laplacian")
        for i, f in enumerate(frames):
            for d in sel.push(i, cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)):
                labels[d.index] = bool(d.blurred)
        for d in sel.flush():
            labels[d.index] = bool(d.blurred)
    todo = [i for i in range(a.frames) if clip.blurred[i]]
    print(f"{w}x{h}, {a.frames} frames: {len(todo)} made blurred, {sum(labels[i] for i in todo)} of them "
          f"labelled blurred by the {a.labels} rule (and {sum(labels[i] and not clip.blurred[i] for i in labels)} sharp ones labelled blurred)")

    outs: dict[str, dict[int, np.ndarray]] = {}
    lucky = create("lucky")
    outs["lucky"] = {i: lucky.restore_frame(frames[i], [frames[j] for j in lucky.pick(i, labels)]) if labels[i]
                     else frames[i] for i in todo}
    for name in SINGLE:
        try:
            r = Restorer(create(name), torch.device("cpu"))
        except VdeblurError as e:
            print(f"{name}: skipped ({e})")
            continue
        outs[name] = {i: r.restore([[frames[i]]])[0][0] if labels[i] else frames[i] for i in todo}

    def gain(name: str, i: int) -> float:
        return psnr(outs[name][i], clip.references[i]) - psnr(frames[i], clip.references[i])

    table = {name: [gain(name, i) for i in todo] for name in outs}
    print("mean PSNR gain over the input on the frames made blurred (min, max):")
    for name, g in sorted(table.items(), key=lambda kv: -np.mean(kv[1])):
        print(f"  {name:16s} {np.mean(g):+6.2f} dB  ({min(g):+.2f}, {max(g):+.2f})")
    hit = [g for g, i in zip(table["lucky"], todo) if labels[i]]
    print(f"lucky on the {len(hit)} of them labelled blurred: mean {np.mean(hit):+.2f} dB, min {min(hit):+.2f} dB")
    best = max((n for n in table if n != "lucky"), key=lambda n: np.mean(table[n]))
    print(f"best single-frame method: {best}")

    os.makedirs(a.out, exist_ok=True)
    worst = sorted(todo, key=lambda i: psnr(frames[i], clip.references[i]))[:3]
    cs = min(w, h) // 3
    for i in worst:
        ys, xs = np.nonzero(clip.object_masks[i])
        regions = {"background": (h // 8, w // 2)}
        if len(ys):
            regions["object"] = (int(ys.mean()) - cs // 2, int(xs.mean()) - cs // 2)
        regions["parallax"] = (h - cs, w // 3)
        for region, (y, x) in regions.items():
            y, x = int(np.clip(y, 0, h - cs)), int(np.clip(x, 0, w - cs))
            tiles = []
            for name, img in (("input", frames[i]), ("lucky", outs["lucky"][i]), (best, outs[best][i]),
                              ("reference", clip.references[i])):
                t = cv2.resize(img[y:y + cs, x:x + cs], (2 * cs, 2 * cs), interpolation=cv2.INTER_NEAREST)
                t = cv2.cvtColor(t, cv2.COLOR_RGB2BGR)
                cv2.putText(t, name, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 2)
                tiles.append(t)
            name = os.path.join(a.out, f"frame{i:03d}_{region}.png")
            cv2.imwrite(name, np.concatenate(tiles, axis=1))
        print(f"frame {i}: input {psnr(frames[i], clip.references[i]):.2f} dB, lucky "
              f"{psnr(outs['lucky'][i], clip.references[i]):.2f} dB, {best} {psnr(outs[best][i], clip.references[i]):.2f} dB")
    print(f"crops in {a.out}")


if __name__ == "__main__":
    main()
