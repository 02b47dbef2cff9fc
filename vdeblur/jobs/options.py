"""The settings of a run and the checks that need nothing opened or built.

``RunOptions`` says how each frame is restored and encoded; ``JobOptions`` how the files are
cut into spans and where the spans run. ``check_options`` validates a run from the method's
registered spec alone (no net is built, no weights are read); the checks of one input/output
pair come before anything of it is opened.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Iterator

from vdeblur.errors import DamagedInputError, InputError, OutputError, UsageError


if TYPE_CHECKING:
    import numpy as np

    from vdeblur.engine.pipeline import Summary

X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")


@dataclass
class RunOptions:
    method: str = "identity"
    method_cfg: dict[str, Any] | None = None
    select: str = "laplacian"
    select_every: int = 1
    threshold: float | None = None
    select_weights: str | None = None  # for --select fsm
    device: str = "auto"
    precision: str = "fp32"
    batch: int = 0  # 0: auto (4 on a GPU, 1 on the CPU)
    tile: int | None = None  # tile size; None: whole frames, tiles only when a frame does not fit
    tile_overlap: int = 32
    max_memory: int | None = None  # bytes a batch may take (--max-memory); None: a share of free memory
    ensemble: bool = False  # geometric self-ensemble (8 flips/rotations, averaged)
    codec: str = "libx264"
    crf: int | None = 18
    preset: str | None = None
    pix_fmt: str | None = None
    io: str = "pyav"  # or "ffmpeg"
    force: bool = False
    format: str | None = None  # output container, when the name does not say
    start: float | None = None  # seconds: restore from the first frame at or after it (--start)
    frames: int | None = None  # restore this many frames only (--frames)
    labels: str | None = None  # --labels FILE: saved labels (classify --json/--csv) instead of the selector
    labels_piece: bool = False  # the labels number the piece's frames (a piece's own pre-pass), not the video's


#: default segment length, seconds of video (a segment ends at the first keyframe after it)
SEGMENT_SECONDS = 60.0


@dataclass
class JobOptions:
    """How the inputs of one run become spans, and where the spans run."""

    segment: float = SEGMENT_SECONDS  # seconds; 0: never cut (one pass)
    resume: bool = False
    cluster: str | None = None
    task_cpus: float = 1.0
    task_gpus: float | None = None
    keep_going: bool = False
    reference: str | None = None


def check_output(inp: str, out: str, force: bool) -> None:
    """Refuse outputs that would lose data: OUT == IN, an existing OUT without --force, a bad place."""
    if out == "-":
        return
    if inp != "-" and os.path.exists(inp):
        if os.path.abspath(inp) == os.path.abspath(out) or (
            os.path.exists(out) and os.path.samefile(inp, out)
        ):
            raise OutputError(f"output is the input ({out}); refusing to overwrite it")
    if os.path.isdir(out):
        raise OutputError(f"output is a directory: {out}")
    if os.path.exists(out) and not force:
        raise OutputError(f"output exists: {out} (use --force to overwrite)")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise OutputError(f"output folder does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output folder is not writable: {parent}")


def check_output_format(out: str, fmt: str | None) -> None:
    """Fail before decoding when the output name names no container FFmpeg can write."""
    import av

    from vdeblur.io.writer import temp_path_for

    if out == "-":
        return
    tmp = temp_path_for(out)
    try:
        av.open(tmp, "w", format=fmt).close()
    except (av.error.FFmpegError, ValueError) as e:
        ext = os.path.splitext(out)[1] or "(no extension)"
        raise OutputError(f"cannot write a video named {out}: no container for {ext} ({e}); use .mp4, .mkv, .mov or --format") from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def check_options(o: RunOptions) -> Any:
    """The usage errors of ``o``, from the method's registered spec (nothing is opened, no net is
    built, no weights are read); returns the spec."""
    from vdeblur.engine.precision import check_precision
    from vdeblur.methods.registry import check_config

    spec = check_config(o.method, o.method_cfg or {})
    check_precision(o.precision)
    if o.io not in ("pyav", "ffmpeg"):
        raise UsageError(f"bad --io {o.io!r}: expected pyav or ffmpeg")
    from vdeblur.io.writer import check_video_encoder
    check_video_encoder(o.codec, o.io)  # an audio or unknown encoder: a usage error, before anything is opened
    if o.preset and o.codec in ("libx264", "libx265") and o.preset not in X26X_PRESETS:
        raise UsageError(f"bad --preset {o.preset!r} for {o.codec}: expected one of {', '.join(X26X_PRESETS)}")
    if o.start is not None and not (math.isfinite(o.start) and o.start >= 0):
        raise UsageError(f"bad --start {o.start}: expected a time at or after 0")
    if o.frames is not None and o.frames < 1:
        raise UsageError(f"bad --frames {o.frames}: expected 1 or more")
    if is_piece(o) and o.io != "pyav":
        raise UsageError("--start and --frames need --io pyav")
    if o.labels and is_piece(o) and not o.labels_piece:
        raise UsageError("--labels labels the whole video; it does not combine with --start or --frames")
    return spec


def check_file(o: RunOptions, inp: str, out: str) -> None:
    """The checks of one input/output pair, before anything of it is opened."""
    if o.io == "pyav" and "-" in (inp, out):
        raise UsageError("'-' (stdin/stdout) needs --io ffmpeg")
    check_output(inp, out, o.force)


def whole_file_context(o: RunOptions, inp: str) -> bool:
    """Whether the frames are labelled with the whole file, or the whole piece (--start,
    --frames), in view (select/context.py): the input is a file read by PyAV, the selector has a
    whole-file rule and no --labels are given; otherwise the selector streams, as for a pipe."""
    from vdeblur.select.context import has_context

    return o.io == "pyav" and inp != "-" and os.path.isfile(inp) and not o.labels and has_context(o.select)


def is_piece(o: RunOptions) -> bool:
    """--start or --frames: a piece of the video is restored."""
    return bool(o.start) or o.frames is not None


def output_pix_fmt(o: RunOptions, info: Any) -> str:
    """--pix-fmt, checked against the encoder, or the input's 8-bit equivalent."""
    from vdeblur.io.writer import default_pix_fmt, encoder_formats, is_pix_fmt

    pix_fmt = o.pix_fmt or default_pix_fmt(info, o.codec)
    supported = encoder_formats(o.codec) if o.io == "pyav" else []
    if o.pix_fmt and (not is_pix_fmt(pix_fmt) or (supported and pix_fmt not in supported)):
        raise UsageError(f"bad --pix-fmt {pix_fmt!r} for {o.codec}" + (f": expected one of {', '.join(supported)}" if supported else ""))
    return pix_fmt


