"""One span of one input, restored: reader -> selector -> engine -> writer, wired once.

A span is the whole input (or the piece ``--start``/``--frames`` names), written to OUT with
the input's other streams copied in the same pass; or one keyframe segment of a plan, written
(video only) to a part file that the job joins later. A segment also decodes the frames around
it that the method's and the selector's windows read (its context): the method's own warm-up
frames are restored, to warm a recurrent or windowed method, and none of them is written, so no
frame is written twice and each segment gives the frames one pass would.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

from vdeblur.engine.pipeline import Engine, FrameResult, Summary
from vdeblur.errors import InputError, InternalError, OutputError, UsageError
from vdeblur.jobs.build import build
from vdeblur.jobs.options import (
    RunOptions, check_damage, check_output_format, is_piece, open_reference, output_pix_fmt, piece_info,
    reference_frames, whole_file_context,
)
from vdeblur.jobs.segments import Segment

#: frames restored before a segment's first one to warm a recurrent method's state
RECURRENT_WARMUP = 5
PART_FORMATS = ("mp4", "mov", "nut")  # the first that holds the codec; all keep the time base


def warmup_frames(method: Any) -> int:
    """Frames before a segment the method restores (not written): its past window, or a
    recurrent method's warm-up."""
    return max(int(method.past), RECURRENT_WARMUP if method.recurrent else 0)


def context_frames(method: Any, selector: Any) -> tuple[int, int]:
    """(before, after) a segment: frames decoded so that the method's window and the selector's
    window see what they would see in one pass. Only the method's warm-up is restored."""
    before = max(warmup_frames(method), int(getattr(selector, "history", 0)))
    after = max(int(method.future), int(getattr(selector, "lookahead", 0)))
    return before, after


@dataclass
class Span:
    """Where one pass writes (``out``: OUT, or a part file) and which frames it restores
    (``segment`` None: the whole input or its piece)."""

    out: str
    segment: Segment | None = None


@dataclass
class SpanResult:
    """What one pass did. A segment's rows are numbered in the whole video (they go to the job,
    which reports them in order); a whole span reports its frames as they are written."""

    summary: Summary
    stats: Any  # the reader's ReadStats
    info: Any  # the input's VideoInfo
    rows: list[FrameResult] = field(default_factory=list)


def restore_span(
    inp: str,
    span: Span,
    o: RunOptions,
    *,
    reference: str | None = None,
    on_start: Callable[[Any], None] | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
    warn: Callable[[str], None] = lambda m: None,
) -> SpanResult:
    """Restore ``span`` of ``inp``. Raises VdeblurError kinds; never leaves a partial output."""
    from vdeblur.io.writer import is_high_depth

    built = build(o, need_metrics=reference is not None, warn=warn)
    seg = span.segment
    if o.labels:
        from vdeblur.select.labels import labels_selector

        selector = labels_selector(o.labels)
        if seg is not None:  # saved labels number the whole video's frames (a piece's pre-pass: the
            # piece's); a segment numbers its own from 0
            selector.offset = seg.first - seg.warm - (seg.base if o.labels_piece else 0)
            selector.check_count = False
    else:
        selector = built.selector()
    reader = _open_reader(inp, o, copy_streams=seg is None)
    ref_reader = None
    try:
        info = reader.info
        pix_fmt = output_pix_fmt(o, info)
        reader.high_depth = is_high_depth(pix_fmt)
        if seg is None and o.io == "pyav":
            check_output_format(span.out, o.format)
        if seg is None and whole_file_context(o, inp):  # labels with the whole file in view: one decode-only pre-pass
            from vdeblur.select.context import ContextSelector, prepass

            selector = ContextSelector(prepass(inp, threshold=o.threshold, every=o.select_every, select=o.select,
                                               weights=o.select_weights, items=piece_of(o)),
                                       o.select_every)
        ref_iter = metrics = None
        if reference is not None:
            ref_reader = open_reference(reference, info, reader.high_depth)
            ref_iter = (reference_frames(ref_reader, o) if seg is None
                        else itertools.islice(reference_frames(ref_reader), seg.first - seg.warm, None))
            from vdeblur.metrics.reference import ReferenceMetrics  # torch: only against a reference

            metrics = ReferenceMetrics(built.device)
        if seg is None:
            frames = _whole(reader, o, info)
            if on_start is not None:
                on_start(piece_info(info, o) if is_piece(o) else info)
        else:
            frames = _segment(reader, seg, o, info, built.method, selector)
        engine = Engine(built.restorer, selector, batch_size=built.batch, reference=ref_iter, metrics=metrics,
                        on_result=frames.result(on_frame), restorable=frames.restorable)
        with _open_writer(span, o, info, reader, pix_fmt) as writer:
            summary = engine.run(frames.items, frames.writes(writer.write_frame),
                                 writer.write_packet if seg is None else lambda p: None)
            if ref_iter is not None and seg is None and next(ref_iter, None) is not None:
                raise InputError(f"reference has more frames than the input ({summary.frames})")
            if seg is not None:
                if writer.frames_written > seg.frames:
                    raise InternalError(f"segment {seg.number} wrote {writer.frames_written} frames, "
                                        f"its plan holds {seg.frames}")
                if writer.frames_written:
                    writer.commit()
                else:  # nothing of it decoded (a damaged stretch): no part; the join counts it lost
                    writer.abort()
            else:
                if summary.frames == 0 and o.start and not (reader.stats.decode_errors or reader.stats.demux_error):
                    raise UsageError(f"--start {o.start:g} is past the last frame of {reader.name}")
                if summary.frames == 0:
                    raise InputError(f"no frame of {reader.name} could be decoded")
                writer.commit()
    finally:
        reader.close()
        if ref_reader is not None:
            ref_reader.close()
    if seg is None:
        if is_piece(o):  # frames outside the piece are not decoded: only decode and demux errors count
            info = replace(info, frames=None, duration=None)
        check_damage(span.out, reader.stats, info, summary)
    return SpanResult(summary, reader.stats, info, frames.rows)


