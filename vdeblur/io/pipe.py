"""The ffmpeg subprocess backend (``--io ffmpeg``).

Two ``ffmpeg`` processes, command lines built with ffmpeg-python:

    decoder: IN (file or stdin) -> NUT on its stdout: raw RGB video + audio/subtitles copied
    encoder: NUT on its stdin  -> OUT (file, or stdout): any encoder the binary has, streams copied

NUT carries every frame's timestamp, so VFR survives, and the copied packets travel inside
it in demux order. vdeblur's own reader and writer (PyAV) read and write the NUT streams, so
the engine sees exactly the same items as with the PyAV backend. The binary comes from PATH,
else from the imageio-ffmpeg package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import deque
from typing import Any

from vdeblur.errors import InputError, OutputError, UsageError
from vdeblur.io.probe import VideoInfo, check_input_path
from vdeblur.io.reader import VideoReader
from vdeblur.io.writer import VideoWriter, temp_path_for

# NUT cannot hold negative times (audio priming starts before 0), and ffmpeg would shift every
# stream to avoid them; instead every time crosses the pipe TS_OFFSET seconds late, undone on output
TS_OFFSET = 10

# frames cross the pipe in their own pixel format; should ffmpeg still convert one, round accurately
SWS_FLAGS = "bicubic+accurate_rnd+full_chroma_int"


def ffmpeg_exe() -> str:
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        raise UsageError(
            "--io ffmpeg needs an ffmpeg binary: none on PATH and imageio-ffmpeg is not installed "
            "(apt-get install ffmpeg, or pip install imageio-ffmpeg)"
        ) from None


def ffmpeg_encoder_kind(name: str) -> str | None:
    """"video", "audio" or "subtitle" for an encoder of the ffmpeg binary, None if it has none
    of that name."""
    try:
        r = subprocess.run([ffmpeg_exe(), "-hide_banner", "-h", f"encoder={name}"], capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    text = r.stdout + r.stderr
    if "not recognized" in text or f"Encoder {name} " not in text:
        return None
    if "Supported sample formats" in text or "Supported sample rates" in text or "channel layouts" in text:
        return "audio"
    if "pixel formats" in text or "Supported framerates" in text:
        return "video"
    return "subtitle"


class _StderrTail:
    """Keep the last lines a process writes to stderr (to explain its failure in one line)."""

    def __init__(self, stream: Any):
        self.lines: deque[str] = deque(maxlen=20)
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self.lines.append(line)

    def last(self) -> str:
        """The first line that names an error (the cause, usually), else the last line."""
        self.thread.join(timeout=2)
        for line in self.lines:
            if any(w in line.lower() for w in ("error", "invalid", "not found", "unknown", "no such")):
                return line
        return self.lines[-1] if self.lines else "no message"


def _probe_file(path: str) -> VideoInfo | None:
    """Container facts NUT does not carry (frame count, rotation, metadata), from the file itself
    (nothing for stdin)."""
    if path == "-":
        return None
    with VideoReader(path, copy_streams=False) as r:
        names = [a.name or f"attachment #{a.index}" for a in r.container.streams.attachments]
        if names:  # NUT cannot carry them to the encoder
            print(f"vdeblur: warning: --io ffmpeg does not copy the input's attachments: {', '.join(names)}; "
                  "--io pyav into an .mkv output keeps them", file=sys.stderr)
        next((it for it in r.items() if hasattr(it, "av_frame")), None)  # the first frame: rotation
        return r.info


class PipeReader(VideoReader):
    def __init__(self, source: str):
        import ffmpeg

        check_input_path(source)
        probed = _probe_file(source)
        stream = ffmpeg.input("pipe:" if source == "-" else source, noautorotate=None, copyts=None)
        out = ffmpeg.output(
            stream["v:0"], stream["a?"], stream["s?"], "pipe:", f="nut",
            **{"c:v": "rawvideo", "c:a": "copy", "enc_time_base:v": "demux", "output_ts_offset": str(TS_OFFSET),
               "c:s": "copy", "fps_mode": "passthrough", "map_metadata": "0"},
        )
        cmd = out.compile(cmd=ffmpeg_exe())
        cmd[1:1] = ["-nostdin", "-hide_banner", "-v", "error", "-sws_flags", SWS_FLAGS]
        if source == "-":
            cmd.remove("-nostdin")
        self.proc = subprocess.Popen(
            cmd, stdin=sys.stdin.buffer if source == "-" else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.err = _StderrTail(self.proc.stderr)
        try:
            super().__init__(self.proc.stdout, format="nut",
                             name="<stdin>" if source == "-" else source)
        except InputError:
            self.proc.kill()
            self.proc.wait()
            raise InputError(f"ffmpeg cannot read {source}: {self.err.last()}") from None
        if probed is not None:
            self.info.frames = probed.frames
            self.info.duration = probed.duration
            self.info.rotation = probed.rotation
            self.info.color = probed.color
            self.info.metadata = probed.metadata or self.info.metadata
            self.info.pix_fmt = probed.pix_fmt
            self.info.bit_depth = probed.bit_depth
        self._rotation = self.info.rotation

    def _frame(self, f: Any):
        fr = super()._frame(f)
        fr.offset = TS_OFFSET
        self.info.rotation = self._rotation  # NUT has no display matrix: keep the probed one
        return fr

    def close(self) -> None:
        super().close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.returncode not in (0, None, -9) and not self.stats.demux_error:
            self.stats.demux_error = f"ffmpeg: {self.err.last()}"


def ffmetadata(metadata: dict[str, str], chapters: list[dict[str, Any]]) -> str:
    """Container metadata and chapters in FFmpeg's FFMETADATA1 text format (NUT carries no chapters)."""

    def esc(v: Any) -> str:
        return "".join("\\" + ch if ch in "=;#\\\n" else ch for ch in str(v))

    lines = [";FFMETADATA1"] + [f"{esc(k)}={esc(v)}" for k, v in metadata.items()]
    for ch in chapters:
        tb = ch["time_base"]
        lines += ["[CHAPTER]", f"TIMEBASE={tb.numerator}/{tb.denominator}", f"START={ch['start']}", f"END={ch['end']}"]
        lines += [f"{esc(k)}={esc(v)}" for k, v in ch.get("metadata", {}).items()]
    return "\n".join(lines) + "\n"


