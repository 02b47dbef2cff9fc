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


def _rcc(files: dict[str, tuple[bytes, bool]]) -> bytes:
    """A Qt resource file (format version 2) holding ``files`` (name -> (bytes, zlib)) in one folder
    ``dir``, written as Qt's rcc lays it out, to check the reader against."""
    import struct
    import zlib

    names, data, nodes = b"", b"", []

    def name(n: str) -> int:
        nonlocal names
        off = len(names)
        enc = n.encode("utf-16-be")
        names += struct.pack(">HI", len(n), 0) + enc
        return off

    root = name("")  # unused for the root
    d = name("dir")
    nodes.append(struct.pack(">IHII", root, 2, 1, 1) + b"\0" * 8)  # root: 1 child, node 1
    nodes.append(struct.pack(">IHII", d, 2, len(files), 2) + b"\0" * 8)  # dir: children from node 2
    for n, (b, z) in files.items():
        off = len(data)
        payload = struct.pack(">I", len(b)) + zlib.compress(b) if z else b
        data += struct.pack(">I", len(payload)) + payload
        nodes.append(struct.pack(">IHHHI", name(n), 1 if z else 0, 0, 0, off) + b"\0" * 8)
    tree = b"".join(nodes)
    head = 4 + 16
    return b"qres" + struct.pack(">IIII", 2, head, head + len(tree), head + len(tree) + len(data)) + tree + data + names


def test_rcc_reader_returns_the_files_stored_plain_and_zlib():
    img = cv2.imencode(".png", np.arange(48, dtype=np.uint8).reshape(4, 4, 3))[1].tobytes()
    out = gp.rcc_files(_rcc({"a.png": (img, False), "b.txt": (b"hello " * 50, True)}))
    assert out == {"dir/a.png": img, "dir/b.txt": b"hello " * 50}
    import pytest

    with pytest.raises(ValueError):
        gp.rcc_files(b"not a resource file at all")


def test_free_licences_and_puzzle_desktop_licence(tmp_path):
    for lic in ("GPL-3+", "LGPL-2.1+", "CC-BY-SA-3.0 (usr/share/lxqt/wallpapers/License)", "CC0", "Public Domain",
                "BSD-3-Clause", "CC-BY-2.0 (x)", "GFDL-1.2+"):
        assert gp.free_licence(lic), lic
    for lic in ("unknown", "CC-BY-NC-SA-4.0", "CC-BY-ND-3.0", "custom", "proprietary"):
        assert not gp.free_licence(lic), lic
    (tmp_path / "bee.jpg").write_bytes(b"")
    (tmp_path / "bee.desktop").write_text("[Desktop Entry]\nName=Bee\nX-KDE-PluginInfo-License=Public Domain\n")
    assert gp.desktop_licence(str(tmp_path / "bee.jpg")) == "Public Domain"
    assert gp.desktop_licence(str(tmp_path / "other.jpg")) is None


def test_shots_of_one_demo_scene_share_a_split():
    for scene in ("bar55", "grand_canyon", "pool", "spiff", "new_wave"):
        key = gp.SCENE_SUFFIX.sub(r"\1", f"kphotoalbum-kphotoalbum_demo_{scene}_2")
        assert key == f"kphotoalbum-kphotoalbum_demo_{scene}"
    assert gp.SCENE_SUFFIX.sub(r"\1", "mate-backgrounds-x_2") == "mate-backgrounds-x_2"  # only the demo album
