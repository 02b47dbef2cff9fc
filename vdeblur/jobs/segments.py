"""Keyframe segments of a video: the plan, a segment's frames, and the lossless reassembly.

A long video is cut where it has keyframes, never at arbitrary times: a segment's frames are
those whose presentation time lies in ``[start, end)`` of the source stream's own timestamps,
and it starts at a keyframe, so it decodes from its first packet without the frames before.
Segments are restored and encoded on their own (one part file each) and joined again by
copying packets (no re-encoding): the joined video keeps every frame, once, with its source
timestamp. The audio, subtitle and data streams are copied from the input in the same pass.

The plan is made from the demuxer alone (no decoding): every video packet's pts and keyframe
flag. It records how many frames each segment holds, and the join is checked against it.
"""

from __future__ import annotations

import heapq
import itertools
import math
from array import array
from bisect import bisect_left
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, Iterator

import av

from vdeblur.errors import InputError, InternalError, OutputError, UsageError
from vdeblur.io.probe import check_input_path
from vdeblur.io.reader import CopyPacket, Frame, VideoReader, ffmpeg_reason


@dataclass
class Segment:
    """Frames with ``start <= pts < end`` (source time base; ``end`` None: to the end)."""

    number: int
    start: int
    end: int | None
    first: int  # index of its first frame in the whole video (presentation order)
    frames: int  # frames it holds
    warm_start: int | None = None  # pts of the first warm-up frame (None: no warm-up)
    warm: int = 0  # warm-up frames: restored to warm the method, not written
    seek: int = 0  # pts of a keyframe at or before warm_start (or start) to seek to
    base: int = 0  # index of the first frame of the piece restored (--start): rows count from it
    tail: bool = True  # frames after ``end`` may be read as look-ahead (not past a piece's end)


