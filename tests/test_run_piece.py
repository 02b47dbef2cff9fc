"""`vdeblur run --start TIME --frames N`: restore a piece of a video (to try a slow method)
without cutting it by hand. OUT holds the piece, its timestamps shifted by START as ffmpeg's
``-ss START -frames:v N`` gives them, the audio trimmed to the same span; rows and --reference
line up."""

import json

import av
import numpy as np
import pytest

from media import GOP10, read_video, write_video


@pytest.fixture(scope="module")
def gop(tmp_path_factory):
    """60 frames at 25 fps (2.4 s), a keyframe every 10 frames, B-frames, AAC audio."""
    path = tmp_path_factory.mktemp("piece") / "gop.mp4"
    write_video(path, 60, (64, 48), options=GOP10, audio=True)
    return path, read_video(path)


def audio_span(path):
    with av.open(str(path)) as c:
        ps = [p for p in c.demux(c.streams.audio[0]) if p.size]
        return float(ps[0].pts * ps[0].time_base), float((ps[-1].pts + ps[-1].duration) * ps[-1].time_base)


def json_rows(r):
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    return rows[:-1], rows[-1]["summary"]


@pytest.mark.parametrize("segment", ["0", "0.4"])  # one pass, and segments
def test_start_and_frames(gop, cli, tmp_path, segment):
    path, src = gop
    out = tmp_path / "piece.mp4"
    r = cli("run", path, "-o", out, "-m", "identity", "--crf", "0", "--start", "0.4", "--frames", "5",
            "--segment", segment, "--json")
    assert r.exit_code == 0, r.output
    got = read_video(out)
    assert got["times"] == pytest.approx([0, 0.04, 0.08, 0.12, 0.16], abs=1e-6)
    for x, y in zip(got["frames"], src["frames"][10:15]):
        assert np.array_equal(x, y)
    rows, summary = json_rows(r)
    assert [x["frame"] for x in rows] == list(range(5)) and summary["frames"] == 5
    assert [x["pts"] for x in rows] == pytest.approx([0, 0.04, 0.08, 0.12, 0.16], abs=1e-6)
    a0, a1 = audio_span(out)  # the audio of the same 0.2 s, to the packet (AAC: 1024 samples, 21 ms)
    assert -0.022 < a0 <= 0 and 0.2 <= a1 < 0.222
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_frames_alone_keeps_times_and_audio_start(gop, cli, tmp_path):
    path, src = gop
    out = tmp_path / "first.mp4"
    r = cli("run", path, "-o", out, "-m", "identity", "--crf", "0", "--frames", "7")
    assert r.exit_code == 0, r.output
    got = read_video(out)
    assert got["times"] == pytest.approx(src["times"][:7], abs=1e-6)
    for x, y in zip(got["frames"], src["frames"][:7]):
        assert np.array_equal(x, y)
    assert audio_span(out)[0] == pytest.approx(audio_span(path)[0])  # the priming packet is kept
    assert 0.28 <= audio_span(out)[1] < 0.302


@pytest.mark.parametrize("start", ["2", "0:02", "00:00:02.000"])
def test_start_alone_runs_to_the_end(gop, cli, tmp_path, start):
    path, src = gop
    out = tmp_path / "tail.mkv"
    r = cli("run", path, "-o", out, "-m", "identity", "--codec", "ffv1", "--start", start)
    assert r.exit_code == 0, r.output
    got = read_video(out)
    assert got["times"] == pytest.approx([i / 25 for i in range(10)], abs=1e-3)
    for x, y in zip(got["frames"], src["frames"][50:]):
        assert np.array_equal(x, y)


def test_start_between_frames_and_past_a_keyframe(gop, cli, tmp_path):
    """--start 0.55: the first frame at or after it is 0.56 (frame 14), at 0.01 s in OUT."""
    path, src = gop
    out = tmp_path / "p.mkv"
    r = cli("run", path, "-o", out, "-m", "identity", "--codec", "ffv1", "--start", "0.55", "--frames", "3")
    assert r.exit_code == 0, r.output
    got = read_video(out)
    assert got["times"] == pytest.approx([0.01, 0.05, 0.09], abs=1e-3)
    for x, y in zip(got["frames"], src["frames"][14:17]):
        assert np.array_equal(x, y)


