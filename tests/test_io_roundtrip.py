"""Frame count, timestamps, audio, size, depth, rotation and metadata survive `vdeblur run`."""

import numpy as np
import pytest

from media import read_video, write_video


def run_ok(cli, *args):
    r = cli("run", *args)
    assert r.exit_code == 0, r.output
    return r


@pytest.mark.parametrize("io", ["pyav", "ffmpeg"])
def test_identity_keeps_everything(cli, clip, tmp_path, io):
    out = tmp_path / f"out-{io}.mp4"
    run_ok(cli, clip, "-o", out, "--method", "identity", "--select", "none", "--io", io, "--crf", "0")
    a, b = read_video(clip), read_video(out)
    assert len(b["frames"]) == len(a["frames"]) == 12
    assert b["times"] == pytest.approx(a["times"], abs=1e-3)
    assert b["types"] == ["video", "audio"]
    assert b["codecs"][1] == "aac"
    assert b["audio_packets"] == a["audio_packets"]
    assert b["metadata"].get("title") == "test clip"
    assert b["rotation"] == 90
    assert (b["width"], b["height"]) == (64, 48)
    for x, y in zip(a["frames"], b["frames"]):
        assert np.array_equal(x, y)  # decoded frames reach a lossless encoder untouched


@pytest.mark.parametrize("io", ["pyav", "ffmpeg"])
def test_vfr_timestamps_survive(cli, vfr_clip, tmp_path, io):
    src, times = vfr_clip
    out = tmp_path / "out.mkv"
    run_ok(cli, src, "-o", out, "--method", "unsharp", "--select", "none", "--io", io)
    b = read_video(out)
    assert b["times"] == pytest.approx(times, abs=1e-3)
    assert b["audio_packets"] == read_video(src)["audio_packets"]


@pytest.mark.parametrize("size", [(65, 47), (33, 64), (64, 31)])
def test_odd_sizes(cli, tmp_path, size):
    src = tmp_path / "odd.mkv"
    write_video(src, 6, size, pix_fmt="yuv444p")
    out = tmp_path / "odd-out.mp4"
    run_ok(cli, src, "-o", out, "--method", "unsharp", "--select", "none")
    b = read_video(out)
    assert (b["width"], b["height"]) == size
    assert len(b["frames"]) == 6


def test_ten_bit_input(cli, tmp_path):
    src = tmp_path / "ten.mkv"
    write_video(src, 5, (64, 48), pix_fmt="yuv420p10le")
    out8, out10 = tmp_path / "o8.mkv", tmp_path / "o10.mkv"
    run_ok(cli, src, "-o", out8, "--method", "unsharp", "--select", "none")
    run_ok(cli, src, "-o", out10, "--method", "unsharp", "--select", "none", "--pix-fmt", "yuv420p10le")
    assert read_video(out8)["pix_fmt"] == "yuv420p"
    b = read_video(out10)
    assert b["pix_fmt"] == "yuv420p10le"
    assert b["frames"][0].dtype == np.uint16 and len(b["frames"]) == 5
    # the 10-bit path keeps more than 8 bits: values are not all multiples of 256
    assert np.any(b["frames"][2] % 256 != 0)


def test_sharp_frames_pass_untouched(cli, clip, tmp_path):
    """identity: the decoded frames go to the encoder as they are (no colour conversion)."""
    out = tmp_path / "o.mkv"
    run_ok(cli, clip, "-o", out, "--method", "identity", "--select", "none", "--codec", "ffv1")
    a, b = read_video(clip), read_video(out)
    for x, y in zip(a["frames"], b["frames"]):
        assert np.array_equal(x, y)


def test_subtitles_copied(cli, tmp_path):
    import av

    src = tmp_path / "sub.mkv"
    write_video(src, 6, (64, 48))
    # mux a subtitle stream in next to the video with the ffmpeg binary
    import subprocess

    from vdeblur.io.pipe import ffmpeg_exe

    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,200\nhello\n")
    both = tmp_path / "both.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(src), "-i", str(srt), "-map", "0", "-map", "1",
                    "-c", "copy", str(both)], check=True)
    out = tmp_path / "o.mkv"
    run_ok(cli, both, "-o", out, "--method", "identity", "--select", "none")
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "subtitle"]
        assert c.streams.subtitles[0].codec_context.name in ("subrip", "srt")


@pytest.mark.slow
def test_stdin_to_stdout_with_ffmpeg_io(clip, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "piped.mkv"
    with open(clip, "rb") as fin, open(out, "wb") as fout:
        p = subprocess.run([sys.executable, "-m", "vdeblur", "run", "-", "-o", "-", "--io", "ffmpeg",
                            "--method", "unsharp", "--select", "none"], stdin=fin, stdout=fout,
                           stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    a, b = read_video(clip), read_video(out)
    assert len(b["frames"]) == len(a["frames"])
    assert b["times"] == pytest.approx(a["times"], abs=2e-3)
    assert b["types"] == ["video", "audio"]
    assert b["audio_packets"] == a["audio_packets"]


def test_stdin_needs_ffmpeg_io(cli, clip, tmp_path):
    r = cli("run", "-", "-o", tmp_path / "o.mp4")
    assert r.exit_code == 2 and "--io ffmpeg" in r.stderr


def test_cli_starts_without_torch_or_av():
    import subprocess
    import sys

    code = "import sys, vdeblur.cli.app; print('torch' in sys.modules, 'av' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_luma_is_on_the_8bit_scale_for_every_depth(tmp_path):
    from vdeblur.io.reader import Frame, VideoReader

    lumas = []
    for name, pix in [("8.mkv", "yuv420p"), ("10.mkv", "yuv420p10le"), ("444.mkv", "yuv444p")]:
        write_video(tmp_path / name, 2, (64, 48), pix_fmt=pix, codec="ffv1")
        with VideoReader(str(tmp_path / name)) as r:
            f = next(it for it in r.items() if isinstance(it, Frame))
            y = f.luma().astype(float)
            rgb_y = Frame(0, 0, f.time_base, array=f.rgb()).luma()
            lumas.append(y)
            assert np.abs(y - rgb_y).mean() < 20  # limited-range Y vs full-range RGB luma
    assert np.abs(lumas[0] - lumas[1]).mean() < 2
    assert np.abs(lumas[0] - lumas[2]).mean() < 2


@pytest.mark.parametrize("io", ["pyav", "ffmpeg"])
def test_chapters_survive(cli, tmp_path, io):
    from fractions import Fraction

    src = tmp_path / "ch.mkv"
    tb = Fraction(1, 25)
    write_video(src, 20, (64, 48), chapters=[
        {"id": 1, "start": 0, "end": 10, "time_base": tb, "metadata": {"title": "one"}},
        {"id": 2, "start": 10, "end": 20, "time_base": tb, "metadata": {"title": "two"}},
    ])
    out = tmp_path / "o.mkv"
    run_ok(cli, src, "-o", out, "--method", "identity", "--io", io)
    assert read_video(out)["chapters"] == [(0.0, "one"), (0.4, "two")]


def test_metadata_with_special_characters_through_ffmpeg(cli, tmp_path):
    src = tmp_path / "m.mkv"
    title = "a=b; #c \\ d\nsecond line"
    write_video(src, 4, (64, 48), metadata={"title": title, "comment": "plain"})
    out = tmp_path / "o.mkv"
    run_ok(cli, src, "-o", out, "--method", "identity", "--io", "ffmpeg")
    md = {k.lower(): v for k, v in read_video(out)["metadata"].items()}  # Matroska upper-cases tags
    assert md.get("title") == title and md.get("comment") == "plain"