def _open_reader(inp: str, o: RunOptions, copy_streams: bool) -> Any:
    if o.io == "ffmpeg":
        from vdeblur.io.pipe import PipeReader

        return PipeReader(inp)
    from vdeblur.io.reader import VideoReader

    return VideoReader(inp, copy_streams=copy_streams)


def _open_writer(span: Span, o: RunOptions, info: Any, reader: Any, pix_fmt: str) -> Any:
    """OUT with the input's other streams, or a part file in the first format that holds the codec."""
    from vdeblur.io.writer import VideoWriter

    if span.segment is None:
        if o.io == "ffmpeg":
            from vdeblur.io.pipe import PipeWriter

            return PipeWriter(span.out, info, reader, codec=o.codec, crf=o.crf, preset=o.preset,
                              pix_fmt=pix_fmt, format=o.format)
        return VideoWriter(span.out, info, copy_streams=reader.copy, codec=o.codec, crf=o.crf,
                           preset=o.preset, pix_fmt=pix_fmt, format=o.format)
    for k, fmt in enumerate(PART_FORMATS):
        try:
            writer = VideoWriter(span.out, info, codec=o.codec, crf=o.crf, preset=o.preset, pix_fmt=pix_fmt, format=fmt)
            writer.open()
            return writer
        except OutputError:
            if k == len(PART_FORMATS) - 1:
                raise
    raise InternalError("no part format")  # not reached


class _Frames:
    """Which frames a span decodes, restores, writes and reports, and under which numbers."""

    def __init__(self, items: Iterator[Any], restorable: Callable[[int], bool] | None = None,
                 written: dict[int, int] | None = None):
        self.items = items
        self.restorable = restorable
        self.written = written  # local index -> index in the whole video; None: every frame, as numbered
        self.rows: list[FrameResult] = []

    def result(self, on_frame: Callable[[FrameResult], None] | None) -> Callable[[FrameResult], None] | None:
        if self.written is None:
            return on_frame
        written, rows = self.written, self.rows

        def keep(r: FrameResult) -> None:
            g = written.get(r.frame)
            if g is not None:
                r.frame = g
                rows.append(r)

        return keep

    def writes(self, write_frame: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        if self.written is None:
            return write_frame
        written = self.written

        def write(frame: Any, out: Any) -> None:
            if frame.index in written:
                write_frame(frame, out)

        return write


def piece_of(o: RunOptions) -> Any:
    """For the pre-pass (select/context.py ``scan``): a function of an open reader giving the
    items of the piece --start/--frames restore (``piece_items``), or None for the whole video."""
    if not is_piece(o):
        return None
    from vdeblur.jobs.segments import piece_items

    return lambda reader: piece_items(reader, o.start, o.frames)


def _whole(reader: Any, o: RunOptions, info: Any) -> _Frames:
    """Every frame and packet of the input, or of its piece (--start/--frames: :func:`piece_of`,
    the items the pre-pass labels)."""
    piece = piece_of(o)
    if piece is None:
        return _Frames(reader.items())
    from vdeblur.jobs.segments import trim_chapters

    info.chapters = trim_chapters(info.chapters, o.start, o.frames, info.rate)
    return _Frames(piece(reader))


def _segment(reader: Any, seg: Segment, o: RunOptions, info: Any, method: Any, selector: Any) -> _Frames:
    """A segment's frames with its context: decoded from its warm-up frames to the frames after
    it that the windows read; restored from the method's own warm-up to its last frame;
    written and reported: its own frames, numbered in the whole video."""
    from vdeblur.jobs.segments import segment_frames, to_seconds

    _, after = context_frames(method, selector)
    if not seg.tail:  # the end of a piece: nothing after it is read, as in one pass of it
        after = 0
    shift = None
    if o.start:  # a piece: row times less its start, as OUT's (piece_items)
        v = reader.video
        lo = (v.start_time * v.time_base if v.start_time is not None else 0) + to_seconds(o.start)
        shift = float(round(lo / info.time_base) * info.time_base)
    first, end = max(0, seg.warm - warmup_frames(method)), seg.warm + seg.frames
    written: dict[int, int] = {}

    def items() -> Iterator[Any]:
        n = 0
        for f, keep in segment_frames(reader, seg, after=after):
            if keep:
                written[f.index] = seg.first - seg.base + n
                n += 1
            if shift is not None:
                f.offset = shift
            yield f

    return _Frames(items(), lambda i: first <= i < end, written)


def run_segment(inp: str, part: str, seg: Segment, o: RunOptions, reference: str | None = None) -> dict:
    """The task of one segment (in this process or on a cluster worker): restore it into the part
    file ``part`` and record its results beside it (``part``.json, written last: the segment is
    then done, for --resume). Returns the results."""
    from vdeblur.jobs.state import write_json

    t0 = time.perf_counter()
    res = restore_span(inp, Span(part, seg), o, reference=reference)
    result = {
        "segment": seg.number,
        "rows": [r.as_dict() for r in res.rows],
        "frames": len(res.rows),
        "lost": seg.frames - len(res.rows),
        "decode_errors": res.stats.decode_errors,
        "demux_error": res.stats.demux_error,
        "rotation": res.info.rotation,
        "seconds": time.perf_counter() - t0,
    }
    write_json(part + ".json", result)
    return result
