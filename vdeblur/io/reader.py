"""PyAV demux/decode -> a stream of Frame and CopyPacket items, in demux order.

Video frames are decoded (thread_type AUTO); audio, subtitle and data packets are passed on as
they are, so the writer can copy them without re-encoding, interleaved as in the source.
A damaged input is decoded as far as it can be; ``stats`` says how many frames were lost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, BinaryIO, Iterator

import av
import numpy as np

from vdeblur.errors import InputError
from vdeblur.io.colour import ColourSpec, frame_to_rgb, spec_for
from vdeblur.io.probe import VideoInfo, check_input_path, info_from_container

# FFmpeg's own log lines (decoder warnings, x264 messages) would break the one-line error
# promise: vdeblur reports what matters itself. VDEBLUR_FFMPEG_LOG=1 lets them through.
if not os.environ.get("VDEBLUR_FFMPEG_LOG"):
    av.logging.set_libav_level(av.logging.FATAL)


@dataclass
class Frame:
    """One decoded video frame. Pixels are converted lazily: a frame that is passed through
    untouched is never converted to RGB."""

    index: int
    pts: int | None
    time_base: Fraction
    av_frame: Any | None = None  # av.VideoFrame as decoded
    array: np.ndarray | None = None  # RGB HxWx3 uint8/uint16, when already known
    high_depth: bool = False  # convert to 16-bit RGB instead of 8-bit
    offset: float = 0.0  # seconds by which pts runs late (the ffmpeg pipe's offset)
    colour: ColourSpec | None = None  # the stream's matrix and range (None: the frame's own tags)

    @property
    def time(self) -> float | None:
        return None if self.pts is None else float(self.pts * self.time_base) - self.offset

    def rgb(self) -> np.ndarray:
        if self.array is None:
            self.array = frame_to_rgb(self.av_frame, self.colour, high_depth=self.high_depth)
        return self.array

    def luma(self) -> np.ndarray:
        """The luma plane (2-D, on the 8-bit 0..255 scale whatever the depth) for blur scoring,
        read straight from the decoded Y plane when there is one (no RGB conversion)."""
        f = self.av_frame
        if f is not None and f.format.name.startswith(("yuv", "nv", "p0", "p2", "p4")):
            plane = f.planes[0]
            bits = f.format.components[0].bits
            dtype = np.uint16 if bits > 8 else np.uint8
            row = plane.line_size // np.dtype(dtype).itemsize
            y = np.frombuffer(plane, dtype).reshape(plane.height, row)[:, : plane.width]
            if bits > 8:  # yuv*p10le keeps samples in the low bits, P010/P016 in the high bits
                y = (y >> (8 if f.format.name.startswith("p") else bits - 8)).astype(np.uint8)
            return y
        rgb = self.rgb()
        scale = 1 / 257.0 if rgb.dtype == np.uint16 else 1.0
        weights = np.array([0.299, 0.587, 0.114], np.float32) * np.float32(scale)
        return rgb.astype(np.float32) @ weights


@dataclass
class CopyPacket:
    """A non-video packet to be copied through to the output unchanged."""

    packet: Any
    stream_index: int


@dataclass
class ReadStats:
    decoded: int = 0
    decode_errors: int = 0  # packets the decoder refused
    corrupt_frames: int = 0  # frames decoded with concealed errors (kept)
    demux_error: str | None = None  # the error that ended demuxing early, if any
    first_pts: int | None = None  # of the first decoded frame
    last_pts: int | None = None  # the latest decoded frame's

    def lost(self, info: VideoInfo) -> int:
        """Frames known or estimated to be lost: decode errors, or fewer frames than the container
        states when the decoded frames stop short of the stream's duration. A count that falls
        short over the whole duration is a variable-rate timeline, not a loss: AVI states its
        length in frame slots, and a slot the encoder skipped (a 0-byte chunk) holds no frame."""
        expected = info.expected_frames
        by_count = max(0, expected - self.decoded) if expected else 0
        if not info.frames_exact:  # duration x rate estimates are rounded: allow for it
            tolerance = max(2, int(0.05 * (expected or 0)))
            by_count = by_count if by_count > tolerance else 0
        if by_count and self.reaches_end(info):
            by_count = 0
        return max(by_count, self.decode_errors)

    def reaches_end(self, info: VideoInfo) -> bool:
        """The stated frame count is of slots over the stated duration (count / rate = duration),
        and the decoded frames span that duration (to within two frames)."""
        if self.first_pts is None or self.last_pts is None or not info.duration or not info.rate:
            return False
        step = 1 / float(info.rate)
        slots = (info.expected_frames or 0) * step
        if abs(slots - info.duration) > 2 * step:
            return False
        end = float((self.last_pts - self.first_pts) * info.time_base) + step
        return end >= info.duration - 2 * step

    def damaged(self, info: VideoInfo) -> bool:
        return bool(self.demux_error or self.decode_errors or self.lost(info))


class VideoReader:
    """Open a video (path or binary file object) with PyAV and iterate its frames and packets.

    >>> with VideoReader("in.mp4") as r:            # doctest: +SKIP
    ...     for item in r.items(): ...
    """

    def __init__(
        self,
        source: str | BinaryIO,
        *,
        format: str | None = None,
        high_depth: bool = False,
        copy_streams: bool = True,
        name: str | None = None,
    ):
        self.name = name or (source if isinstance(source, str) else "<stream>")
        if isinstance(source, str):
            check_input_path(source)
        self._format = format
        try:
            self.container = av.open(source, mode="r", format=format)
        except av.error.FFmpegError as e:
            raise InputError(f"cannot read {self.name} as a video: {ffmpeg_reason(e)}") from e
        try:
            self.info = info_from_container(self.container, self.name)
        except Exception:
            self.container.close()
            raise
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"
        self.copy = [
            s
            for s in self.container.streams
            if copy_streams and s.index != self.video.index and s.type in ("audio", "subtitle", "data", "attachment")
        ]  # attachments (fonts for subtitles) have no packets: the writer copies them whole
        self.high_depth = high_depth
        self.stats = ReadStats()
        self._last_pts: int | None = None
        self._colour: tuple[str, ColourSpec] | None = None

    def colour_spec(self, f: Any) -> ColourSpec:
        """The stream's matrix and range (its tags, else the frame's, else the default by size)."""
        name = f.format.name
        if self._colour is None or self._colour[0] != name:
            c = self.info.color or {}
            spec = spec_for(c.get("colorspace") if c.get("colorspace") not in (None, 2) else f.colorspace,
                            c.get("color_range") or f.color_range, self.info.width, self.info.height, name)
            self._colour = (name, spec)
        return self._colour[1]

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def rewind(self) -> None:
        """Start again from the top, on a freshly opened container (a path source only): for
        formats whose seeking cannot be trusted (MPEG-TS seeks by bytes)."""
        self.container.close()
        self.container = av.open(self.name, mode="r", format=self._format)
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"
        self._last_pts = None

    def _frame(self, f: Any) -> Frame:
        if self.stats.decoded == 0:
            self.info.rotation = int(round(getattr(f, "rotation", 0) or 0)) % 360
        pts = f.pts
        if pts is None:  # raw streams carry no timestamps: continue from the last one
            step = 1 / (self.info.rate or 25) / self.info.time_base
            pts = 0 if self._last_pts is None else self._last_pts + max(1, round(step))
        self._last_pts = pts
        if self.stats.first_pts is None:
            self.stats.first_pts = pts
        self.stats.last_pts = pts if self.stats.last_pts is None else max(self.stats.last_pts, pts)
        if f.is_corrupt:
            self.stats.corrupt_frames += 1
        fr = Frame(self.stats.decoded, pts, self.info.time_base, av_frame=f, high_depth=self.high_depth,
                   colour=self.colour_spec(f))
        self.stats.decoded += 1
        return fr

    def _decode(self, packet: Any) -> Iterator[Frame]:
        try:
            frames = self.video.decode(packet)
        except av.error.FFmpegError:
            self.stats.decode_errors += 1
            return
        for f in frames:
            yield self._frame(f)

    def items(self) -> Iterator[Frame | CopyPacket]:
        """Frames and copy-packets in demux order; the decoder is flushed at the end."""
        demux = self.container.demux(self.video, *(s for s in self.copy if s.type != "attachment"))
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except av.error.FFmpegError as e:
                self.stats.demux_error = ffmpeg_reason(e)
                break
            if packet.stream.index == self.video.index:
                if packet.size == 0:
                    continue  # the flush packet: flushed below, once
                yield from self._decode(packet)
            elif packet.size:
                yield CopyPacket(packet, packet.stream.index)
        yield from self._decode(None)


def ffmpeg_reason(e: Exception) -> str:
    msg = getattr(e, "strerror", None) or str(e)
    return msg.split(": '", 1)[0] if isinstance(msg, str) else str(e)
