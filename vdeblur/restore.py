"""restore_video: the library call behind `vdeblur run` (one input -> one output)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import numpy as np

from vdeblur.metrics.reference import ReferenceMetrics
from vdeblur.errors import DamagedInputError, InputError, OutputError, UsageError
from vdeblur.engine.pipeline import Engine, FrameResult, Summary


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


@dataclass
class Setup:
    method: Any
    restorer: Any
    selector: Any
    device: Any  # None: frames go from decoder to encoder untouched
    batch: int


def check_options(o: RunOptions) -> Any:
    """The usage errors of ``o`` (nothing is opened); returns the method."""
    from vdeblur.engine.precision import check_precision
    from vdeblur.methods.registry import create

    method = create(o.method, **(o.method_cfg or {}))
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
    return method


def whole_file_context(o: RunOptions, inp: str) -> bool:
    """Whether the frames are labelled with the whole file in view (select/context.py): the input
    is a file read by PyAV, the selector has a whole-file rule, and the whole video is restored
    (no --labels, --start or --frames); otherwise the selector streams, as for a pipe."""
    from vdeblur.select.context import has_context

    return (o.io == "pyav" and inp != "-" and os.path.isfile(inp) and not o.labels and not is_piece(o)
            and has_context(o.select))


def is_piece(o: RunOptions) -> bool:
    """--start or --frames: a piece of the video is restored."""
    return bool(o.start) or o.frames is not None


def prepare(o: RunOptions, inp: str, out: str, *, need_metrics: bool = False, check_out: bool = True,
            warn: Callable[[str], None] = lambda m: None) -> Setup:
    """Check the options (usage errors first: nothing is opened before they make sense) and build
    the method, restorer and selector."""
    from vdeblur.select import make_selector

    method = check_options(o)
    if getattr(method, "is_identity", False) and not need_metrics:
        device = None  # frames go from decoder to encoder: no tensors, no torch import
        restorer: Any = SimpleNamespace(method=method)
    else:
        from vdeblur.engine.device import resolve_device
        from vdeblur.engine.restorer import Restorer

        device = resolve_device(o.device)
        restorer = Restorer(method, device, o.precision, warn=warn, tile=o.tile, tile_overlap=o.tile_overlap,
                            ensemble=o.ensemble, max_memory=o.max_memory)
    if o.labels:
        from vdeblur.select.labels import labels_selector

        if is_piece(o):
            raise UsageError("--labels labels the whole video; it does not combine with --start or --frames")
        selector: Any = labels_selector(o.labels)
    else:
        selector = make_selector(o.select, threshold=o.threshold, every=o.select_every,
                                 weights=o.select_weights, device=device or "cpu")
    if o.io == "pyav" and "-" in (inp, out):
        raise UsageError("'-' (stdin/stdout) needs --io ffmpeg")
    if check_out:
        check_output(inp, out, o.force)
    batch = o.batch or (4 if device is not None and device.type == "cuda" else 1)
    return Setup(method, restorer, selector, device, batch)


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


def _reference_frames(reader: Any, o: RunOptions | None = None) -> Iterator[np.ndarray]:
    """The reference's frames; with --start/--frames, the same piece of it as of the input."""
    from vdeblur.io.reader import Frame
    from vdeblur.io.segments import piece_items

    for item in (piece_items(reader, o.start, o.frames) if o is not None and is_piece(o) else reader.items()):
        if isinstance(item, Frame):
            yield item.rgb()


def restore_video(
    inp: str,
    out: str,
    opts: RunOptions | None = None,
    *,
    reference: str | None = None,
    on_start: Callable[[Any], None] | None = None,
    on_result: Callable[[FrameResult], None] | None = None,
    warn: Callable[[str], None] = lambda m: None,
) -> Summary:
    """Restore ``inp`` into ``out``. Raises VdeblurError kinds; never leaves a partial ``out``."""
    o = opts or RunOptions()
    setup = prepare(o, inp, out, need_metrics=reference is not None, warn=warn)
    restorer, selector, device, batch = setup.restorer, setup.selector, setup.device, setup.batch

    from vdeblur.io.writer import VideoWriter, is_high_depth

    if o.io == "ffmpeg":
        from vdeblur.io.pipe import PipeReader
        reader = PipeReader(inp)
    else:
        from vdeblur.io.reader import VideoReader
        reader = VideoReader(inp)
    ref_reader = None
    try:
        info = reader.info
        pix_fmt = output_pix_fmt(o, info)
        reader.high_depth = is_high_depth(pix_fmt)
        if o.io == "pyav":
            check_output_format(out, o.format)
        if whole_file_context(o, inp):  # label with the whole file in view: one decode-only pre-pass
            from vdeblur.select.context import ContextSelector, prepass

            selector = ContextSelector(prepass(inp, threshold=o.threshold, every=o.select_every), o.select_every)
        ref_iter = None
        metrics = None
        if reference is not None:
            ref_reader = open_reference(reference, info, reader.high_depth)
            ref_iter = _reference_frames(ref_reader, o)
            metrics = ReferenceMetrics(device)
        items = reader.items()
        if is_piece(o):
            from vdeblur.io.segments import piece_items, trim_chapters

            items = piece_items(reader, o.start, o.frames)
            info.chapters = trim_chapters(info.chapters, o.start, o.frames, info.rate)
        if on_start is not None:
            on_start(_piece_info(info, o) if is_piece(o) else info)
        engine = Engine(
            restorer,
            selector,
            batch_size=batch,
            reference=ref_iter,
            metrics=metrics,
            on_result=on_result,
        )
        if o.io == "ffmpeg":
            from vdeblur.io.pipe import PipeWriter
            writer = PipeWriter(out, info, reader, codec=o.codec, crf=o.crf, preset=o.preset,
                                pix_fmt=pix_fmt, format=o.format)
        else:
            writer = VideoWriter(out, info, copy_streams=reader.copy, codec=o.codec, crf=o.crf,
                                 preset=o.preset, pix_fmt=pix_fmt, format=o.format)
        with writer:
            summary = engine.run(items, writer.write_frame, writer.write_packet)
            if ref_iter is not None and next(ref_iter, None) is not None:
                raise InputError(f"reference has more frames than the input ({summary.frames})")
            if summary.frames == 0 and o.start and not (reader.stats.decode_errors or reader.stats.demux_error):
                raise UsageError(f"--start {o.start:g} is past the last frame of {reader.name}")
            if summary.frames == 0:
                raise InputError(f"no frame of {reader.name} could be decoded")
            writer.commit()
    finally:
        reader.close()
        if ref_reader is not None:
            ref_reader.close()
    if is_piece(o):  # frames outside the piece are not decoded: only decode and demux errors count
        info = replace(info, frames=None, duration=None)
    check_damage(out, reader.stats, info, summary)
    return summary


def _piece_info(info: Any, o: RunOptions) -> Any:
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
