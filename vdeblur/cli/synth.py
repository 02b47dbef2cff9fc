"""`vdeblur synth SOURCE -o OUT`: a blurred/sharp training set in the GoPro layout.

OUT/{train,test}/<sequence>/{blur,sharp}/000000.png (blur and sharp share file names), plus
noisy/ (the blurred frame with R2-D4 eq. 1 Poisson-Gaussian noise) with --noise.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import deque
from pathlib import Path
from typing import Annotated, Iterator, Optional

import numpy as np
import typer

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def _parse_size(size: Optional[str]) -> tuple[int, int] | None:
    from vdeblur.errors import UsageError

    if size is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", size)
    if not m or int(m.group(1)) < 8 or int(m.group(2)) < 8:
        raise UsageError(f"bad --size {size!r}: expected WxH, both >= 8 (e.g. 640x360)")
    return int(m.group(1)), int(m.group(2))


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    from vdeblur.errors import OutputError

    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OutputError(f"cannot write {path}")


class _SeqWriter:
    """Writes one sequence's frames: blur/, sharp/ and (with noise) noisy/."""

    def __init__(self, root: Path, name: str, noise: tuple[float, float] | None, rng: np.random.Generator):
        self.dir = root / name
        self.name = name
        self.noise = noise
        self.rng = rng
        self.frames = 0
        self.flags: list[bool] = []  # blurred, per frame
        self.subs = ("blur", "sharp") + (("noisy",) if noise else ())
        for sub in self.subs:
            (self.dir / sub).mkdir(parents=True, exist_ok=True)

    @property
    def blurred(self) -> int:
        return sum(self.flags)

    def split_tail(self, keep: int, name: str) -> "_SeqWriter":
        """Move frames ``keep``... into a new sequence ``name`` beside this one (renumbered from 0)."""
        tail = _SeqWriter(self.dir.parent, name, self.noise, self.rng)
        for j in range(keep, self.frames):
            for sub in self.subs:
                os.replace(self.dir / sub / f"{j:06d}.png", tail.dir / sub / f"{j - keep:06d}.png")
        tail.frames, tail.flags = self.frames - keep, self.flags[keep:]
        self.frames, self.flags = keep, self.flags[:keep]
        return tail

    def add(self, blur: np.ndarray, sharp: np.ndarray, blurred: bool) -> None:
        from vdeblur.data.degrade import poisson_gaussian

        fn = f"{self.frames:06d}.png"
        _write_png(self.dir / "blur" / fn, blur)
        _write_png(self.dir / "sharp" / fn, sharp)
        if self.noise:
            _write_png(self.dir / "noisy" / fn, poisson_gaussian(blur, *self.noise, self.rng))
        self.frames += 1
        self.flags.append(bool(blurred))