def open_reference(reference: str, info: Any, high_depth: bool) -> Any:
    """A reader of the sharp reference, checked against the input's size and frame count."""
    from vdeblur.io.reader import VideoReader

    ref_reader = VideoReader(reference, copy_streams=False, name=f"reference {reference}")
    ri = ref_reader.info
    try:
        if (ri.width, ri.height) != (info.width, info.height):
            raise InputError(
                f"reference size {ri.width}x{ri.height} differs from input size {info.width}x{info.height}"
            )
        if ri.frames and info.frames and ri.frames != info.frames:
            raise InputError(f"reference has {ri.frames} frames, input has {info.frames}")
    except InputError:
        ref_reader.close()
        raise
    ref_reader.high_depth = high_depth
    return ref_reader


def reference_frames(reader: Any, o: RunOptions | None = None) -> Iterator[np.ndarray]:
    """The reference's frames; with --start/--frames, the same piece of it as of the input."""
    from vdeblur.io.reader import Frame
    from vdeblur.jobs.segments import piece_items

    for item in (piece_items(reader, o.start, o.frames) if o is not None and is_piece(o) else reader.items()):
        if isinstance(item, Frame):
            yield item.rgb()


def piece_info(info: Any, o: RunOptions) -> Any:
    """``info`` with the piece's expected frame count (for the progress display)."""
    total = info.expected_frames
    if total is not None and o.start:
        total = max(0, total - round(o.start * float(info.rate or 25)))
    if o.frames is not None:
        total = o.frames if total is None else min(total, o.frames)
    return replace(info, frames=total, duration=None)


def check_damage(out: str, stats: Any, info: Any, summary: Summary, lost: int = 0) -> None:
    """Raise DamagedInputError (OUT is written) when frames were lost: ``lost`` known, or what
    ``stats`` says against the container's frame count. The error carries the run's summary."""
    if not (lost or stats.damaged(info)):
        return
    lost = max(lost, stats.lost(info))
    why = f" ({stats.demux_error})" if stats.demux_error else ""
    exp = info.expected_frames
    err = DamagedInputError(
        f"input is damaged{why}: {stats.decoded} frames decoded"
        + (f" of {exp} expected" if exp else "")
        + f", {lost} lost; {out} holds the {summary.frames} decoded frames"
    )
    err.summary = summary
    raise err
