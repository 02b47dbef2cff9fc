"""Readers for public video-deblurring datasets: each yields aligned (blurred, sharp) frame sequences.

``open_dataset(kind, root, split="test", **opts)`` returns a :class:`Dataset`; its ``sequences()``
are :class:`Sequence` objects, each a sorted list of aligned frame paths and a ``frames()``
iterator of RGB uint8 HxWx3 pairs. The whole tree is checked when the dataset is opened, so a
malformed tree fails at once with an :class:`InputError` that says exactly what is missing.

Layouts (``<seq>`` folders and frames are sorted by name; hidden files are ignored; frames may be
.png, .jpg or .jpeg; input and target frames are paired by file name without extension):

=========  ====================================================================  ================
kind       layout                                                                splits
=========  ====================================================================  ================
gopro      ``ROOT/<split>/<seq>/{blur,blur_gamma,sharp}/*.png``                  train, test
           (``gamma=True`` reads ``blur_gamma/`` instead of ``blur/``)
bsd        ``ROOT/BSD_<exposure>/<split>/<seq>/{Blur,Sharp}/RGB/*.png``          train, valid, test
           (``exposure`` one of 1ms8ms, 2ms16ms (default), 3ms24ms)              (val = valid)
reds       ``ROOT/<split>/<split>_{blur,sharp}/<seq>/*.png``                     train, val
                                                                                 (test = val: the
                                                                                 REDS test split
                                                                                 has no sharp GT)
dvd        ``ROOT/quantitative_datasets/<video>/{input,GT}/*.jpg|png``           none: pass
                                                                                 ``None`` or "test"
synth      ``ROOT/<split>/<seq>/{blur,sharp}/000000.png`` (+ optional            train, test
           ``noisy/`` with the same names), as ``vdeblur synth`` writes it
=========  ====================================================================  ================

Options common to every kind: ``limit`` (int) caps the total number of frame pairs: sequences are
taken in order and the last one kept is truncated.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from vdeblur.errors import InputError, UsageError

IMAGE_EXTS = (".png", ".jpg", ".jpeg")
BSD_EXPOSURES = ("1ms8ms", "2ms16ms", "3ms24ms")

FramePaths = tuple[str, ...]  # (input, target) or (input, target, noisy)
_Read = "tuple[str | None, list[Sequence]]"  # a reader's (normalised split, sequences)


def read_rgb(path: str) -> np.ndarray:
    """Read an image file as RGB uint8 HxWx3; an unreadable file is an InputError naming it."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise InputError(f"cannot read image {path}: {e.strerror or e}") from None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise InputError(f"cannot read image {path}: not a decodable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@dataclass
class Sequence:
    """One aligned clip: ``frame_paths[i]`` is ``(input, target)`` or ``(input, target, noisy)``."""

    name: str
    frame_paths: list[FramePaths] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frame_paths)

    @property
    def has_noisy(self) -> bool:
        return bool(self.frame_paths) and len(self.frame_paths[0]) > 2

    def frames(self, include_noisy: bool = False) -> Iterator[tuple[np.ndarray, ...]]:
        """Yield ``(input, target)`` RGB uint8 pairs (``(input, target, noisy)`` with
        ``include_noisy`` when the sequence has noisy frames). Input and target must be the same size."""
        for paths in self.frame_paths:
            used = paths if include_noisy else paths[:2]
            imgs = tuple(read_rgb(p) for p in used)
            for p, img in zip(used[1:], imgs[1:]):
                if img.shape != imgs[0].shape:
                    raise InputError(
                        f"sequence {self.name}: {p} is {img.shape[1]}x{img.shape[0]} but "
                        f"{used[0]} is {imgs[0].shape[1]}x{imgs[0].shape[0]}"
                    )
            yield imgs


@dataclass
class Dataset:
    kind: str
    root: str
    split: str | None
    _sequences: list[Sequence]

    def sequences(self) -> list[Sequence]:
        return list(self._sequences)

    def __len__(self) -> int:
        return sum(len(s) for s in self._sequences)

    def __iter__(self) -> Iterator[Sequence]:
        return iter(self._sequences)

    def __repr__(self) -> str:
        return (f"Dataset(kind={self.kind!r}, root={self.root!r}, split={self.split!r}, "
                f"sequences={len(self._sequences)}, frames={len(self)})")


# --------------------------------------------------------------------------------------- helpers


def _visible(names: list[str]) -> list[str]:
    return sorted(n for n in names if not n.startswith("."))


def _subdirs(path: str) -> list[str]:
    return [n for n in _visible(os.listdir(path)) if os.path.isdir(os.path.join(path, n))]


def _images(path: str) -> list[str]:
    return [
        n for n in _visible(os.listdir(path))
        if n.lower().endswith(IMAGE_EXTS) and os.path.isfile(os.path.join(path, n))
    ]


