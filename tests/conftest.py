import os
import sys
from fractions import Fraction

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from media import write_video  # noqa: E402


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """A test that uses the ``ray_head`` fixture (tests/ray_head.py) is ``slow``: a private Ray head
    takes seconds to start and to stop, on top of the test."""
    for item in items:
        if "ray_head" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def clip(tmp_path):
    """A 12-frame 64x48 h264 mp4 with AAC audio, a title and a rotation."""
    path = tmp_path / "in.mp4"
    write_video(path, 12, (64, 48), audio=True, metadata={"title": "test clip"}, rotation=90)
    return path


@pytest.fixture
def vfr_clip(tmp_path):
    path = tmp_path / "vfr.mp4"
    pts = [0, 40, 80, 200, 240, 400, 410, 420, 600, 640]
    write_video(path, len(pts), (64, 48), pts=pts, time_base=Fraction(1, 1000), audio=True)
    return path, [p / 1000 for p in pts]


@pytest.fixture
def cli():
    from typer.testing import CliRunner

    from vdeblur.cli.app import app

    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """The tests' tensors are tiny: intra-op threads only add contention (badly so on a loaded
    2-core machine), so the whole session runs torch single-threaded."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """A weights.toml with no entries, for the refusal paths (the shipped list has entries)."""
    toml = tmp_path / "empty-weights.toml"
    toml.write_text("# no entries\n")
    monkeypatch.setenv("VDEBLUR_WEIGHTS_TOML", str(toml))
    return toml