def test_reference_is_trimmed_the_same_way(cli, tmp_path):
    from vdeblur.data.synth import synth_clip
    from vdeblur.io.writer import write_rgb_video

    c = synth_clip(n_frames=30, height=48, width=64, seed=2)
    blur, sharp = tmp_path / "blur.mkv", tmp_path / "sharp.mkv"
    write_rgb_video(str(blur), c.blurred)
    write_rgb_video(str(sharp), c.sharp)
    r = cli("run", blur, "-o", tmp_path / "all.mkv", "-m", "unsharp", "--select", "none", "--reference", sharp, "--json")
    assert r.exit_code == 0, r.output
    full, _ = json_rows(r)
    r = cli("run", blur, "-o", tmp_path / "piece.mkv", "-m", "unsharp", "--select", "none", "--reference", sharp,
            "--start", "0.4", "--frames", "8", "--json")
    assert r.exit_code == 0, r.output
    piece, summary = json_rows(r)
    assert [x["psnr_input"] for x in piece] == [x["psnr_input"] for x in full[10:18]]
    assert [x["psnr"] for x in piece] == [x["psnr"] for x in full[10:18]]
    assert summary["frames"] == 8


def test_batch_pieces(gop, cli, tmp_path):
    path, _ = gop
    d = tmp_path / "in"
    d.mkdir()
    write_video(d / "a.mp4", 20, (64, 48))
    write_video(d / "b.mkv", 3, (64, 48))  # shorter than the piece: all of it
    r = cli("run", d, "-o", tmp_path / "out", "-m", "identity", "--frames", "6", "--json")
    assert r.exit_code == 0, r.output
    assert [json.loads(x)["frames"] for x in r.stdout.splitlines()] == [6, 3]
    assert len(read_video(tmp_path / "out" / "a.mp4")["frames"]) == 6


@pytest.mark.parametrize("args", [
    ["--frames", "0"], ["--start", "-1"], ["--start", "abc"], ["--start", "1:75"], ["--start", "nan"],
    ["--start", "inf"], ["--start", "9"], ["--frames", "3", "--io", "ffmpeg"],
    ["--start", "1:2:3:4"], ["--start", ""], ["--frames", "-2"],
])
def test_bad_values_are_usage_errors(gop, cli, tmp_path, args):
    path, _ = gop
    out = tmp_path / "o.mp4"
    r = cli("run", path, "-o", out, "-m", "identity", *args)
    assert r.exit_code == 2, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("ext", ["ts", "mkv", "mov"])
