"""Edge cases of the writer: repeated timestamps, file modes, stale partials, attachments,
encoders that are not video encoders."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

from media import read_video, write_video

DUP_PTS = [0, 40, 40, 80, 120, 160]


@pytest.fixture
def dup_clip(tmp_path):
    """A Matroska clip whose third frame repeats the second's timestamp (valid in Matroska)."""
    path = tmp_path / "dup.mkv"
    write_video(path, len(DUP_PTS), (64, 48), codec="ffv1", pts=DUP_PTS, time_base=Fraction(1, 1000))
    with av.open(str(path)) as c:
        assert [f.pts for f in c.decode(video=0)] == DUP_PTS
    return path


@pytest.mark.parametrize("io", ["pyav", "ffmpeg"])
def test_repeated_timestamps_into_mp4_keep_every_frame(cli, dup_clip, tmp_path, io):
    out = tmp_path / "out.mp4"
    r = cli("run", dup_clip, "-o", out, "--method", "unsharp", "--select", "none", "--io", io)
    assert r.exit_code == 0, r.output
    assert out.exists()
    times = read_video(out)["times"]
    assert len(times) == len(DUP_PTS)
    assert all(b > a for a, b in zip(times, times[1:]))
    assert times == pytest.approx([p / 1000 for p in DUP_PTS], abs=0.0021)  # moved by a tick at most
    if io == "pyav":  # (with --io ffmpeg, ffmpeg's own NUT muxer moves them, before vdeblur sees them)
        assert "repeated the timestamp" in r.stderr and "1 video frame" in r.stderr


def test_repeated_timestamps_stay_in_matroska(cli, dup_clip, tmp_path):
    out = tmp_path / "out.mkv"
    r = cli("run", dup_clip, "-o", out, "--method", "identity", "--select", "none")
    assert r.exit_code == 0, r.output
    assert read_video(out)["times"] == pytest.approx([p / 1000 for p in DUP_PTS], abs=1e-6)
    assert "repeated the timestamp" not in r.stderr


def test_repeated_timestamps_segmented_into_mp4(cli, tmp_path):
    """Segments are joined by copying packets: the join moves a repeated timestamp too."""
    pts = [0, 40, 80, 80, 120, 160, 200, 240, 280, 320]
    src = tmp_path / "dup10.mkv"
    write_video(src, len(pts), (64, 48), codec="ffv1", pts=pts, time_base=Fraction(1, 1000))
    out = tmp_path / "out.mp4"
    r = cli("run", src, "-o", out, "--method", "unsharp", "--select", "none", "--segment", "0.1")
    assert r.exit_code == 0, r.output
    times = read_video(out)["times"]
    assert len(times) == len(pts) and all(b > a for a, b in zip(times, times[1:]))
    assert "repeated the timestamp" in r.stderr


@pytest.fixture
def backwards_clip(tmp_path):
    """A Matroska clip whose decoded frames' timestamps go back twice (packet timestamps in
    decoding order, as an AVI's packed B-frames decode: opencv's Megamind.avi, 88 times)."""
    import numpy as np

    path = tmp_path / "back.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt, s.time_base = 64, 48, "yuv420p", Fraction(1, 25)
        for i, p in enumerate(BACK_PTS):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, np.uint8), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            for pk in s.encode(f):
                pk.pts, pk.dts = p, i
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    with av.open(str(path)) as c:
        got = [f.pts for f in c.decode(video=0)]
    assert sum(b < a for a, b in zip(got, got[1:])) == 2
    return path


BACK_PTS = [1, 2, 3, 5, 4, 6, 8, 7, 9]


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_timestamps_going_back_are_encoded_in_order(cli, backwards_clip, tmp_path, ext):
    """An encoder takes frames in presentation order: a frame whose timestamp is earlier than the
    one before is moved a tick after it (it had made x264's packets unmuxable: "Invalid argument"
    on every Matroska output of such a file); every frame kept, in decoding order."""
    out = tmp_path / f"out.{ext}"
    r = cli("run", backwards_clip, "-o", out, "--method", "unsharp", "--select", "none")
    assert r.exit_code == 0, r.output
    times = read_video(out)["times"]
    assert len(times) == len(BACK_PTS) and all(b > a for a, b in zip(times, times[1:]))
    assert "decoding order" in r.stderr


