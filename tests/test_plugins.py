"""A method from another package, found through the `vdeblur.methods` entry point group."""

import sys
import textwrap

import pytest

from vdeblur.methods import registry


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """Install a tiny plugin distribution (a module + dist-info with entry points) on sys.path."""
    (tmp_path / "vdeblur_tinyplugin.py").write_text(textwrap.dedent('''
        import torch
        from vdeblur.methods.base import FrameMethod

        class Invert(torch.nn.Module):
            def forward(self, x):
                return 1 - x

        def invert():
            """Invert the colours (a test plugin)."""
            return FrameMethod(Invert())

        class Decision:
            def __init__(self, index, score, blurred):
                self.index, self.score, self.blurred = index, score, blurred

        class EvenSelector:
            """Calls the even frames blurred (a test plugin)."""
            lookahead = 0

            def __init__(self, threshold=None, every=1):
                pass

            def needs_score(self, index):
                return False

            def push(self, index, pixels):
                return [Decision(index, None, index % 2 == 0)]

            def flush(self):
                return []
    '''))
    info = tmp_path / "vdeblur_tinyplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vdeblur-tinyplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[vdeblur.methods]\ninvert = vdeblur_tinyplugin:invert\n"
        "[vdeblur.selectors]\neven = vdeblur_tinyplugin:EvenSelector\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    importlib.invalidate_caches()
    saved = dict(registry._REGISTRY), set(registry._loaded)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved[0])
    registry._loaded.clear()
    registry._loaded.update(saved[1])
    sys.modules.pop("vdeblur_tinyplugin", None)


def test_plugin_is_listed_and_runs(plugin, cli, clip, tmp_path):
    import numpy as np

    from media import read_video

    names = {s.name: s for s in registry.list_methods()}
    assert names["invert"].kind == "plugin"
    r = cli("methods")
    assert "invert" in r.stdout
    out = tmp_path / "inv.mkv"
    r = cli("run", clip, "-o", out, "--method", "invert", "--select", "none", "--codec", "ffv1")
    assert r.exit_code == 0, r.output
    a, b = read_video(clip)["frames"][3], read_video(out)["frames"][3]
    assert np.abs((255 - a.astype(int)) - b).mean() < 6  # inverted (one YUV 4:2:0 round trip)


def test_selector_plugin(plugin, cli, clip):
    import json

    r = cli("classify", clip, "--select", "even", "--json")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()][:-1]
    assert [x["blurred"] for x in rows] == [i % 2 == 0 for i in range(12)]
