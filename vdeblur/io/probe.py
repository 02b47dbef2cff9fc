"""VideoInfo: what vdeblur needs to know about an input before it starts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from vdeblur.errors import InputError

# container metadata keys the muxer writes itself; copying them would lie about the new file
MUXER_KEYS = {"major_brand", "minor_version", "compatible_brands", "encoder", "creation_time_muxer"}


@dataclass
class VideoInfo:
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    codec: str
    time_base: Fraction
    rate: Fraction | None  # average frame rate, if known
    frames: int | None  # frame count from the container, if it states one
    duration: float | None  # seconds
    rotation: int = 0  # display rotation, degrees counter-clockwise
    color: dict[str, Any] = field(default_factory=dict)  # colorspace, color_range, primaries, trc
    metadata: dict[str, str] = field(default_factory=dict)  # container metadata
    stream_metadata: dict[str, str] = field(default_factory=dict)
    streams: list[str] = field(default_factory=list)  # "#1 audio aac", ...
    chapters: list[dict[str, Any]] = field(default_factory=list)
    format_name: str = ""

    @property
    def expected_frames(self) -> int | None:
        """Frame count stated by the container, else estimated from duration x rate."""
        if self.frames:
            return self.frames
        if self.duration and self.rate:
            return max(1, round(self.duration * float(self.rate)))
        return None

    @property
    def frames_exact(self) -> bool:
        return bool(self.frames)


def check_input_path(path: str) -> None:
    """Fail early, with one line, on inputs that cannot be videos."""
    if path == "-":
        return
    if not os.path.exists(path):
        raise InputError(f"input not found: {path}")
    if os.path.isdir(path):
        raise InputError(f"input is a directory, not a video file: {path}")
    if not os.access(path, os.R_OK):
        raise InputError(f"input is not readable: {path}")
    if os.path.getsize(path) == 0:
        raise InputError(f"input is empty (0 bytes): {path}")


def info_from_container(container: Any, name: str) -> VideoInfo:
    """Build VideoInfo from an open PyAV input container (does not decode)."""
    if not container.streams.video:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
        raise InputError(f"{name} has no video stream ({kinds})")
    v = container.streams.video[0]
    cc = v.codec_context
    if not cc.width or not cc.height:
        raise InputError(f"{name}: video stream has no frame size (not a decodable video)")
    fmt = cc.format
    depth = max((c.bits for c in fmt.components), default=8) if fmt is not None else 8
    duration = None
    if v.duration is not None and v.time_base:
        duration = float(v.duration * v.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    rate = v.average_rate or v.guessed_rate or None
    streams = [
        f"#{s.index} {s.type} {s.codec_context.name if s.codec_context else '?'}"
        for s in container.streams
        if s.index != v.index
    ]
    return VideoInfo(
        width=cc.width,
        height=cc.height,
        pix_fmt=fmt.name if fmt is not None else "yuv420p",
        bit_depth=depth,
        codec=cc.name,
        time_base=v.time_base or Fraction(1, 90000),
        rate=Fraction(rate) if rate else None,
        frames=v.frames or None,
        duration=duration,
        color={
            "colorspace": cc.colorspace,
            "color_range": cc.color_range,
            "color_primaries": cc.color_primaries,
            "color_trc": cc.color_trc,
        },
        metadata={k: v_ for k, v_ in container.metadata.items() if k.lower() not in MUXER_KEYS},
        stream_metadata=dict(v.metadata),
        streams=streams,
        chapters=list(container.chapters()) if hasattr(container, "chapters") else [],
        format_name=container.format.name,
    )