def test_piece_across_containers(cli, tmp_path, ext):
    """MPEG-TS starts late (TIME counts from the video's start) and seeks by bytes (the seek is
    retried earlier where it lands late); mkv keeps ms times."""
    src_path = tmp_path / f"in.{ext}"
    write_video(src_path, 80, (64, 48), options=GOP10, audio=True)
    src = read_video(src_path)
    out = tmp_path / "o.mkv"
    r = cli("run", src_path, "-o", out, "-m", "identity", "--codec", "ffv1", "--start", "2.04", "--frames", "5")
    assert r.exit_code == 0, r.output
    got = read_video(out)
    first = next(i for i, t in enumerate(src["times"]) if t - src["times"][0] >= 2.04 - 1e-6)
    assert first == 51 and len(got["frames"]) == 5
    for x, y in zip(got["frames"], src["frames"][first:]):
        assert np.array_equal(x, y)
    assert got["times"] == pytest.approx([i / 25 for i in range(5)], abs=2e-3)
    assert got["audio_packets"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("every", [1, 3])
def test_segmented_piece_equals_one_pass(cli, tmp_path, every):
    """A piece longer than --segment is cut into segments: the same frames, rows, reference
    metrics and audio as one pass of the piece (the selector sees nothing before or after it)."""
    import shutil

    from vdeblur.data.synth import synth_clip

    c = synth_clip(n_frames=70, height=48, width=64, seed=4)
    d = tmp_path / "in"
    d.mkdir()
    blur = d / "blur.mp4"
    write_video(blur, size=(64, 48), frames=c.blurred, audio=True, options={**GOP10, "crf": "0"})
    sharp = tmp_path / "sharp.mkv"
    write_video(sharp, size=(64, 48), frames=c.sharp, codec="ffv1", pix_fmt="yuv444p")
    piece = ["--start", "0.44", "--frames", "41", "--crf", "0", "--select-every", every]
    runs = {}
    for seg in ("0", "0.4"):
        out = tmp_path / f"o{seg}.mp4"
        r = cli("run", blur, "-o", out, "-m", "unsharp", "--reference", sharp, "--segment", seg, *piece, "--json")
        assert r.exit_code == 0, r.output
        runs[seg] = json_rows(r), read_video(out), audio_span(out)
    (one, s1), v1, a1 = runs["0"]
    (cut, s2), v2, a2 = runs["0.4"]
    keys = ("frame", "blur_score", "blurred", "restored", "psnr", "psnr_input")
    assert [{k: x[k] for k in keys} for x in cut] == [{k: x[k] for k in keys} for x in one]
    assert [x["pts"] for x in cut] == pytest.approx([x["pts"] for x in one], abs=1e-9)
    assert len(one) == 41 and 0 < sum(x["restored"] for x in one) < 41 and s2["frames"] == 41
    assert v2["times"] == pytest.approx(v1["times"], abs=1e-6) == [i / 25 for i in range(41)]
    for x, y in zip(v1["frames"], v2["frames"]):
        assert np.array_equal(x, y)
    assert a2 == pytest.approx(a1, abs=1e-6) and v2["audio_packets"] == v1["audio_packets"]
    # the batch result says the piece was cut
    shutil.copy(blur, d / "again.mp4")
    r = cli("run", d, "-o", tmp_path / "many", "-m", "unsharp", "--segment", "0.4", *piece, "--json")
    assert r.exit_code == 0, r.output
    assert [json.loads(x)["segments"] for x in r.stdout.splitlines()] == [4, 4]
    assert not [p for p in tmp_path.rglob(".*")]


def test_segmented_piece_resumes(gop, cli, tmp_path, monkeypatch):
    path, src = gop
    out = tmp_path / "out.mp4"
    args = ["run", path, "-o", out, "-m", "identity", "--crf", "0", "--segment", "0.4", "--start", "0.4", "--frames", "25"]
    monkeypatch.setattr("vdeblur.jobs.runner.join_parts", lambda *a, **k: (_ for _ in ()).throw(OSError("disk on fire")))
    r = cli(*args)
    assert r.exit_code == 1 and not out.exists()
    monkeypatch.undo()
    r = cli(*args, "--resume")
    assert r.exit_code == 0, r.output
    assert "3 of 3 segments are done" in r.stderr
    got = read_video(out)
    assert got["times"] == pytest.approx([i / 25 for i in range(25)], abs=1e-6)
    for x, y in zip(got["frames"], src["frames"][10:35]):
        assert np.array_equal(x, y)
    r = cli(*args[:-1], "20", "--resume", "--force")  # OUT is done: a new piece starts over
    assert r.exit_code == 0 and "nothing to resume" in r.stderr and len(read_video(out)["frames"]) == 20


@pytest.mark.parametrize("segment", ["0", "0.4"])  # one pass, and segments
def test_piece_is_labelled_with_the_whole_piece_in_view(cli, tmp_path, segment):
    """A piece is labelled as a file is (select/context.py), with only the piece in view: a piece
    that opens with a long blurred run is judged against its sharp frames that come later, which
    the streaming rule had not seen yet; one pass and segments agree."""
    from selector_media import make_clip, write_clip
    from vdeblur.jobs.options import RunOptions
    from vdeblur.jobs.span import piece_of
    from vdeblur.select.context import scan

    c = make_clip("starts_blurred", n=48, size=(160, 120), seed=0)
    path = tmp_path / "in.mp4"
    write_clip(path, c)
    start, n = 4 / 30, 30  # frames 4..33: 17 blurred, then 13 sharp
    r = cli("run", path, "-o", tmp_path / "o.mp4", "-m", "identity", "--start", f"{start:.6f}", "--frames", n,
            "--segment", segment, "--json")
    assert r.exit_code == 0, r.output
    rows, summary = json_rows(r)
    got = [x["blurred"] for x in rows]
    truth = c.blurred[4:4 + n]
    assert len(got) == n and summary["frames"] == n
    assert got == scan(str(path), items=piece_of(RunOptions(start=start, frames=n))).blurred
    assert np.mean(np.array(got) == np.array(truth)) >= 0.95
