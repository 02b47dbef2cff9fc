"""Keyframe segments: the plan, segmented runs against the input and each other, --resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from media import GOP10, read_video, write_video
from vdeblur.jobs.segments import plan_segments


@pytest.fixture
def gop_clip(tmp_path):
    """60 frames at 25 fps (2.4 s), a keyframe every 10 frames (0.4 s), B-frames, audio, rotation, title."""
    path = tmp_path / "gop.mp4"
    src = write_video(path, 60, (64, 48), options=GOP10, audio=True, rotation=90, metadata={"title": "segments"})
    return path, src


def test_plan_cuts_at_keyframes(gop_clip):
    path, _ = gop_clip
    plan = plan_segments(str(path), 0.4, warmup=2)
    segs = plan.segments
    assert plan.frames == 60 and sum(s.frames for s in segs) == 60
    assert [s.first for s in segs] == [0, 10, 20, 30, 40, 50]
    tb = plan.time_base
    assert [float(s.start * tb) for s in segs] == pytest.approx([0, 0.4, 0.8, 1.2, 1.6, 2.0])
    assert segs[0].warm == 0 and all(s.warm == 2 for s in segs[1:])
    assert all(s.seek <= s.warm_start for s in segs[1:])  # decoding starts at a keyframe before the warm-up
    # a longer segment length merges keyframe intervals; it never cuts between keyframes
    assert [s.first for s in plan_segments(str(path), 0.9).segments] == [0, 30]


def test_plan_one_keyframe_is_one_segment(tmp_path):
    path = tmp_path / "one.mp4"
    write_video(path, 30, (64, 48), options={"preset": "ultrafast", "g": "300"})
    plan = plan_segments(str(path), 0.2)
    assert len(plan.segments) == 1 and plan.segments[0].frames == 30


def _equal_frames(a, b):
    """Decoded frames equal. Only for lossless encodes (``--crf 0``, ffv1): two lossy libx264
    encodes of the same frames may differ where its threads race, on a loaded machine."""
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert np.array_equal(x, y), f"frame {i} differs"


def test_segmented_identity_is_frame_exact(gop_clip, cli, tmp_path):
    """Lossless encode of the identity method: every frame, once, at its source time, with audio,
    rotation and metadata; the parts folder is gone afterwards."""
    path, _ = gop_clip
    out = tmp_path / "out.mp4"
    r = cli("run", path, "-o", out, "-m", "identity", "--segment", "0.4", "--crf", "0", "--json")
    assert r.exit_code == 0, r.output
    src, got = read_video(path), read_video(out)
    assert got["times"] == src["times"]
    _equal_frames(got["frames"], src["frames"])
    assert got["audio_packets"] == src["audio_packets"] > 0
    assert got["rotation"] == src["rotation"] == 90
    assert got["metadata"].get("title") == "segments"
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["frame"] for x in lines[:-1]] == list(range(60))
    assert lines[-1]["summary"]["frames"] == 60
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_segmented_vfr_keeps_timestamps(vfr_clip, cli, tmp_path):
    path, times = vfr_clip
    out = tmp_path / "out.mkv"
    r = cli("run", path, "-o", out, "-m", "unsharp", "--select", "none", "--segment", "0.1")
    assert r.exit_code == 0, r.output
    assert read_video(out)["times"] == pytest.approx(times, abs=1e-3)


@pytest.mark.parametrize("method", ["unsharp", pytest.param("r2d4", marks=pytest.mark.slow)])
def test_segments_are_deterministic_and_warm_frames_not_written(gop_clip, cli, tmp_path, method):
    """Two segmented runs give the same frames; a recurrent method's warm-up frames are restored
    but not written twice (the frame count and times equal the input's)."""
    path, _ = gop_clip
    outs = []
    for k in range(2):
        out = tmp_path / f"out{k}.mp4"
        args = ["run", path, "-o", out, "-m", method, "--select", "none", "--segment", "0.8", "--crf", "0", "--json"]
        r = cli(*args)
        assert r.exit_code == 0, r.output
        outs.append(read_video(out))
        rows = [json.loads(x) for x in r.stdout.splitlines()][:-1]
        assert [x["frame"] for x in rows] == list(range(60)) and all(x["restored"] for x in rows)
    assert outs[0]["times"] == read_video(path)["times"]
    _equal_frames(outs[0]["frames"], outs[1]["frames"])


def test_failed_segmented_run_keeps_parts_and_no_output(gop_clip, cli, tmp_path, monkeypatch):
    import vdeblur.jobs.segments as seg

    path, _ = gop_clip
    out = tmp_path / "out.mp4"

    def broken(*a, **k):
        raise OSError("disk on fire")

    monkeypatch.setattr(seg, "join_parts", broken)
    monkeypatch.setattr("vdeblur.jobs.runner.join_parts", broken)
    r = cli("run", path, "-o", out, "-m", "identity", "--segment", "0.4")
    assert r.exit_code == 1 and not out.exists()
    parts = tmp_path / ".out.mp4.vdeblur-parts"
    assert len([p for p in os.listdir(parts) if p.endswith(".json") and p.startswith("seg-")]) == 6
    monkeypatch.undo()
    r = cli("run", path, "-o", out, "-m", "identity", "--segment", "0.4", "--resume")
    assert r.exit_code == 0, r.output
    assert "resuming" in r.stderr and "6 of 6 segments are done" in r.stderr
    assert len(read_video(out)["frames"]) == 60 and not parts.exists()


def test_resume_with_other_settings_starts_over(gop_clip, cli, tmp_path, monkeypatch):
    path, _ = gop_clip
    out = tmp_path / "out.mp4"
    monkeypatch.setattr("vdeblur.jobs.runner.join_parts", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    r = cli("run", path, "-o", out, "-m", "identity", "--segment", "0.4")
    assert r.exit_code == 130 and "--resume" in r.stderr
    monkeypatch.undo()
    r = cli("run", path, "-o", out, "-m", "unsharp", "--segment", "0.4", "--resume")
    assert r.exit_code == 0, r.output
    assert "other settings" in r.stderr


def _slow_clip(path):
    """Frames big enough that richardson-lucy takes a while per segment: time to kill it."""
    h, w = 144, 192
    y, x = np.mgrid[0:h, 0:w]
    frames = [(((x + 5 * i) // 6 + y // 6) % 2 * 200 + 30).astype(np.uint8)[..., None].repeat(3, -1) for i in range(96)]
    write_video(path, size=(w, h), frames=frames, audio=True,
                options={"preset": "ultrafast", "crf": "10", "g": "8", "keyint_min": "8", "sc_threshold": "0"})


@pytest.mark.slow
def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path):
    """Kill a segmented run with SIGKILL once some segments are done; --resume finishes it from
    there, and the output equals an uninterrupted run's, frame for frame (lossless encodes: two
    lossy ones differ where the encoder's threads race) and row for row."""
    src = tmp_path / "long.mp4"
    _slow_clip(src)
    common = ["-m", "richardson-lucy", "--iterations", "30", "--select", "none", "--segment", "0.3", "--crf", "0"]
    exe = [sys.executable, "-m", "vdeblur"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    full = tmp_path / "full.mp4"
    ref = subprocess.run(exe + ["run", str(src), "-o", str(full), "--json"] + common, check=True, env=env,
                         capture_output=True, text=True)

    out = tmp_path / "out.mp4"
    parts = tmp_path / ".out.mp4.vdeblur-parts"
    p = subprocess.Popen(exe + ["run", str(src), "-o", str(out)] + common, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    done = []
    while time.monotonic() < deadline and p.poll() is None:
        done = [f for f in os.listdir(parts) if f.endswith(".json") and f.startswith("seg-")] if parts.exists() else []
        if len(done) >= 2:
            break
        time.sleep(0.02)
    assert p.poll() is None, "the run finished before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not out.exists()
    n_plan = len(json.loads((parts / "plan.json").read_text())["plan"]["segments"])
    done = [f for f in os.listdir(parts) if f.endswith(".json") and f.startswith("seg-")]
    assert 2 <= len(done) < n_plan == 12

    r = subprocess.run(exe + ["run", str(src), "-o", str(out), "--resume", "--json"] + common, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"{len(done)} of {n_plan} segments are done" in r.stderr
    a, b = read_video(full), read_video(out)
    assert b["times"] == a["times"] and len(b["frames"]) == 96
    _equal_frames(b["frames"], a["frames"])
    assert b["audio_packets"] == a["audio_packets"] > 0
    assert json.loads(r.stdout.splitlines()[-1])["summary"]["frames"] == 96
    keys = ("frame", "pts", "blur_score", "blurred", "restored")
    rows = [[{k: x[k] for k in keys} for x in map(json.loads, p.stdout.splitlines()[:-1])] for p in (ref, r)]
    assert rows[0] == rows[1] and len(rows[0]) == 96
    assert not parts.exists()


def test_segmented_reference_metrics_align(gop_clip, cli, tmp_path):
    """--reference with segments: each segment reads the reference from its own first frame, so the
    per-frame PSNR equals the one-pass run's."""
    path, _ = gop_clip
    rows = {}
    for seg in ("0", "0.4"):
        r = cli("run", path, "-o", tmp_path / f"o{seg}.mp4", "-m", "unsharp", "--select", "none",
                "--reference", path, "--segment", seg, "--json")
        assert r.exit_code == 0, r.output
        rows[seg] = [json.loads(x) for x in r.stdout.splitlines()]
    one, cut = rows["0"], rows["0.4"]
    assert [x["psnr"] for x in cut[:-1]] == [x["psnr"] for x in one[:-1]]
    assert cut[-1]["summary"]["psnr"] == pytest.approx(one[-1]["summary"]["psnr"])


@pytest.mark.parametrize("ext", ["ts", "mkv", "mov"])
def test_segmented_equals_one_pass_across_containers(ext, cli, tmp_path):
    """MPEG-TS seeks by bytes (the seek lands late and is retried earlier); mkv keeps ms times."""
    src = tmp_path / f"in.{ext}"
    write_video(src, 50, (64, 48), options=GOP10, audio=True)
    outs = {}
    for seg in ("0", "0.4"):
        out = tmp_path / f"o{seg}.{ext}"
        r = cli("run", src, "-o", out, "-m", "identity", "--segment", seg, "--crf", "0")
        assert r.exit_code == 0, r.output
        outs[seg] = read_video(out)
    a, b = outs["0"], outs["0.4"]
    assert b["times"] == a["times"] and len(b["frames"]) == 50
    _equal_frames(b["frames"], a["frames"])
    assert b["audio_packets"] == a["audio_packets"] > 0


def test_segmented_damaged_input_is_exit_6_with_what_decoded(cli, tmp_path):
    """A truncated file: the plan holds only the packets that are there; the container's frame
    count says more were expected, so the run ends with exit 6 and OUT holds what decoded."""
    full = tmp_path / "full.mkv"
    write_video(full, 60, (64, 48), options=GOP10, audio=True)
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    out = tmp_path / "out.mkv"
    r = cli("run", cut, "-o", out, "-m", "identity", "--segment", "0.4")
    assert r.exit_code == 6, r.output
    assert "damaged input" in r.stderr and "lost" in r.stderr
    n = len(read_video(out)["frames"])
    assert 0 < n < 60
    assert not (tmp_path / ".out.mkv.vdeblur-parts").exists()


@pytest.mark.slow
@pytest.mark.parametrize("every", [1, 3])
def test_segments_label_and_restore_as_one_pass(cli, tmp_path, every):
    """The selector sees its whole window across a border (context frames, scored not restored),
    so a segmented run labels, restores and scores every frame as the one-pass run does."""
    from vdeblur.data.synth import synth_clip
    from vdeblur.io.writer import write_rgb_video

    c = synth_clip(n_frames=80, height=64, width=96, seed=5)
    blur, sharp = tmp_path / "blur.mkv", tmp_path / "sharp.mkv"
    write_rgb_video(str(blur), c.blurred)  # FFV1: every frame a keyframe
    write_rgb_video(str(sharp), c.sharp)
    rows = {}
    for seg in ("0", "0.4"):
        r = cli("run", blur, "-o", tmp_path / f"o{seg}.mkv", "-m", "unsharp", "--reference", sharp,
                "--select-every", every, "--segment", seg, "--json")
        assert r.exit_code == 0, r.output
        rows[seg] = [json.loads(x) for x in r.stdout.splitlines()][:-1]
    keys = ("frame", "blur_score", "blurred", "restored", "psnr", "psnr_input")
    one, cut = ([{k: x[k] for k in keys} for x in rows[s]] for s in ("0", "0.4"))
    assert 0 < sum(x["restored"] for x in one) < 80
    assert cut == one
