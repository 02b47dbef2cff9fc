"""PyAV encode + stream copy, written to a temporary file beside OUT and renamed on success.

The output keeps the input's frame count, timestamps (VFR stays VFR), size (odd sizes too),
rotation, colour tags, container and stream metadata, and its audio/subtitle streams copied
without re-encoding.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import sys
import tempfile
from typing import Any, BinaryIO, NoReturn

import av
import numpy as np

from vdeblur.errors import OutputError
from vdeblur.io.colour import encode_frame, planar_equivalent, spec_for_info
from vdeblur.io.probe import VideoInfo
from vdeblur.io.reader import CopyPacket, Frame, ffmpeg_reason


def default_pix_fmt(info: VideoInfo, codec: str, *, high_depth: bool = False) -> str:
    """The 8-bit (or 10-bit) equivalent of the input's pixel format that ``codec`` can encode.

    4:2:0 / 4:2:2 / 4:4:4 chroma is kept (RGB input becomes 4:4:4); odd sizes go to 4:4:4,
    since 4:2:x needs an even width (and 4:2:0 an even height).
    """
    name = info.pix_fmt
    m = re.match(r"(?:yuvj?|yuva)(4\d\d)p", name)
    chroma = m.group(1) if m else {"nv12": "420", "p010le": "420", "nv16": "422", "nv24": "444"}.get(name, "420")
    try:
        rgb = av.VideoFormat(name).is_rgb  # rgb24, bgr0, gbrp, ...: every name, not only those with "rgb"
    except ValueError:
        rgb = "rgb" in name or "gbr" in name
    if chroma not in ("420", "422", "444") or rgb:
        chroma = "444" if (chroma == "440" or rgb) else "420"
    if info.width % 2 or (chroma == "420" and info.height % 2):
        chroma = "444"
    want = f"yuv{chroma}p" + ("10le" if high_depth else "")
    supported = encoder_formats(codec)
    if not supported or want in supported:
        return want
    odd = bool(info.width % 2 or info.height % 2)
    for alt in (f"yuv{chroma}p", "yuv444p", "yuv420p"):
        if alt in supported and not (odd and alt == "yuv420p"):
            return alt
    return supported[0]


AVFMT_TS_NONSTRICT = 0x20000  # the container takes equal timestamps (Matroska, WebM)
NEGATIVE_TS_EXTS = {".mkv", ".webm", ".mp4", ".mov", ".m4v"}
NEGATIVE_TS_FORMATS = {"matroska", "webm", "mp4", "mov"}


def encoder_formats(codec: str) -> list[str]:
    try:
        return [f.name for f in (av.codec.Codec(codec, "w").video_formats or [])]
    except Exception:
        return []


COMMON_VIDEO_ENCODERS = ("libx264", "libx265", "libvpx-vp9", "libaom-av1", "libsvtav1", "ffv1", "mpeg4", "prores_ks")


def check_video_encoder(codec: str, io: str = "pyav") -> None:
    """UsageError unless ``codec`` names a video encoder (of PyAV's FFmpeg; with ``io="ffmpeg"``,
    a name PyAV does not know is asked of the ffmpeg binary)."""
    from vdeblur.errors import UsageError

    try:
        c = av.codec.Codec(codec, "w")
    except (ValueError, av.error.FFmpegError):
        c = None
    if c is not None:
        if c.type != "video":
            raise UsageError(f"--codec {codec} is {'an' if c.type[0] in 'aeiou' else 'a'} {c.type} encoder, "
                             f"not a video encoder; try {', '.join(_available(COMMON_VIDEO_ENCODERS))}")
        return
    if io == "ffmpeg":
        from vdeblur.io.pipe import ffmpeg_encoder_kind

        kind = ffmpeg_encoder_kind(codec)
        if kind == "video":
            return
        if kind is not None:
            raise UsageError(f"--codec {codec} is {'an' if kind == 'audio' else 'a'} {kind} encoder of the ffmpeg "
                             "binary, not a video encoder")
    raise UsageError(f"unknown encoder --codec {codec!r} (not in this FFmpeg build); "
                     f"try {', '.join(_available(COMMON_VIDEO_ENCODERS))}")


def _available(names: tuple[str, ...]) -> list[str]:
    return [n for n in names if encoder_formats(n)] or ["libx264"]


def is_pix_fmt(name: str) -> bool:
    try:
        av.VideoFormat(name)
        return True
    except ValueError:
        return False


def is_high_depth(pix_fmt: str) -> bool:
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components) > 8
    except Exception:
        return False


def temp_path_for(out: str) -> str:
    """A hidden temporary name beside ``out`` with the same extension (so the format is guessed):
    ``.STEM.HOST-PID-XXXXXXXX.vdeblur-partial.EXT``, created with the mode ``out`` will have.

    Partials of ``out`` that a killed run of this host left behind (their process is gone) are
    removed first; a live run's partial is never touched.
    """
    d, base = os.path.split(os.path.abspath(out))
    stem, ext = os.path.splitext(base)
    gone = remove_stale_partials(out)
    if gone:
        print(f"vdeblur: removed {len(gone)} partial file(s) of an interrupted run to {out}", file=sys.stderr)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.{_host_tag()}-{os.getpid()}-",
                                   suffix=f".vdeblur-partial{ext}", dir=d)
    except OSError as e:
        raise OutputError(f"cannot write in {d}: {e.strerror or e}") from e
    try:
        os.fchmod(fd, output_mode(out))  # mkstemp's 0600 would survive the rename
    except OSError:
        pass
    finally:
        os.close(fd)
    return tmp


def output_mode(out: str) -> int:
    """The mode a plain ``open(out, "w")`` gives: an existing file's own, else 0666 less the umask."""
    try:
        st = os.stat(out)
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode)
    except OSError:
        pass
    return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process's umask, read without changing it where Linux says it (/proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:40] or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's process
        return True
    return True


