"""benchmarks/gather_photos.py: the photograph filter, licences from Debian copyright files, splits."""

import importlib.util
from pathlib import Path

import cv2
import numpy as np

_spec = importlib.util.spec_from_file_location(
    "gather_photos", Path(__file__).resolve().parents[1] / "benchmarks" / "gather_photos.py")
gp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gp)


def test_drawings_are_dropped_photographs_kept():
    import skimage.data as data

    assert gp.photographic(gp.photo_stats(data.astronaut())) is None
    assert gp.photographic(gp.photo_stats(np.stack([data.camera()] * 3, -1))) is None
    drawing = np.full((600, 800, 3), 230, np.uint8)
    cv2.rectangle(drawing, (100, 100), (400, 300), (20, 90, 200), -1)
    cv2.circle(drawing, (600, 400), 120, (200, 40, 40), -1)
    assert "flat" in gp.photographic(gp.photo_stats(drawing))
    ramp = np.repeat(np.linspace(0, 255, 800)[None, :, None], 600, 0).repeat(3, 2).astype(np.uint8)
    assert gp.photographic(gp.photo_stats(ramp)) is not None  # a smooth gradient: no texture


def test_licence_from_copyright_stanzas():
    text = """Format: x

Files: *
Copyright: someone
License: GPL-2+

Files: desktop/Ubuntu-Mate-*-no-logo.png
Copyright: other
License: CC-BY-SA-4.0

Files: debian/*
License: GPL-2+
"""
    st = gp.copyright_stanzas(text)
    assert gp.licence_of("usr/share/backgrounds/mate/desktop/Ubuntu-Mate-Cold-no-logo.png", st) == "CC-BY-SA-4.0"
    assert gp.licence_of("usr/share/backgrounds/mate/nature/Aqua.jpg", st) == "GPL-2+"
    assert gp.licence_of("x/y.png", [(["16.04/aitz.jpg"], "CC-BY-4.0")]) == "unknown"
    assert gp.licence_of("usr/share/backgrounds/aitz.jpg", [(["16.04/aitz.jpg"], "CC-BY-4.0")]) == "CC-BY-4.0"


def test_split_is_by_name_and_roughly_70_10_20():
    names = [f"photo-{i}" for i in range(2000)]
    splits = [gp.split_of(n) for n in names]
    assert splits == [gp.split_of(n) for n in names]
    share = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert abs(share["train"] - 0.7) < 0.05 and abs(share["val"] - 0.1) < 0.03 and abs(share["test"] - 0.2) < 0.04
