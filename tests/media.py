"""Make small test videos with PyAV (no network, nothing committed)."""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Sequence

import av
import numpy as np

# libx264 options for a clip with a keyframe every 10 frames and B-frames (segment and piece tests)
GOP10 = {"preset": "ultrafast", "crf": "10", "g": "10", "keyint_min": "10", "sc_threshold": "0", "bf": "2"}


#: x264's names of the CPU features below AVX-512, by the Linux /proc/cpuinfo flag that says the CPU has it
_X264_ASM = (("mmxext", "MMX2"), ("sse", "SSE"), ("sse2", "SSE2"), ("pni", "SSE3"), ("ssse3", "SSSE3"),
             ("sse4_1", "SSE4.1"), ("sse4_2", "SSE4.2"), ("avx", "AVX"), ("fma", "FMA3"), ("abm", "LZCNT"),
             ("bmi1", "BMI1"), ("bmi2", "BMI2"), ("avx2", "AVX2"))


@lru_cache(maxsize=1)
def x264_asm() -> str | None:
    """An ``x264-params`` value that keeps libx264 off its AVX-512 code, on a CPU that has
    AVX-512 (None elsewhere, or where /proc/cpuinfo cannot be read). PyAV's libx264 with AVX-512
    encoded the same frames differently from run to run (the same options, one thread; seen on an
    AMD EPYC with AVX-512), so the benchmarks' clips, and their figures, changed between runs;
    with the features up to AVX2 named, ten encodes were identical. Only features the CPU lists
    are named: a feature it lacks would crash the encoder."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return None
    if "avx512f" not in flags:
        return None
    return "asm=" + "\\,".join(name for flag, name in _X264_ASM if flag in flags)


def pattern(i: int, h: int, w: int, depth: int = 8) -> np.ndarray:
    """A moving, textured RGB frame that differs from frame to frame."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.5 + 0.5 * np.sin((x + 3 * i) / 5.0)
    g = 0.5 + 0.5 * np.cos((y - 2 * i) / 7.0)
    b = ((x // 8 + y // 8 + i) % 2).astype(np.float32) * 0.8 + 0.1
    img = np.stack([r, g, b], -1)
    peak = 65535 if depth > 8 else 255
    return (img * peak).round().astype(np.uint16 if depth > 8 else np.uint8)


def write_video(
    path,
    n: int = 12,
    size: tuple[int, int] = (64, 48),
    *,
    fps: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    audio: bool = False,
    subtitles: bool = False,
    rotation: int = 0,
    metadata: dict[str, str] | None = None,
    frames: Sequence[np.ndarray] | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    chapters: list[dict] | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    colorspace: int | None = None,
    color_range: int | None = None,
) -> list:
    """Write a video and return the frames that went in. ``pts`` gives VFR timestamps.

    ``frames`` are RGB arrays (uint8, or uint16 for rgb48), or ready ``av.VideoFrame`` s in
    ``pix_fmt`` for exact samples; ``colorspace`` / ``color_range`` tag the stream and each frame;
    ``attachments`` are (name, mimetype, data), e.g. fonts in Matroska."""
    w, h = size
    depth = 16 if "10" in pix_fmt or "12" in pix_fmt else 8
    src = list(frames) if frames is not None else [pattern(i, h, w, depth) for i in range(n)]
    with av.open(str(path), "w", container_options=container_options or {}) as c:
        for k, v in (metadata or {}).items():
            c.metadata[k] = v
        if chapters:
            c.set_chapters(chapters)
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        tb = time_base or Fraction(1, fps * 100)
        s.time_base = tb
        s.codec_context.time_base = tb
        opts = dict(options or ({"preset": "ultrafast", "crf": "10"} if codec.startswith("libx26") else {}))
        if codec == "libx264" and "x264-params" not in opts and x264_asm() is not None:
            opts["x264-params"] = x264_asm()  # the same clip encodes the same (x264_asm)
        s.options = opts
        if rotation:
            s.set_display_rotation(rotation)
        if colorspace is not None:
            s.codec_context.colorspace = colorspace
        if color_range is not None:
            s.codec_context.color_range = color_range
        a = None
        if audio:
            a = c.add_stream("aac", rate=48000)
            a.layout = "stereo"
        sub = c.add_stream("mov_text") if subtitles else None
        for name, mimetype, data in attachments:
            c.add_attachment(name=name, mimetype=mimetype, data=data)

        def video_frames():
            for i, img in enumerate(src):
                if isinstance(img, av.VideoFrame):
                    f = img
                else:
                    f = av.VideoFrame.from_ndarray(img, format="rgb48le" if img.dtype == np.uint16 else "rgb24")
                f.pts = pts[i] if pts is not None else round(i / fps / tb)
                f.time_base = tb
                if colorspace is not None:
                    f.colorspace = colorspace
                if color_range is not None:
                    f.color_range = color_range
                yield f

        mux_all(c, s, video_frames())
        if a is not None:
            n_samples = int(48000 * len(src) / fps)
            t = np.arange(n_samples) / 48000
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            mux_all(c, a, audio_frames(np.stack([tone] * 2), "stereo"))
        del sub
    return src


def mux_all(c, stream, frames) -> None:
    """Encode ``frames`` (video or audio) into ``stream`` of container ``c``, flush the encoder,
    and mux every packet."""
    for f in frames:
        for p in stream.encode(f):
            c.mux(p)
    for p in stream.encode():
        c.mux(p)


def audio_frames(samples: np.ndarray, layout: str, rate: int = 48000, size: int = 1024):
    """``samples`` (channels x n, float32) as planar audio frames of ``size`` samples (the last
    may be shorter), timed in samples."""
    for start in range(0, samples.shape[1], size):
        chunk = np.ascontiguousarray(samples[:, start : start + size])
        af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        af.sample_rate = rate
        af.pts = start
        yield af


def write_audio(path, samples: np.ndarray, layout: str = "mono") -> None:
    """A file with one AAC stream (48 kHz) and no video: ``samples`` as in ``audio_frames``."""
    with av.open(str(path), "w") as c:
        mux_all(c, c.add_stream("aac", rate=48000), audio_frames(samples, layout))


def read_video(path) -> dict:
    """Frames (RGB), pts in seconds, and stream facts of a video file."""
    out: dict = {"frames": [], "times": [], "audio_packets": 0}
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        out.update(
            width=v.codec_context.width,
            height=v.codec_context.height,
            pix_fmt=v.codec_context.format.name,
            metadata=dict(c.metadata),
            chapters=[(float(ch["start"] * ch["time_base"]), ch["metadata"].get("title")) for ch in c.chapters()],
            types=[s.type for s in c.streams],
            codecs=[s.codec_context.name for s in c.streams],
            rotation=0,
        )
        for i, f in enumerate(c.decode(v)):
            if i == 0:
                out["rotation"] = int(round(f.rotation or 0))
            fmt = "rgb48le" if f.format.components[0].bits > 8 else "rgb24"
            out["frames"].append(f.to_ndarray(format=fmt))
            out["times"].append(float(f.pts * f.time_base))
    with av.open(str(path)) as c:
        if c.streams.audio:
            out["audio_packets"] = sum(1 for p in c.demux(c.streams.audio[0]) if p.size)
    return out