def remove_stale_partials(out: str) -> list[str]:
    """Remove the partial files of ``out`` whose run (on this host) is gone; returns their paths."""
    d, base = os.path.split(os.path.abspath(out))
    stem, ext = os.path.splitext(base)
    prefix, suffix = f".{stem}.{_host_tag()}-", f".vdeblur-partial{ext}"
    try:
        names = os.listdir(d)
    except OSError:
        return []
    removed = []
    for name in names:
        if not (name.startswith(prefix) and name.endswith(suffix)) or len(name) <= len(prefix) + len(suffix):
            continue
        pid = name[len(prefix):-len(suffix)].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        path = os.path.join(d, name)
        try:
            os.remove(path)
            removed.append(path)
        except OSError:
            pass
    return removed


class VideoWriter:
    """Encode frames and copy packets into ``target`` (a path, or a binary file object).

    The container is opened on the first frame, once the input's rotation is known. With a path,
    frames go to a temporary file beside it, renamed over the path by ``commit()``; ``abort()``
    (or leaving the ``with`` block on an exception) deletes it.
    """

    def __init__(
        self,
        target: str | BinaryIO,
        info: VideoInfo,
        *,
        copy_streams: list[Any] = (),
        codec: str = "libx264",
        crf: int | None = 18,
        preset: str | None = None,
        pix_fmt: str | None = None,
        format: str | None = None,
        video_template: Any = None,
    ):
        self.target = target
        self.video_template = video_template  # a stream whose packets are copied (remux) instead of encoded
        self.info = info
        self.codec = codec
        self.crf, self.preset = crf, preset
        self.format = format
        self.copy_streams = list(copy_streams)
        self.pix_fmt = pix_fmt or default_pix_fmt(info, codec)
        self.high_depth = is_high_depth(self.pix_fmt)
        self.spec = spec_for_info(info, self.pix_fmt)  # how the output's samples map to RGB
        self.tmp: str | None = None
        self.container: Any = None
        self.stream: Any = None
        self.stream_map: dict[int, Any] = {}
        self.frames_written = 0
        # containers that need strictly increasing timestamps (mp4, mov, nut; not Matroska): a
        # timestamp repeated (valid in Matroska) is moved one tick later, as ffmpeg's muxer does
        self.strict_ts = False
        self.retimed = 0  # frames (or packets) moved
        self.reordered = 0  # ... of which had gone back in time (not merely repeated)
        self._last_ts: int | None = None
        self._pending: list[Any] = []  # packets that arrived before the first frame opened the file

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()

    def open(self) -> None:
        """Open the container (the first frame does, once the input's rotation is known) and
        write the packets that came before it."""
        if self.container is None:
            self._open()
            for item in self._pending:
                self.write_packet(item)
            self._pending.clear()

    def _open(self) -> None:
        info = self.info
        if isinstance(self.target, str):
            self.tmp = temp_path_for(self.target)
            dest: Any = self.tmp
        else:
            dest = self.target
        # keep source times exactly (audio priming starts before 0) where the container can
        ext = os.path.splitext(self.target)[1].lower() if isinstance(self.target, str) else ""
        negative_ok = ext in NEGATIVE_TS_EXTS or self.format in NEGATIVE_TS_FORMATS
        opts = {"avoid_negative_ts": "disabled"} if negative_ok else {}
        try:
            c = av.open(dest, mode="w", format=self.format, container_options=opts)
        except (av.error.FFmpegError, ValueError) as e:
            self._remove_tmp()
            raise OutputError(f"cannot write {self.name}: {e}") from e
        self.container = c
        self.strict_ts = not (c.format.flags & AVFMT_TS_NONSTRICT)
        opts: dict[str, str] = {}
        if self.video_template is not None:
            try:
                s = c.add_stream_from_template(self.video_template, opaque=True)
            except (av.error.FFmpegError, ValueError) as e:
                self._fail(f"the restored video cannot be copied into {self.name}: {e}", e)
            s.time_base = self.video_template.time_base
        else:
            s = self._add_encoder(c, opts)
        if info.rotation:
            s.set_display_rotation(info.rotation)
        for k, v in info.stream_metadata.items():
            if k not in ("encoder", "vendor_id"):
                s.metadata[k] = v
        for k, v in info.metadata.items():
            c.metadata[k] = v
        if info.chapters:
            c.set_chapters(info.chapters)
        self.stream = s
        self._add_attachments(c, [src for src in self.copy_streams if src.type == "attachment"])
        for src in self.copy_streams:
            if src.type == "attachment":
                continue
            try:
                self.stream_map[src.index] = c.add_stream_from_template(src)
            except (av.error.FFmpegError, ValueError) as e:
                self._fail(f"{src.type} stream #{src.index} ({src.codec_context.name}) cannot be copied "
                           f"into {self.name}: {e}; choose a container that holds it (.mkv holds most)", e)
        try:  # open the encoder and write the header now, so a bad setting is named as such
            c.start_encoding()
        except (av.error.FFmpegError, ValueError) as e:
            self._fail(f"cannot start encoding {self.name} with {self.codec} (pix_fmt {self.pix_fmt}, "
                       f"options {opts}): {ffmpeg_reason(e)}", e)

    def _add_attachments(self, c: Any, attachments: list[Any]) -> None:
        """Copy attachment streams (Matroska's fonts for subtitles), or say on stderr what was dropped."""
        dropped = []
        for src in attachments:
            name = src.name or src.metadata.get("filename") or f"attachment #{src.index}"
            if c.format.name != "matroska":
                dropped.append(name)
                continue
            try:
                c.add_attachment(name=name, mimetype=src.mimetype or src.metadata.get("mimetype")
                                 or "application/octet-stream", data=bytes(src.data or b""))
            except (av.error.FFmpegError, ValueError, TypeError):
                dropped.append(name)
        if dropped:
            print(f"vdeblur: warning: {self.name} cannot hold the input's attachments, not copied: "
                  f"{', '.join(dropped)}; an .mkv output keeps them", file=sys.stderr)

    def _add_encoder(self, c: Any, opts: dict[str, str]) -> Any:
        info = self.info
        try:
            s = c.add_stream(self.codec, rate=info.rate or None)
        except (av.error.FFmpegError, ValueError) as e:
            self._fail(f"unknown or unusable encoder {self.codec!r}: {e}", e)
        s.width, s.height = info.width, info.height
        s.pix_fmt = self.pix_fmt
        # frame and slice threads, as the ffmpeg CLI: PyAV's default (slices only) runs libx264 on
        # sliced threads (2 slices a frame here), costing CPU time and bitrate against ffmpeg's
        # frame threads (benchmarks/io_overhead.py)
        s.thread_type = "AUTO"
        s.time_base = info.time_base
        cc = s.codec_context
        cc.time_base = info.time_base
        for key, value in info.color.items():
            if key == "colorspace" and not value and planar_equivalent(self.pix_fmt):
                value = self.spec.colorspace  # RGB input, YUV output: name the matrix used
            if value is not None:
                try:
                    setattr(cc, key, value)
                except Exception:
                    pass
        if self.crf is not None:
            opts["crf"] = str(self.crf)
            if self.codec in ("libvpx-vp9", "libvpx"):
                opts["b"] = "0"
        if self.preset:
            opts["preset"] = self.preset
        s.options = opts
        return s

    def _fail(self, message: str, cause: BaseException) -> NoReturn:
        """Drop what was written and raise one OutputError line."""
        self.abort()
        raise OutputError(message) from cause

    @property
    def name(self) -> str:
        return self.target if isinstance(self.target, str) else "<stream>"

    # -- writing -------------------------------------------------------------------------------
    def write_frame(self, frame: Frame, restored: np.ndarray | None = None) -> None:
        """Encode ``frame``: its restored pixels when given, else the decoded frame itself."""
        self.open()
        # exact colour (io/colour.py): pixels a method left as they were keep their decoded
        # samples, changed ones are converted with the stream's matrix and range, rounded
        # correctly; pass-through frames are converted only to change depth or subsampling
        src = frame.av_frame
        if restored is not None:
            src_rgb = frame.rgb() if src is not None else None
            if src_rgb is not None and src_rgb.dtype != restored.dtype:
                src_rgb = None
            vf = encode_frame(self.pix_fmt, self.spec, restored=np.asarray(restored), source=src,
                              source_spec=frame.colour, source_rgb=src_rgb)
        elif src is not None:
            vf = src
            if vf.format.name != self.pix_fmt:
                vf = encode_frame(self.pix_fmt, self.spec, source=src, source_spec=frame.colour,
                                  source_rgb=None if planar_equivalent(src.format.name) else frame.rgb())
        else:
            vf = encode_frame(self.pix_fmt, self.spec, restored=frame.rgb())
        vf.pts = self._monotonic(frame.pts, encoding=True)
        vf.time_base = frame.time_base
        vf.pict_type = av.video.frame.PictureType.NONE
        try:
            for pkt in self.stream.encode(vf):
                self.container.mux(pkt)
        except av.error.FFmpegError as e:
            raise OutputError(f"encoding {self.name} failed at frame {frame.index}: {e}") from e
        self.frames_written += 1

    def write_video_packet(self, pkt: Any) -> None:
        """Copy one encoded packet of ``video_template``'s kind (remux mode: no encoder)."""
        self.open()
        if pkt.dts is not None:
            dts = self._monotonic(pkt.dts)
            if dts != pkt.dts:
                if pkt.pts is not None and pkt.pts < dts:
                    pkt.pts = dts
                pkt.dts = dts
        pkt.stream = self.stream
        try:
            self.container.mux(pkt)
        except av.error.FFmpegError as e:
            raise OutputError(f"copying the restored video into {self.name} failed: {e}") from e
        self.frames_written += 1

    def _monotonic(self, ts: int | None, encoding: bool = False) -> int | None:
        """``ts``, or one tick after the last when the container needs increasing timestamps, or
        (``encoding``) when it goes back: an encoder takes frames in presentation order, and
        one given a timestamp earlier than the frame before (an AVI's packed B-frames decode
        so, their timestamps in decoding order) writes packets no muxer accepts."""
        if ts is None:
            return ts
        # once a timestamp went back, a repeated one is the knock-on of moving it: moved too
        strict = self.strict_ts or (encoding and self.reordered > 0)
        last = self._last_ts
        if last is not None and (ts < last and (strict or encoding) or ts == last and strict):
            if ts < last:
                self.reordered += 1
            ts = last + 1
            self.retimed += 1
        self._last_ts = ts
        return ts

    def retimed_warning(self) -> str | None:
        """One line for stderr when timestamps were moved, else None."""
        if not self.retimed:
            return None
        if self.reordered:
            return (f"{self.retimed} video frame(s) had a timestamp at or before the frame shown before them "
                    f"({self.reordered} before it: timestamps in decoding order, as an AVI's packed B-frames "
                    f"give them): moved 1 tick after it each, so that they play in the order they decode")
        return (f"{self.retimed} video frame(s) repeated the timestamp before them (valid in Matroska, not in "
                f"{self.container_name}): moved 1 tick later each, as ffmpeg's muxer does; {self.keeps_ts}")

    @property
    def container_name(self) -> str:
        return self.format or (os.path.splitext(self.name)[1].lstrip(".") or "this container")

    keeps_ts = "an .mkv output or --format matroska keeps the timestamps as they are"

    def write_packet(self, item: CopyPacket) -> None:
        if self.container is None:
            self._pending.append(item)
            return
        out = self.stream_map.get(item.stream_index)
        if out is None:
            return
        pkt = item.packet
        pkt.stream = out
        try:
            self.container.mux(pkt)
        except av.error.FFmpegError as e:
            raise OutputError(f"copying stream #{item.stream_index} into {self.name} failed: {e}") from e

    def close(self) -> None:
        """Flush the encoder and close the container (does not rename: see ``commit``)."""
        if self.container is None:
            return
        try:
            if self.video_template is None:
                for pkt in self.stream.encode(None):
                    self.container.mux(pkt)
            self.container.close()
        except av.error.FFmpegError as e:
            raise OutputError(f"finishing {self.name} failed: {e}") from e
        except OSError as e:
            raise OutputError(f"finishing {self.name} failed: {e.strerror or e}") from e

    def commit(self) -> None:
        """Close and move the temporary file over the target path."""
        if self.container is None:
            raise OutputError(f"no frames to write to {self.name}")
        self.close()
        if self.tmp is not None:
            try:
                os.replace(self.tmp, self.target)
            except OSError as e:
                self._remove_tmp()
                raise OutputError(f"cannot move the result to {self.target}: {e.strerror or e}") from e
            self.tmp = None
        note = self.retimed_warning()
        if note:
            print(f"vdeblur: warning: {note}", file=sys.stderr)

    def abort(self) -> None:
        """Drop everything written so far."""
        if self.container is not None:
            try:
                self.container.close()
            except Exception:
                pass
            self.container = None
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        if self.tmp and os.path.exists(self.tmp):
            try:
                os.remove(self.tmp)
            except OSError:
                print(f"vdeblur: could not remove {self.tmp}", file=sys.stderr)
        self.tmp = None


def write_rgb_video(path: str, frames: list[np.ndarray], fps: int = 25, codec: str = "ffv1",
                    pix_fmt: str = "bgr0", options: dict[str, str] | None = None) -> None:
    """Write RGB uint8 frames as a video (lossless FFV1 RGB by default): for demos and datasets."""
    h, w = frames[0].shape[:2]
    with av.open(path, "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        s.options = dict(options or {})
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