def _decode(source: str, size: tuple[int, int] | None) -> Iterator[np.ndarray]:
    """Sharp RGB frames of a video, one at a time (PyAV, threaded decoding)."""
    import av
    import cv2

    from vdeblur.errors import InputError

    try:
        container = av.open(source)
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(f"{source}: not a readable video ({e})") from e
    with container:
        if not container.streams.video:
            raise InputError(f"{source}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(format="rgb24", threads=1)
                if size is not None and (rgb.shape[1], rgb.shape[0]) != size:
                    interp = cv2.INTER_AREA if size[0] < rgb.shape[1] else cv2.INTER_CUBIC
                    rgb = cv2.resize(rgb, size, interpolation=interp)
                yield rgb
        except av.error.FFmpegError as e:
            raise InputError(f"{source}: cannot decode ({e})") from e


def _from_video(source: str, train: Path, *, average: int, linearize: bool, partial: bool,
                noise, seed: int, size, sequence_length: int) -> list[_SeqWriter]:
    """Consecutive chunks of ``sequence_length`` source frames, one sequence each (no frame shared)."""
    from vdeblur.data.degrade import average_frames, rebvids_plan
    from vdeblur.errors import InputError

    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(source).stem) or "video"
    seqs: list[_SeqWriter] = []
    frames = _decode(source, size)
    chunk = 0
    done = False
    while not done:
        rng = np.random.default_rng([seed, chunk])
        writer: _SeqWriter | None = None

        def out(blur, sharp, blurred) -> None:
            nonlocal writer
            if writer is None:
                writer = _SeqWriter(train, f"{stem}_{chunk:03d}", noise, np.random.default_rng([seed, chunk, 1]))
            writer.add(blur, sharp, blurred)

        used = 0
        if partial:  # REBVIDS: intervals of 7-12 source frames averaged, the rest sharp
            plan = rebvids_plan(sequence_length, rng)
            buf: list[np.ndarray] = []
            for step in plan:
                need = 1 if step is None else step[1] - step[0]
                while len(buf) < need:
                    f = next(frames, None)
                    if f is None:
                        break
                    buf.append(f)
                    used += 1
                if len(buf) < need:  # the video ended inside an interval: its frames stay sharp
                    for f in buf:
                        out(f, f, False)
                    done = True
                    break
                if step is None:
                    out(buf[0], buf[0], False)
                else:
                    out(average_frames(buf, linearize), buf[len(buf) // 2], True)
                buf = []
        else:  # GoPro: each frame with a full window of ``average`` frames centred on it
            win: deque[np.ndarray] = deque(maxlen=average)
            for _ in range(sequence_length):
                f = next(frames, None)
                if f is None:
                    done = True
                    break
                used += 1
                win.append(f)
                if len(win) == average:
                    out(average_frames(win, linearize), win[average // 2], average > 1)
        if used < sequence_length:
            done = True
        if writer is not None:
            seqs.append(writer)
        chunk += 1
    if not seqs:
        raise InputError(f"{source}: too few frames (need at least --average {average})")
    return seqs


def _list_stills(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def _from_still(path: Path, root: Path, name: str, *, average: int, linearize: bool, partial: bool,
                noise, rng: np.random.Generator, noise_rng: np.random.Generator, size,
                frames_per_still: int, motion: float = 1.0) -> _SeqWriter:
    import cv2

    from vdeblur.data.degrade import average_frames, camera_motion_renderer, rebvids_plan
    from vdeblur.errors import InputError

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: not a readable image")
    still = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if partial:
        plan = rebvids_plan(frames_per_still * 12, rng)[:frames_per_still]
        lengths = [1 if s is None else s[1] - s[0] for s in plan]
    else:
        lengths = [average] * frames_per_still
    render = camera_motion_renderer(still, sum(lengths), rng, size=size, motion=motion)
    w = _SeqWriter(root, name, noise, noise_rng)
    k = 0
    for n in lengths:
        subs = [render(k + j) for j in range(n)]
        target = render(list(range(k, k + n))) if n > 1 else subs[0]  # aligned with the blur
        k += n
        w.add(average_frames(subs, linearize), target, n > 1)
    return w


def synth(
    source: Annotated[str, typer.Argument(help="A video file, or a folder of still images.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Output folder (must not exist or be empty).")],
    average: Annotated[int, typer.Option("--average", help="Sharp frames averaged per blurred frame (GoPro: 7; 1 = no blur).")] = 7,
    linearize: Annotated[bool, typer.Option("--linearize", help="Average in linear light (undo gamma 2.2, as GoPro).")] = False,
    partial: Annotated[bool, typer.Option("--partial", help="REBVIDS schedule: only some intervals of 7-12 frames are averaged, the rest stay sharp (ignores --average).")] = False,
    noise: Annotated[Optional[str], typer.Option("--noise", help="Also write noisy/: Poisson-Gaussian noise (R2-D4 eq. 1): low, moderate or severe.")] = None,
    test_fraction: Annotated[float, typer.Option("--test-fraction", help="Share of sequences held out for test (whole chunks / whole stills; from a single sequence, its last frames).")] = 0.2,
    frames_per_still: Annotated[int, typer.Option("--frames-per-still", help="Frames per sequence made from one still image.")] = 20,
    motion: Annotated[float, typer.Option("--motion", help="Stills: camera speed factor (2 = twice the pan speed and shake, longer blur).")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same dataset).")] = 0,
    size: Annotated[Optional[str], typer.Option("--size", help="Resize frames to WxH.")] = None,
    sequence_length: Annotated[int, typer.Option("--sequence-length", help="Source video frames per sequence.")] = 100,
    json: Annotated[bool, typer.Option("--json", help="JSON lines on stdout.")] = False,
) -> None:
    """Make a blurred/sharp training set (GoPro layout) from a video or from still images."""
    from vdeblur.cli.output import json_line
    from vdeblur.data.degrade import NOISE_PRESETS
    from vdeblur.errors import InputError, OutputError, UsageError

    if average < 1:
        raise UsageError(f"--average must be >= 1, not {average}")
    if noise is not None and noise not in NOISE_PRESETS:
        raise UsageError(f"unknown --noise {noise!r}: choose {', '.join(NOISE_PRESETS)}")
    if not 0 <= test_fraction < 1:
        raise UsageError(f"--test-fraction must be in [0, 1), not {test_fraction}")
    if motion <= 0:
        raise UsageError(f"--motion must be > 0, not {motion}")
    if frames_per_still < 1:
        raise UsageError(f"--frames-per-still must be >= 1, not {frames_per_still}")
    if sequence_length < 1 or (not partial and sequence_length < average):
        raise UsageError(f"--sequence-length must be >= 1 and >= --average, not {sequence_length}")
    wh = _parse_size(size)
    noise_params = NOISE_PRESETS[noise] if noise else None
    src = Path(source)
    if not src.exists():
        raise InputError(f"{source}: no such file or folder")
    stills = _list_stills(src) if src.is_dir() else None
    if stills is not None and not stills:
        raise InputError(f"{source}: no images ({', '.join(sorted(IMAGE_EXTS))}) in the folder")
    dest = Path(out)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise OutputError(f"{out} exists and is not an empty folder")
    if dest.resolve() == src.resolve():
        raise OutputError("the output folder is the input")

    tmp = dest.parent / f".{dest.name}.partial-{os.getpid()}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        train, test = tmp / "train", tmp / "test"
        train.mkdir(parents=True)
        test.mkdir()
        kw = dict(average=average, linearize=linearize, partial=partial, noise=noise_params)
        if stills is None:
            seqs = _from_video(source, train, seed=seed, size=wh, sequence_length=sequence_length, **kw)
            n_test = _n_test(len(seqs), test_fraction)
            splits = ["train"] * (len(seqs) - n_test) + ["test"] * n_test  # the last chunks
        else:
            n_test = _n_test(len(stills), test_fraction)
            order = np.random.default_rng([seed]).permutation(len(stills))
            is_test = {int(i) for i in order[len(stills) - n_test:]}
            splits = ["test" if i in is_test else "train" for i in range(len(stills))]
            seqs, used = [], set()
            for i, p in enumerate(stills):
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", p.stem) or "still"
                while name in used:
                    name += "_"
                used.add(name)
                seqs.append(_from_still(p, train, name, rng=np.random.default_rng([seed, i]),
                                        noise_rng=np.random.default_rng([seed, i, 1]), size=wh,
                                        frames_per_still=frames_per_still, motion=motion, **kw))
        if len(seqs) == 1 and test_fraction > 0 and seqs[0].frames >= 2:
            # one sequence (a short video, one still): its last frames are the test split, so
            # `vdeblur bench --root OUT` has something to read
            n = seqs[0].frames
            keep = n - min(n - 1, max(1, round(test_fraction * n)))
            seqs.append(seqs[0].split_tail(keep, f"{seqs[0].name}_test"))
            splits = ["train", "test"]
        for s, split in zip(seqs, splits):
            if split == "test":
                os.replace(s.dir, test / s.name)
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    except OSError as e:
        raise OutputError(f"cannot write {out}: {e.strerror or e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    summary = {
        "out": str(dest),
        "sequences": len(seqs),
        "train": splits.count("train"),
        "test": splits.count("test"),
        "frames": sum(s.frames for s in seqs),
        "train_frames": sum(s.frames for s, sp in zip(seqs, splits) if sp == "train"),
        "test_frames": sum(s.frames for s, sp in zip(seqs, splits) if sp == "test"),
        "blurred_frames": sum(s.blurred for s in seqs),
        "noise": noise,
    }
    if json:
        for s, split in zip(seqs, splits):
            json_line({"split": split, "sequence": s.name, "frames": s.frames})
        json_line({"summary": summary})
    else:
        print(f"wrote {summary['frames']} blur/sharp pairs in {len(seqs)} sequence{'' if len(seqs) == 1 else 's'} "
              f"({summary['train']} train, {summary['test']} test) to {dest}")


def _n_test(n: int, fraction: float) -> int:
    """round(fraction * n), but at least one test and one train sequence when n >= 2."""
    if n < 2 or fraction <= 0:
        return 0
    return min(n - 1, max(1, round(fraction * n)))
