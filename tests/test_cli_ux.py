"""A newcomer's view of the CLI (issue 10): `vdeblur methods`, value completion, progress, help text."""

from __future__ import annotations

import json

import pytest


def _rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------------------------ methods


def test_methods_table_has_a_header_and_shows_variants_and_weights(cli):
    r = cli("methods")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["METHOD", "KIND", "FRAMES"]
    assert "VARIANTS (parameters)" in lines[0] and "WEIGHTS" in lines[0]
    by_name = {line.split()[0]: line for line in lines[1:]}
    # deblurnet ships no weights: visible before running it
    assert "none: --weights FILE" in by_name["deblurnet"]
    assert "installed: small" in by_name["atrous"]
    assert "not needed" in by_name["unsharp"]
    assert "small* 164k" in by_name["atrous"] and "paper 47.6M" in by_name["atrous"]
    assert "temporal" in by_name["mlfa"] and "single-frame" in by_name["srn"]


def test_methods_json_counts_parameters_without_loading_weights(cli):
    from vdeblur.methods.neural import make_untrained

    rows = {x["name"]: x for x in _rows(cli("methods", "--json").stdout)}
    assert rows["deblurnet"]["weights_installed"] is False
    assert rows["atrous"]["weights_installed"] is True
    assert rows["wiener"]["weights_installed"] is None and rows["wiener"]["variants"] == []
    small = {v["name"]: v for v in rows["deblurnet"]["variants"]}["small"]
    net = make_untrained("deblurnet", "small")[0].net  # a real build counts the same
    assert small == {"name": "small", "params": sum(p.numel() for p in net.parameters()), "default": True,
                     "weights": None, "installed": False}
    for x in rows.values():
        assert {"name", "kind", "temporal", "variants", "weights_installed", "description"} <= set(x)


def test_methods_shows_every_frame_when_the_registry_gives_it(cli, monkeypatch):
    from vdeblur.methods import registry

    plain = registry.MethodSpec.as_dict
    monkeypatch.setattr(registry.MethodSpec, "as_dict",
                        lambda self: {**plain(self), "every_frame": self.name == "r2d4"})
    lines = cli("methods").stdout.splitlines()
    assert "RESTORES" in lines[0]
    by_name = {line.split()[0]: line for line in lines[1:]}
    assert "every frame" in by_name["r2d4"] and "selected" in by_name["atrous"]
    assert {x["name"]: x["every_frame"] for x in _rows(cli("methods", "--json").stdout)}["r2d4"] is True


def test_methods_with_a_missing_packaged_file_says_not_installed(cli, monkeypatch, tmp_path):
    from vdeblur.weights.spec import DEFAULT_TOML

    text = DEFAULT_TOML.read_text().replace('file = "files/', f'file = "{tmp_path}/gone/')
    toml = tmp_path / "weights.toml"
    toml.write_text(text)
    monkeypatch.setenv("VDEBLUR_WEIGHTS_TOML", str(toml))
    rows = {x["name"]: x for x in _rows(cli("methods", "--json").stdout)}
    assert rows["atrous"]["weights_installed"] is False
    assert {v["name"]: v["weights"] for v in rows["atrous"]["variants"]}["small"] == "atrous-small"


# ------------------------------------------------------------------------- completion of values


def _complete(line: str) -> list[str]:
    """What bash completion offers for the last word of ``line`` (Typer's callback into vdeblur)."""
    from typer.testing import CliRunner

    from vdeblur.cli.app import app

    words = line.split(" ")
    env = {"_VDEBLUR_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    r = CliRunner().invoke(app, [], env=env, prog_name="vdeblur")
    assert r.exit_code == 0, r.output
    return r.stdout.split()


def test_method_values_complete_from_the_registry():
    from vdeblur.methods.registry import list_methods

    assert _complete("vdeblur run in.mp4 -o out.mp4 --method ") == [s.name for s in list_methods()]
    assert _complete("vdeblur run in.mp4 --method ri") == ["richardson-lucy"]
    assert _complete("vdeblur bench --methods unsharp,w") == ["unsharp,wiener"]
    assert "fsm" in _complete("vdeblur train --method ") and "wiener" not in _complete("vdeblur train --method ")


def test_selector_device_dataset_values_complete():
    from vdeblur.data.datasets import KINDS

    assert _complete("vdeblur run in.mp4 --select ") == ["laplacian", "fsm", "none"]
    assert _complete("vdeblur classify in.mp4 --select n") == ["none"]
    assert _complete("vdeblur bench --selectors laplacian,") == ["laplacian,fsm", "laplacian,none"]
    for cmd in ("run in.mp4", "bench", "train"):
        assert _complete(f"vdeblur {cmd} --device ")[:2] == ["auto", "cpu"]
    assert _complete("vdeblur bench --dataset ") == list(KINDS)
    assert _complete("vdeblur train --dataset sy") == ["synth"]


def test_codec_values_are_video_encoders():
    codecs = _complete("vdeblur run in.mp4 --codec ")
    assert {"libx264", "ffv1", "mpeg4"} <= set(codecs)
    assert "aac" not in codecs and "pcm_s16le" not in codecs  # audio encoders
    assert "libx264" in _complete("vdeblur run in.mp4 --codec libx26")