FONT = bytes(range(256)) * 40


@pytest.fixture
def font_clip(tmp_path):
    """A Matroska clip with a font attachment (as subtitles bring)."""
    path = tmp_path / "fonts.mkv"
    write_video(path, 6, (64, 48), codec="ffv1", attachments=[("DejaVuSans.ttf", "font/ttf", FONT)])
    return path


def frame_count(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def attachments(path) -> list[tuple[str, str, bytes]]:
    with av.open(str(path)) as c:
        return [(a.name, a.mimetype, bytes(a.data)) for a in c.streams.attachments]


def test_attachments_are_copied_into_matroska(cli, font_clip, tmp_path):
    out = tmp_path / "out.mkv"
    r = cli("run", font_clip, "-o", out, "--method", "identity", "--select", "none")
    assert r.exit_code == 0, r.output
    assert attachments(out) == [("DejaVuSans.ttf", "font/ttf", FONT)]
    assert frame_count(out) == 6


@pytest.mark.parametrize("io", ["pyav", "ffmpeg"])
def test_dropped_attachments_are_named(cli, font_clip, tmp_path, io):
    out = tmp_path / ("out.mp4" if io == "pyav" else "out.mkv")
    r = cli("run", font_clip, "-o", out, "--method", "identity", "--select", "none", "--io", io)
    assert r.exit_code == 0, r.output
    assert "attachments" in r.stderr and "DejaVuSans.ttf" in r.stderr
    assert frame_count(out) == 6


@pytest.mark.parametrize("io", ["pyav", "ffmpeg"])
@pytest.mark.parametrize("codec,words", [("aac", "audio encoder"), ("srt", "subtitle encoder"),
                                         ("no-such-encoder", "unknown encoder")])
def test_non_video_encoder_is_a_usage_error(cli, tmp_path, io, codec, words):
    src = tmp_path / "in.mp4"
    write_video(src, 3, (64, 48))
    out = tmp_path / "out.mkv"
    r = cli("run", src, "-o", out, "--method", "identity", "--select", "none", "--codec", codec, "--io", io)
    assert r.exit_code == 2, r.output
    assert codec in r.stderr and words in r.stderr and "Traceback" not in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]  # nothing written


def test_avi_with_skipped_frame_slots_is_not_damaged(cli, tmp_path):
    """AVI states its length in frame slots; a slot the encoder skipped holds no frame (a 0-byte
    chunk). Fewer frames than slots over the whole duration is a variable-rate timeline, not a
    damaged input: exit 0, every frame kept at its time."""
    pts = [0, 1, 2, 5, 6, 9, 10, 11, 15, 16]
    src = tmp_path / "gaps.avi"
    write_video(src, len(pts), (64, 48), codec="mpeg4", pts=pts, time_base=Fraction(1, 25), fps=25)
    with av.open(str(src)) as c:
        assert c.streams.video[0].frames > len(pts)  # the header counts the slots
    out = tmp_path / "out.mkv"
    r = cli("run", src, "-o", out, "-m", "unsharp", "--json")
    assert r.exit_code == 0, r.output
    got = read_video(out)
    assert len(got["frames"]) == len(pts)
    assert got["times"] == pytest.approx([p / 25 for p in pts], abs=1e-3)


def test_truncated_avi_is_still_damaged(cli, tmp_path):
    """The relaxed count applies only when the frames reach the stated end: a cut-off AVI is exit 6."""
    src = tmp_path / "whole.avi"
    write_video(src, 40, (64, 48), codec="mpeg4", time_base=Fraction(1, 25))
    data = src.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    r = cli("run", cut, "-o", tmp_path / "out.mkv", "-m", "unsharp")
    assert r.exit_code == 6, r.output