@dataclass
class Plan:
    frames: int
    time_base: Fraction
    segments: list[Segment]
    #: a piece (--start/--frames): seconds subtracted from every timestamp, and where the piece
    #: ends (seconds; None: at the end of the video); the other streams are cut to the same span
    shift: Fraction | None = None
    end: Fraction | None = None

    def to_json(self) -> dict[str, Any]:
        return {"frames": self.frames, "time_base": str(self.time_base),
                "segments": [asdict(s) for s in self.segments],
                "shift": None if self.shift is None else str(self.shift),
                "end": None if self.end is None else str(self.end)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Plan":
        def frac(x: Any) -> Fraction | None:
            return None if x is None else Fraction(x)

        return cls(d["frames"], Fraction(d["time_base"]), [Segment(**s) for s in d["segments"]],
                   frac(d.get("shift")), frac(d.get("end")))


def plan_segments(path: str, seconds: float, warmup: int = 0, align: int = 1, *,
                  start: float | None = None, frames: int | None = None) -> Plan:
    """Cut ``path`` at its first keyframe after every ``seconds`` of video.

    ``warmup`` frames before each segment (after the first) are decoded and fed to the selector
    and the method but not written: the selector sees the frames its window reaches back to, and
    recurrent methods restart at a border with their state warmed up. The warm-up is lengthened
    so that it starts at a multiple of ``align`` frames (the selector's groups of K).
    A video whose packets carry no timestamps, or that has one keyframe, is one segment.

    With ``start`` or ``frames`` the plan covers a piece, as ``piece_items`` cuts it: the first
    ``frames`` frames at or after ``start`` seconds (from the video's start time). Its first
    segment begins at the piece's first frame, decoded from the keyframe before it; nothing
    before or after the piece is read as context, so the piece is labelled and restored as in
    one pass of it.
    """
    check_input_path(path)
    try:
        c = av.open(path)
    except av.error.FFmpegError as e:
        raise InputError(f"cannot read {path} as a video: {ffmpeg_reason(e)}") from e
    with c:
        if not c.streams.video:
            raise InputError(f"{path} has no video stream")
        v = c.streams.video[0]
        tb = v.time_base or Fraction(1, 90000)
        origin = v.start_time * tb if v.start_time is not None else 0
        v_rate = v.average_rate or v.guessed_rate
        pts = array("q")
        keys = array("q")
        timed = True
        try:
            for p in c.demux(v):
                if p.size == 0:
                    continue
                if p.pts is None:
                    timed = False
                    pts.append(len(pts))
                    continue
                pts.append(p.pts)
                if p.is_keyframe:
                    keys.append(p.pts)
        except av.error.FFmpegError:
            timed = False  # a damaged file: do not cut it, the one-pass path reports the damage
    n = len(pts)
    if n == 0:
        raise InputError(f"{path} holds no video frames")
    order = sorted(pts)
    piece = bool(start) or frames is not None
    if piece and (not timed or len(set(order)) != n):
        raise InputError(f"{path}: its frames have no distinct timestamps to cut a piece by; use --segment 0")
    f0, f1 = 0, n  # the piece: frames f0 .. f1-1
    shift = end_t = None
    if start:
        shift = origin + to_seconds(start)
        f0 = bisect_left(order, math.ceil((shift - _EPS) / tb))
        if f0 >= n:
            raise UsageError(f"--start {start:g} is past the last frame of {path}")
    if frames is not None:
        f1 = min(n, f0 + frames)
    if f1 < n:
        end_t = order[f1 - 1] * tb + 1 / Fraction(v_rate or 25)
    if not timed or len(set(order)) != n:
        return Plan(n, tb, [Segment(0, order[0], None, 0, n, None, 0, order[0])])
    step = max(1, round(seconds / tb)) if seconds > 0 else None
    keys_sorted = sorted(set(keys))
    stop = order[f1] if f1 < n else None  # pts where the piece ends (None: the end of the video)
    cuts = [order[f0]]
    for k in keys_sorted:
        if stop is not None and k >= stop:
            break
        if step is not None and k >= cuts[-1] + step and k > order[f0]:
            cuts.append(k)
    segs: list[Segment] = []
    for i, start_pts in enumerate(cuts):
        end = cuts[i + 1] if i + 1 < len(cuts) else stop
        first = bisect_left(order, start_pts)
        last = bisect_left(order, end) if end is not None else n
        nwarm = min(first - f0, warmup) if i > 0 else 0
        nwarm += (first - f0 - nwarm) % max(1, align)
        warm = order[first - nwarm] if nwarm else None
        want = warm if warm is not None else start_pts
        # the latest keyframe at or before the first frame wanted: decoding starts there
        j = bisect_left(keys_sorted, want + 1) - 1
        seek = keys_sorted[j] if j >= 0 else order[0]
        tail = i + 1 < len(cuts) or stop is None
        segs.append(Segment(i, start_pts, end, first, last - first, warm, nwarm, seek, f0, tail))
    return Plan(f1 - f0, tb, segs, shift, end_t)


def segment_frames(reader: VideoReader, seg: Segment, after: int = 0) -> Iterator[tuple[Frame, bool]]:
    """(frame, written) for the warm-up frames, the segment's frames and ``after`` frames past
    its end (look-ahead for windowed methods; not written). Frames are numbered from 0 here.

    Decoding starts at the keyframe the plan names. Where the demuxer's seek lands after the
    frames wanted (MPEG-TS seeks by bytes), it seeks again 1, 4 and 16 seconds earlier, and at
    last decodes from the top."""
    lo = seg.warm_start if seg.warm_start is not None else seg.start
    frames: Iterator[Frame] = iter(())
    first = None
    if seg.number > 0 or seg.base > 0:  # the first segment of the video decodes from the top
        step = max(1, round(1 / reader.video.time_base)) if reader.video.time_base else 90000
        for back in (0, step, 4 * step, 16 * step):
            reader.container.seek(max(0, seg.seek - back), stream=reader.video, backward=True, any_frame=False)
            frames = _decoded(reader)
            first = next(frames, None)
            if first is not None and first.pts <= lo:
                break
            first = None
        if first is None:
            reader.rewind()
    if first is None:
        frames = _decoded(reader)
        first = next(frames, None)
        if first is None:
            return
    if first.pts > lo:
        raise InternalError(f"segment {seg.number}: decoding starts at pts {first.pts}, after {lo}")
    index = 0
    extra = 0
    for f in itertools.chain([first], frames):
        if f.pts < lo:
            continue
        if seg.end is not None and f.pts >= seg.end:
            if extra >= after:
                return
            extra += 1
            written = False
        else:
            written = f.pts >= seg.start
        f.index = index
        index += 1
        yield f, written


def _decoded(reader: VideoReader) -> Iterator[Frame]:
    for item in reader.items():
        if isinstance(item, Frame):
            yield item


def join_parts(parts: list[str], inp: str, out: str, *, rotation: int, expected: int,
               format: str | None = None, shift: Fraction | None = None, end: Fraction | None = None) -> Any:
    """Copy the video packets of ``parts`` (in order) and the input's other streams into ``out``,
    with the input's metadata, chapters and the display ``rotation`` (known once a frame decoded).

    Packets are merged by time, so memory does not grow with length; ``out`` appears only when
    complete (a temporary file renamed) and holds ``expected`` video packets (checked). Returns
    the input's VideoInfo. A piece (``shift``, ``end``: see Plan) has every timestamp less
    ``shift``, and the other streams' packets that overlap it.
    """
    from vdeblur.io.writer import VideoWriter

    if not parts:
        raise InternalError("no parts to join")
    # the template stream's container stays open until the writer has opened
    with av.open(parts[0]) as first, VideoReader(inp) as reader:
        info = reader.info
        info.rotation = rotation
        if shift is not None or end is not None:
            info.chapters = _cut_chapters(info.chapters, shift or Fraction(0), end)
        writer = VideoWriter(out, info, copy_streams=reader.copy, format=format,
                             video_template=first.streams.video[0])
        with writer:
            for item in _merged(parts, reader, shift, end):
                if isinstance(item, tuple):
                    writer.write_video_packet(item[1])
                else:
                    writer.write_packet(item)
            if writer.frames_written != expected:
                raise InternalError(f"joining the segments gave {writer.frames_written} frames, "
                                    f"expected {expected}")
            writer.commit()
    return info


def _shift(p: Any, by: Fraction | None) -> Any:
    if by:
        d = round(by / p.time_base)
        if p.pts is not None:
            p.pts -= d
        if p.dts is not None:
            p.dts -= d
    return p


def _video_packets(parts: list[str], shift: Fraction | None = None) -> Iterator[tuple[float, Any]]:
    for path in parts:
        try:
            c = av.open(path)
        except av.error.FFmpegError as e:
            raise OutputError(f"cannot read the segment {path}: {ffmpeg_reason(e)}") from e
        with c:
            v = c.streams.video[0]
            for p in c.demux(v):
                if p.size:
                    yield _when(_shift(p, shift)), p


def _copy_packets(reader: VideoReader, shift: Fraction | None = None,
                  end: Fraction | None = None) -> Iterator[tuple[float, Any]]:
    """The other streams' packets; of a piece, those that overlap it, shifted as it is."""
    if not reader.copy:
        return
    for p in reader.container.demux(*reader.copy):
        if not p.size:
            continue
        span = _packet_span(p)
        if span is not None:
            t0, t1 = span
            if shift is not None and _before(t0, t1, shift):
                continue
            if end is not None and t0 >= end:
                continue
        yield _when(_shift(p, shift)), CopyPacket(p, p.stream.index)


def _when(p: Any) -> float:
    t = p.dts if p.dts is not None else p.pts
    return float(t * p.time_base) if t is not None else float("-inf")


def _merged(parts: list[str], reader: VideoReader, shift: Fraction | None = None,
            end: Fraction | None = None) -> Iterator[Any]:
    """Video packets (as (t, packet)) and copy packets (as CopyPacket) in time order."""
    counter = itertools.count()
    video = ((t, next(counter), ("v", p)) for t, p in _video_packets(parts, shift))
    other = ((t, next(counter), ("c", p)) for t, p in _copy_packets(reader, shift, end))
    for _, _, (kind, p) in heapq.merge(video, other, key=lambda x: (x[0], x[1])):
        yield (kind, p) if kind == "v" else p


# -- a piece of a video: --start TIME --frames N -------------------------------------------------
_EPS = Fraction(1, 10**6)  # seconds: a frame this close before --start is at it
_PAST_END = 2  # seconds of video read past a piece's end for the audio that belongs to it


def to_seconds(x: float) -> Fraction:
    """``x`` seconds as an exact fraction (0.4 is 2/5, not the binary float next to it)."""
    return Fraction(x).limit_denominator(10**6)


def _from(reader: VideoReader, start: Fraction) -> Iterator[Frame | CopyPacket]:
    """``reader.items()`` from a keyframe at or before ``start``: the demuxer's seek, again 1, 4
    and 16 s earlier where it lands late (MPEG-TS seeks by bytes), at last from the top."""
    tb = reader.video.time_base or reader.info.time_base
    for back in (0, 1, 4, 16, None):
        if back is None:
            reader.container.seek(0)  # the top of the file (stream time base unknown there)
        else:
            ts = max(0, int((start - back) / tb))
            reader.container.seek(ts, stream=reader.video, backward=True, any_frame=False)
        items = reader.items()
        head: list[Frame | CopyPacket] = []
        for it in items:
            head.append(it)
            if isinstance(it, Frame):
                break
        first = head[-1] if head and isinstance(head[-1], Frame) else None
        if first is None or back is None or first.pts * first.time_base <= start + _EPS:
            return itertools.chain(head, items)
    raise InternalError("unreachable")


def _before(t0: Fraction, t1: Fraction, start: Fraction) -> bool:
    """A packet spanning [t0, t1) lies wholly before ``start`` (one of no duration: begins before it)."""
    return t1 <= start if t1 > t0 else t0 < start


def _packet_span(p: Any) -> tuple[Fraction, Fraction] | None:
    t = p.pts if p.pts is not None else p.dts
    if t is None or not p.time_base:
        return None
    return t * p.time_base, (t + (p.duration or 0)) * p.time_base


@dataclass
class _Held:
    t0: Fraction
    item: CopyPacket


def piece_items(reader: VideoReader, start: float | None = None, frames: int | None = None,
                ) -> Iterator[Frame | CopyPacket]:
    """The items of a piece of ``reader``'s video, as ``ffmpeg -ss START -i IN -frames:v N``
    gives them: the first ``frames`` frames (all, when None) whose time is at or after ``start``
    (the top, when None; seconds from the video stream's start time, as MPEG-TS starts late),
    numbered from 0, their timestamps less that time; and the packets of
    the other streams that overlap the same span (the video's first frame to the end of its
    last), shifted by as much. Decoding starts at a keyframe at or before ``start`` (a seek), and
    stops once every other stream has passed the piece's end (or 2 s of video later)."""
    v = reader.video
    origin = v.start_time * v.time_base if v.start_time is not None and v.time_base else 0
    lo = origin + to_seconds(start) if start else None
    items = _from(reader, lo) if lo is not None else reader.items()
    rate = reader.info.rate or 25
    copies = {s.index for s in reader.copy}
    kept = 0
    last: Fraction | None = None  # time of the last frame kept
    end: Fraction | None = None  # where the piece ends, once its last frame is known
    held: list[_Held] = []  # packets after the last frame kept: in the piece if it goes on far enough

    def shifted(item: CopyPacket) -> CopyPacket:
        _shift(item.packet, lo)
        return item

    for item in items:
        if isinstance(item, Frame):
            t = item.pts * item.time_base
            if lo is not None and t < lo - _EPS:
                continue
            if end is not None:  # past the piece: read on only for the other streams' packets
                if not copies or t > end + _PAST_END:
                    return
                continue
            last = t
            before = [h for h in held if h.t0 < t]  # before this frame: in the piece
            held = [h for h in held if h.t0 >= t]
            for h in before:
                yield shifted(h.item)
            item.index = kept
            kept += 1
            if lo is not None:
                item.pts -= round(lo / item.time_base)
            yield item
            if frames is not None and kept >= frames:
                end = t + 1 / Fraction(rate)
                for h in held:
                    if h.t0 < end:
                        yield shifted(h.item)
                    else:
                        copies.discard(h.item.stream_index)
                held.clear()
            continue
        span = _packet_span(item.packet)
        if span is None:
            if end is None:
                yield item
            continue
        t0, t1 = span
        if lo is not None and _before(t0, t1, lo):
            continue
        if end is not None:
            if t0 < end:
                yield shifted(item)
            else:
                copies.discard(item.stream_index)
            continue
        if frames is None or (last is not None and t0 < last):
            yield shifted(item)
        else:
            held.append(_Held(t0, item))
    for h in held:  # the video ended inside the piece: the rest belongs to it
        yield shifted(h.item)


def trim_chapters(chapters: list[dict[str, Any]], start: float | None, frames: int | None,
                  rate: Any) -> list[dict[str, Any]]:
    """The chapters that overlap the piece, shifted as its timestamps are and cut to it."""
    lo = to_seconds(start) if start else Fraction(0)
    hi = lo + Fraction(frames) / Fraction(rate or 25) if frames is not None else None
    return _cut_chapters(chapters, lo, hi)


def _cut_chapters(chapters: list[dict[str, Any]], lo: Fraction, hi: Fraction | None) -> list[dict[str, Any]]:
    out = []
    for ch in chapters:
        tb = Fraction(ch["time_base"])
        s, e = ch["start"] * tb, ch["end"] * tb
        if e <= lo or (hi is not None and s >= hi):
            continue
        s, e = max(s, lo) - lo, (min(e, hi) if hi is not None else e) - lo
        out.append({**ch, "start": round(s / tb), "end": round(e / tb)})
    return out