class PipeWriter(VideoWriter):
    """Writes NUT (raw video + copied packets) into an ffmpeg encoder process."""

    def __init__(self, out: str, info: VideoInfo, reader: VideoReader, *, codec: str, crf: int | None,
                 preset: str | None, pix_fmt: str, format: str | None):
        self.final = out
        self.out_tmp: str | None = None
        self.reader = reader
        self.proc: Any = None
        self.meta_file: str | None = None
        # keep source times (as --io pyav does): no shifting, the encoder in the demuxer's time base
        enc: dict[str, Any] = {"c:v": codec, "pix_fmt": pix_fmt, "c:a": "copy", "c:s": "copy",
                               "fps_mode": "passthrough", "avoid_negative_ts": "disabled",
                               "enc_time_base:v": "demux",
                               "map_metadata": "1", "map_chapters": "1"}  # input 1: an FFMETADATA file
        if crf is not None:
            enc["crf"] = str(crf)
            if codec in ("libvpx-vp9", "libvpx"):
                enc["b:v"] = "0"
        if preset:
            enc["preset"] = preset
        if format or out == "-":
            enc["f"] = format or "matroska"
        self.enc_opts = enc
        # frames cross the pipe already in the output's pixel format: the colour conversion is
        # vdeblur's own (as with --io pyav), and pass-through frames are not converted at all
        super().__init__(None, VideoInfo(**{**vars(info), "rotation": 0}), copy_streams=reader.copy,
                         codec="rawvideo", crf=None, pix_fmt=pix_fmt, format="nut")
        # NUT's raw video does not carry every colour tag: name the matrix and range of the
        # samples vdeblur wrote (io/colour.py) to the encoder, and to its NUT input too, or
        # ffmpeg would convert from "unspecified" to the output's tags
        tags = {k: v for k, v in (info.color or {}).items() if v and v != 2}
        tags.update(colorspace=self.spec.colorspace, color_range=2 if self.spec.full else 1)
        self.colour_opts = {f"{k}:v": str(int(v)) for k, v in tags.items()}
        self.enc_opts.update(self.colour_opts)

    def _open(self) -> None:
        """Start the encoder at the first frame (a run that fails before starts no process)."""
        import ffmpeg

        in_opts: dict[str, Any] = {"f": "nut", "copyts": None, "noautorotate": None, "itsoffset": str(-TS_OFFSET)}
        if self.reader.info.rotation:
            in_opts["display_rotation:v:0"] = str(self.reader.info.rotation)
        in_opts.update(self.colour_opts)
        self.out_tmp = None if self.final == "-" else temp_path_for(self.final)
        src = ffmpeg.input("pipe:", **in_opts)
        dest = self.out_tmp or "pipe:"
        info = self.reader.info
        fd, self.meta_file = tempfile.mkstemp(prefix="vdeblur-meta-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(ffmetadata(info.metadata, info.chapters))
        cmd = ffmpeg.output(src["v"], src["a?"], src["s?"], dest, **self.enc_opts).compile(cmd=ffmpeg_exe())
        at = cmd.index("pipe:") + 1  # the metadata file is input 1, right after the NUT pipe
        cmd[at:at] = ["-f", "ffmetadata", "-i", self.meta_file]
        cmd[1:1] = ["-hide_banner", "-v", "error", "-y", "-sws_flags", SWS_FLAGS]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL if self.out_tmp else sys.stdout.buffer,
            stderr=subprocess.PIPE,
        )
        self.err = _StderrTail(self.proc.stderr)
        self.target = self.proc.stdin
        super()._open()

    @property
    def name(self) -> str:
        return self.final

    container_name = "the NUT pipe to ffmpeg"
    keeps_ts = "--io pyav with an .mkv output keeps the timestamps as they are"

    def commit(self) -> None:
        try:
            super().commit()  # flush the NUT muxer
            self.proc.stdin.close()
        except (OutputError, OSError) as e:
            self.abort()
            raise OutputError(f"ffmpeg encoder failed: {self.err.last()}") from e
        code = self.proc.wait()
        self._remove_meta()
        if code != 0:
            self.abort()
            raise OutputError(f"ffmpeg encoder failed ({code}): {self.err.last()}")
        if self.out_tmp is not None:
            os.replace(self.out_tmp, self.final)
            self.out_tmp = None

    def _remove_meta(self) -> None:
        if self.meta_file and os.path.exists(self.meta_file):
            os.remove(self.meta_file)
        self.meta_file = None

    def abort(self) -> None:
        self._remove_meta()
        super().abort()
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.out_tmp and os.path.exists(self.out_tmp):
            os.remove(self.out_tmp)
        self.out_tmp = None

