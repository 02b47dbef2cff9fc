"""`vdeblur run --cluster`: files and segments as Ray tasks on a local Ray head give the same
output as the single-process run."""

import json

import numpy as np
import pytest

from media import GOP10, read_video, write_video
from ray_head import ray_head  # noqa: F401 - the fixture

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    write_video(d / "long.mp4", 50, (64, 48), options=GOP10, audio=True, rotation=90)
    write_video(d / "short.mkv", 8, (64, 48))  # one keyframe: one task
    return d


@pytest.mark.parametrize("method", ["unsharp", "r2d4"])
def test_cluster_equals_single_process(ray_head, clips, cli, tmp_path, method):  # noqa: F811
    # lossless encodes: two lossy ones of the same frames may differ where libx264's threads race
    common = ["-m", method, "--select", "none", "--segment", "0.4", "--crf", "0", "--json"]
    r = cli("run", clips, "-o", tmp_path / "local", *common)
    assert r.exit_code == 0, r.output
    r = cli("run", clips, "-o", tmp_path / "ray", "--cluster", ray_head, *common)
    assert r.exit_code == 0, r.output
    rows = {x["input"].rsplit("/", 1)[-1]: x for x in map(json.loads, r.stdout.splitlines())}
    assert rows["long.mp4"]["segments"] == 5 and rows["short.mkv"]["segments"] == 1
    assert all(x["ok"] for x in rows.values())
    for name in ("long.mp4", "short.mkv"):
        a, b = read_video(tmp_path / "local" / name), read_video(tmp_path / "ray" / name)
        assert b["times"] == a["times"] and len(b["frames"]) == len(a["frames"])
        for x, y in zip(a["frames"], b["frames"]):
            assert np.array_equal(x, y)
        assert b["audio_packets"] == a["audio_packets"] and b["rotation"] == a["rotation"]


def test_cluster_task_error_is_the_files_error(ray_head, clips, cli, tmp_path):  # noqa: F811
    bad = tmp_path / "in"
    bad.mkdir()
    write_video(bad / "good.mp4", 6, (64, 48))
    (bad / "bad.mp4").write_text("not a video")
    r = cli("run", bad, "-o", tmp_path / "out", "-m", "identity", "--cluster", ray_head, "--keep-going", "--json")
    assert r.exit_code == 7, r.output
    rows = {x["input"].rsplit("/", 1)[-1]: x for x in map(json.loads, r.stdout.splitlines())}
    assert rows["bad.mp4"]["exit_code"] == 3 and rows["good.mp4"]["ok"]


def test_cluster_unreachable_is_a_usage_error(clips, cli, tmp_path):
    r = cli("run", clips / "short.mkv", "-o", tmp_path / "o.mkv", "--cluster", "127.0.0.1:1")
    assert r.exit_code == 2 and "cannot connect" in r.stderr
    assert not (tmp_path / "o.mkv").exists()


def test_cluster_piece_equals_single_process(ray_head, clips, cli, tmp_path):  # noqa: F811
    """--start/--frames on a cluster: the piece's segments as tasks give the local run's piece."""
    common = ["-m", "unsharp", "--select", "none", "--segment", "0.4", "--crf", "0", "--start", "0.4",
              "--frames", "30"]
    a, b = tmp_path / "local.mp4", tmp_path / "ray.mp4"
    r = cli("run", clips / "long.mp4", "-o", a, *common)
    assert r.exit_code == 0, r.output
    r = cli("run", clips / "long.mp4", "-o", b, "--cluster", ray_head, *common)
    assert r.exit_code == 0, r.output
    va, vb = read_video(a), read_video(b)
    assert len(va["frames"]) == 30 and vb["times"] == va["times"] == pytest.approx([i / 25 for i in range(30)])
    for x, y in zip(va["frames"], vb["frames"]):
        assert np.array_equal(x, y)
    assert vb["audio_packets"] == va["audio_packets"] > 0
