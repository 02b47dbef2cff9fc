"""Every error kind: one clear line on stderr, its exit code, and no output left behind."""

import os

import pytest

from media import write_audio, write_video


def files_in(d):
    return sorted(p.name for p in d.iterdir())


def check(r, code, text):
    assert r.exit_code == code, r.output
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert text in lines[0], lines[0]
    assert "Traceback" not in r.output


def test_missing_input(cli, tmp_path):
    check(cli("run", tmp_path / "nope.mp4", "-o", tmp_path / "o.mp4"), 3, "input not found")
    assert not (tmp_path / "o.mp4").exists()


def test_directory_input(cli, tmp_path):
    """A directory is a batch of inputs: -o must then be a directory, not a video name."""
    check(cli("run", tmp_path, "-o", tmp_path / "o.mp4"), 2, "need -o DIRECTORY")
    assert not (tmp_path / "o.mp4").exists()


def test_not_a_video(cli, tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 50)
    check(cli("run", p, "-o", tmp_path / "o.mp4"), 3, "cannot read")
    assert files_in(tmp_path) == ["notes.mp4"]


def test_empty_file(cli, tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    check(cli("run", p, "-o", tmp_path / "o.mp4"), 3, "empty")


def test_audio_only(cli, tmp_path):
    import numpy as np

    p = tmp_path / "audio.m4a"
    write_audio(p, np.zeros((1, 10 * 1024), np.float32))  # ten frames of mono silence
    check(cli("run", p, "-o", tmp_path / "o.mp4"), 3, "no video stream")
    assert files_in(tmp_path) == ["audio.m4a"]


def test_unknown_method(cli, clip, tmp_path):
    check(cli("run", clip, "-o", tmp_path / "o.mp4", "--method", "nope"), 2, "unknown method 'nope'")


@pytest.mark.parametrize("psf", ["motion:x", "gauss:2", "motion:9", "gaussian:-1"])
def test_bad_psf(cli, clip, tmp_path, psf):
    check(cli("run", clip, "-o", tmp_path / "o.mp4", "--method", "wiener", "--psf", psf), 2, "psf")
    assert not (tmp_path / "o.mp4").exists()


def test_bad_device_and_precision(cli, clip, tmp_path):
    check(cli("run", clip, "-o", tmp_path / "o.mp4", "--device", "tpu"), 2, "--device")
    check(cli("run", clip, "-o", tmp_path / "o.mp4", "--precision", "fp8"), 2, "--precision")


def test_output_exists_needs_force(cli, clip, tmp_path):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep me")
    check(cli("run", clip, "-o", out), 4, "--force")
    assert out.read_bytes() == b"keep me"
    r = cli("run", clip, "-o", out, "--force", "--method", "identity")
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 100


def test_output_equals_input(cli, clip, tmp_path):
    before = clip.read_bytes()
    check(cli("run", clip, "-o", clip, "--force"), 4, "is the input")
    assert clip.read_bytes() == before


def test_unwritable_output(cli, clip, tmp_path):
    check(cli("run", clip, "-o", tmp_path / "missing" / "o.mp4"), 4, "does not exist")
    if os.path.isdir("/proc/self"):  # a folder nobody, not even root, can create files in
        check(cli("run", clip, "-o", "/proc/self/vdeblur-out.mp4", "--method", "identity"), 4, "writ")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions
            pytest.skip("running as root: permissions are not enforced")
        check(cli("run", clip, "-o", ro / "o.mp4"), 4, "not writable")
    finally:
        ro.chmod(0o700)


def test_unknown_container(cli, clip, tmp_path):
    check(cli("run", clip, "-o", tmp_path / "o.notavideo", "--method", "identity"), 4, "container")
    assert files_in(tmp_path) == ["in.mp4"]


def test_reference_size_mismatch(cli, clip, tmp_path):
    ref = tmp_path / "ref.mp4"
    write_video(ref, 12, (32, 24))
    check(cli("run", clip, "-o", tmp_path / "o.mp4", "--reference", ref), 3, "reference size")
    assert not (tmp_path / "o.mp4").exists()


def test_reference_count_mismatch(cli, clip, tmp_path):
    ref = tmp_path / "ref.mp4"
    write_video(ref, 9, (64, 48))
    check(cli("run", clip, "-o", tmp_path / "o.mp4", "--reference", ref), 3, "frames")
    assert not (tmp_path / "o.mp4").exists()


def test_truncated_input_reports_lost_frames(cli, tmp_path):
    full = tmp_path / "full.mp4"
    write_video(full, 40, (64, 48), container_options={"movflags": "faststart"})
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    out = tmp_path / "o.mp4"
    r = cli("run", cut, "-o", out, "--method", "identity", "--json")
    check(r, 6, "lost")
    import re

    m = re.search(r"(\d+) frames decoded of 40 expected, (\d+) lost", r.stderr)
    assert m, r.stderr
    decoded, lost = int(m.group(1)), int(m.group(2))
    assert 0 < decoded < 40 and decoded + lost == 40
    from media import read_video

    assert len(read_video(out)["frames"]) == decoded  # every decodable frame, nothing invented


def test_internal_error_one_line_and_debug_traceback(cli, clip, tmp_path, monkeypatch):
    import vdeblur.jobs.runner

    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(vdeblur.jobs.runner, "restore_span", boom)
    check(cli("run", clip, "-o", tmp_path / "o.mp4"), 1, "internal error: RuntimeError: boom")
    r = cli("--debug", "run", clip, "-o", tmp_path / "o.mp4")
    assert isinstance(r.exception, RuntimeError)  # --debug lets the traceback through


@pytest.mark.parametrize("io", ["pyav", "ffmpeg"])
def test_bad_encoder_settings(cli, clip, tmp_path, io):
    out = tmp_path / "o.mp4"
    check(cli("run", clip, "-o", out, "--preset", "nosuch", "--io", io), 2, "--preset")
    check(cli("run", clip, "-o", out, "--codec", "nosuchcodec", "--method", "identity", "--io", io), 2, "nosuchcodec")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
    check(cli("run", clip, "-o", out, "--pix-fmt", "nv99"), 2, "--pix-fmt")


def test_json_with_stdout_output_is_refused(cli, clip):
    check(cli("run", clip, "-o", "-", "--io", "ffmpeg", "--json"), 2, "--json")


def test_out_of_memory_is_its_own_exit_code():
    """Running out of memory is not a bug: exit 9 with one line, for vdeblur's own error (a frame
    that fits nowhere) and for a MemoryError from anywhere else."""
    from vdeblur.cli.errors import error_exit
    from vdeblur.errors import EXIT_CODES, OutOfMemoryError

    line, code = error_exit(OutOfMemoryError("not enough memory to restore a 8000x8000 frame"))
    assert code == 9 and line == "vdeblur: out of memory: not enough memory to restore a 8000x8000 frame"
    line, code = error_exit(MemoryError())
    assert code == 9 and line.startswith("vdeblur: out of memory") and "\n" not in line
    assert 9 in dict(EXIT_CODES)
