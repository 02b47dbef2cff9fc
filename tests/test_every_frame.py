"""A method made for every frame (r2d4, joint denoising and deblurring): without --select it
restores every frame, since the Laplacian selector reads noise as detail and passes a noisy clip
through; an explicit --select still wins; classify is unaffected."""

import json

import numpy as np
import pytest

from media import pattern, write_video
from vdeblur.methods.registry import get_spec


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """A sharp, noisy clip: noise reads as detail, so the Laplacian rule flags few frames."""
    rng = np.random.default_rng(7)
    frames = [np.clip(pattern(i, 48, 64).astype(np.int16) + rng.normal(0, 25, (48, 64, 3)), 0, 255).astype(np.uint8)
              for i in range(16)]
    path = tmp_path_factory.mktemp("noisy") / "noisy.mkv"
    write_video(path, size=(64, 48), frames=frames, codec="ffv1", pix_fmt="yuv444p")
    return path


def test_spec_says_every_frame():
    assert get_spec("r2d4").every_frame and get_spec("r2d4").as_dict()["every_frame"] is True
    for name in ("unsharp", "richardson-lucy", "atrous", "identity"):
        assert get_spec(name).every_frame is False and get_spec(name).as_dict()["every_frame"] is False


def rows(r):
    return [json.loads(x) for x in r.stdout.splitlines()][:-1]


def test_every_frame_method_restores_every_frame_by_default(noisy, cli, tmp_path):
    r = cli("classify", noisy, "--json")  # the selector alone: most of the noisy clip passes
    assert r.exit_code == 0, r.output
    flagged = [json.loads(x) for x in r.stdout.splitlines() if '"frame"' in x]
    assert sum(x["blurred"] for x in flagged) < len(flagged) == 16

    r = cli("run", noisy, "-o", tmp_path / "o.mkv", "-m", "r2d4", "--json")
    assert r.exit_code == 0, r.output
    got = rows(r)
    assert len(got) == 16 and all(x["restored"] for x in got)
    said = [l for l in r.stderr.splitlines() if "every frame" in l]
    assert len(said) == 1 and "--select" in said[0]


def test_explicit_select_wins(noisy, cli, tmp_path):
    r = cli("run", noisy, "-o", tmp_path / "o.mkv", "-m", "r2d4", "--select", "laplacian", "--json")
    assert r.exit_code == 0, r.output
    got = rows(r)
    assert [x["restored"] for x in got] == [x["blurred"] for x in got] and not all(x["restored"] for x in got)
    assert "every frame" not in r.stderr


def test_other_methods_keep_the_selector(noisy, cli, tmp_path):
    r = cli("run", noisy, "-o", tmp_path / "o.mkv", "-m", "unsharp", "--json")
    assert r.exit_code == 0, r.output
    got = rows(r)
    assert [x["restored"] for x in got] == [x["blurred"] for x in got] and not all(x["restored"] for x in got)
    assert "every frame" not in r.stderr