def _need_dir(path: str, what: str, rel: str) -> str:
    """``path`` must be a folder; else InputError '<what>: no <rel>/ folder'."""
    if not os.path.isdir(path):
        raise InputError(f"{what}: no {rel.rstrip('/')}/ folder")
    return path


def _check_root(label: str, root: str) -> str:
    root = os.fspath(root)
    if not os.path.exists(root):
        raise InputError(f"{label} root {root}: does not exist")
    if not os.path.isdir(root):
        raise InputError(f"{label} root {root}: not a folder")
    return root


def _stem_map(names: list[str], folder: str, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for n in names:
        stem = os.path.splitext(n)[0]
        if stem in out:
            raise InputError(f"{what}: {folder} has two frames named {stem} ({out[stem]}, {n})")
        out[stem] = n
    return out


def _pair_frames(what: str, dirs: list[tuple[str, str]]) -> list[FramePaths]:
    """Pair the images of several folders by file name (without extension).

    ``dirs``: ``[(label, path), ...]``, the first is the input, the second the target, any more
    extras. Every folder must hold the same frames; a mismatch names the missing files."""
    listed = []
    for label, path in dirs:
        names = _images(path)
        if not names:
            raise InputError(f"{what}: {label} has no images (.png/.jpg/.jpeg) in {path}")
        listed.append((label, path, _stem_map(names, label, what)))
    ref_label, _, ref = listed[0]
    for label, _, other in listed[1:]:
        if set(other) == set(ref):
            continue
        only_ref = sorted(set(ref) - set(other))
        only_other = sorted(set(other) - set(ref))
        parts = []
        if only_ref:
            parts.append(f"missing from {label}: {_few([ref[s] for s in only_ref])}")
        if only_other:
            parts.append(f"missing from {ref_label}: {_few([other[s] for s in only_other])}")
        raise InputError(
            f"{what}: {ref_label} has {len(ref)} frames, {label} has {len(other)} "
            f"({'; '.join(parts)})"
        )
    return [
        tuple(os.path.join(path, m[stem]) for _, path, m in listed)
        for stem in sorted(ref)
    ]


def _few(names: list[str], n: int = 5) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def _norm_split(kind: str, split: str | None, allowed: tuple[str, ...],
                aliases: dict[str, str] | None = None) -> str:
    if split is None:
        raise UsageError(f"{kind} needs a split: one of {', '.join(allowed)}")
    s = str(split).lower()
    s = (aliases or {}).get(s, s)
    if s not in allowed:
        raise UsageError(f"{kind} has no split {split!r}: use one of {', '.join(allowed)}")
    return s


def _no_sequences(label: str, root: str, where: str) -> InputError:
    return InputError(f"{label} root {root}: no sequences under {where}")


# ---------------------------------------------------------------------------------------- readers


def _folder_layout(label: str, root: str, split: str, inp: str, tgt: str,
                   extra: str | None = None) -> list[Sequence]:
    """``ROOT/<split>/<seq>/{inp,tgt[,extra]}/`` (GoPro, synth). ``extra`` is optional per sequence."""
    split_dir = _need_dir(os.path.join(root, split), f"{label} root {root}", split)
    seqs = []
    for name in _subdirs(split_dir):
        seq_dir = os.path.join(split_dir, name)
        what = f"{label} sequence {split}/{name}"
        dirs = [(f"{d}/", _need_dir(os.path.join(seq_dir, d), what, d)) for d in (inp, tgt)]
        if extra and os.path.isdir(os.path.join(seq_dir, extra)):
            dirs.append((f"{extra}/", os.path.join(seq_dir, extra)))
        seqs.append(Sequence(f"{split}/{name}", _pair_frames(what, dirs)))
    if not seqs:
        raise _no_sequences(label, root, split_dir)
    return seqs


def _gopro(root: str, split: str | None, gamma: bool = False) -> _Read:
    split = _norm_split("GoPro", split, ("train", "test"))
    return split, _folder_layout("GoPro", root, split, "blur_gamma" if gamma else "blur", "sharp")


def _synth(root: str, split: str | None) -> _Read:
    split = _norm_split("synth", split, ("train", "test"))
    return split, _folder_layout("synth", root, split, "blur", "sharp", extra="noisy")


def _bsd(root: str, split: str | None, exposure: str = "2ms16ms") -> _Read:
    split = _norm_split("BSD", split, ("train", "valid", "test"), {"val": "valid"})
    exp = str(exposure)
    exp = exp[4:] if exp.upper().startswith("BSD_") else exp
    if exp not in BSD_EXPOSURES:
        raise UsageError(f"BSD has no exposure {exposure!r}: use one of {', '.join(BSD_EXPOSURES)}")
    sub = f"BSD_{exp}"
    exp_dir = os.path.join(root, sub)
    if not os.path.isdir(exp_dir):
        found = [d for d in _subdirs(root) if d.startswith("BSD_")]
        hint = f" (found: {', '.join(found)})" if found else ""
        raise InputError(f"BSD root {root}: no {sub}/ folder{hint}")
    split_dir = _need_dir(os.path.join(exp_dir, split), f"BSD root {root}", f"{sub}/{split}")
    seqs = []
    for name in _subdirs(split_dir):
        seq_dir = os.path.join(split_dir, name)
        what = f"BSD sequence {sub}/{split}/{name}"
        dirs = [(f"{d}/RGB/", _need_dir(os.path.join(seq_dir, d, "RGB"), what, f"{d}/RGB"))
                for d in ("Blur", "Sharp")]
        seqs.append(Sequence(f"{split}/{name}", _pair_frames(what, dirs)))
    if not seqs:
        raise _no_sequences("BSD", root, split_dir)
    return split, seqs


def _reds(root: str, split: str | None) -> _Read:
    split = _norm_split("REDS", split, ("train", "val"), {"test": "val", "valid": "val"})
    label = f"REDS root {root}"
    split_dir = _need_dir(os.path.join(root, split), label, split)
    blur_dir = _need_dir(os.path.join(split_dir, f"{split}_blur"), label, f"{split}/{split}_blur")
    sharp_dir = _need_dir(os.path.join(split_dir, f"{split}_sharp"), label, f"{split}/{split}_sharp")
    blur_seqs, sharp_seqs = _subdirs(blur_dir), _subdirs(sharp_dir)
    only_blur = sorted(set(blur_seqs) - set(sharp_seqs))
    only_sharp = sorted(set(sharp_seqs) - set(blur_seqs))
    if only_blur or only_sharp:
        parts = []
        if only_blur:
            parts.append(f"missing from {split}_sharp/: {_few(only_blur)}")
        if only_sharp:
            parts.append(f"missing from {split}_blur/: {_few(only_sharp)}")
        raise InputError(f"{label}: {split}_blur/ has {len(blur_seqs)} sequences, "
                         f"{split}_sharp/ has {len(sharp_seqs)} ({'; '.join(parts)})")
    seqs = []
    for name in blur_seqs:
        what = f"REDS sequence {split}/{name}"
        dirs = [(f"{split}_blur/{name}/", os.path.join(blur_dir, name)),
                (f"{split}_sharp/{name}/", os.path.join(sharp_dir, name))]
        seqs.append(Sequence(f"{split}/{name}", _pair_frames(what, dirs)))
    if not seqs:
        raise _no_sequences("REDS", root, blur_dir)
    return split, seqs


def _dvd(root: str, split: str | None) -> _Read:
    if split is not None and str(split).lower() != "test":
        raise UsageError(f"DVD has no split {split!r}: it has one test set (use split None or 'test')")
    q_dir = _need_dir(os.path.join(root, "quantitative_datasets"), f"DVD root {root}",
                      "quantitative_datasets")
    seqs = []
    for name in _subdirs(q_dir):
        seq_dir = os.path.join(q_dir, name)
        what = f"DVD video quantitative_datasets/{name}"
        dirs = [(f"{d}/", _need_dir(os.path.join(seq_dir, d), what, d)) for d in ("input", "GT")]
        seqs.append(Sequence(name, _pair_frames(what, dirs)))
    if not seqs:
        raise _no_sequences("DVD", root, q_dir)
    return None, seqs


_READERS = {"gopro": _gopro, "bsd": _bsd, "reds": _reds, "dvd": _dvd, "synth": _synth}
_LABELS = {"gopro": "GoPro", "bsd": "BSD", "reds": "REDS", "dvd": "DVD", "synth": "synth"}
KINDS = tuple(_READERS)


def open_dataset(kind: str, root: str, split: str | None = "test", **opts) -> Dataset:
    """Open a dataset tree and check it. ``kind``: one of :data:`KINDS` (case-insensitive).

    Options: ``limit`` (all kinds, total frame pairs); ``gamma`` (gopro: read ``blur_gamma/``);
    ``exposure`` (bsd: 1ms8ms, 2ms16ms, 3ms24ms). Unknown kind, split or option: UsageError;
    malformed tree: InputError."""
    k = str(kind).lower()
    if k not in _READERS:
        raise UsageError(f"unknown dataset kind {kind!r}: use one of {', '.join(KINDS)}")
    limit = opts.pop("limit", None)
    allowed = {"gopro": {"gamma"}, "bsd": {"exposure"}}.get(k, set())
    bad = sorted(set(opts) - allowed)
    if bad:
        ok = ", ".join(sorted(allowed | {"limit"}))
        raise UsageError(f"{_LABELS[k]} dataset has no option {', '.join(bad)} (options: {ok})")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise UsageError(f"dataset limit must be a positive integer, got {limit!r}")
    root = _check_root(_LABELS[k], root)
    norm_split, seqs = _READERS[k](root, split, **opts)
    if limit is not None:
        kept, left = [], limit
        for s in seqs:
            if left <= 0:
                break
            kept.append(Sequence(s.name, s.frame_paths[:left]))
            left -= len(kept[-1])
        seqs = kept
    return Dataset(_LABELS[k], root, norm_split, seqs)
