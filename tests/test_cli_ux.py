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
    from nets import n_params
    from vdeblur.methods.neural import make_untrained

    rows = {x["name"]: x for x in _rows(cli("methods", "--json").stdout)}
    assert rows["deblurnet"]["weights_installed"] is False
    assert rows["atrous"]["weights_installed"] is True
    assert rows["wiener"]["weights_installed"] is None and rows["wiener"]["variants"] == []
    small = {v["name"]: v for v in rows["deblurnet"]["variants"]}["small"]
    net = make_untrained("deblurnet", "small")[0].net  # a real build counts the same
    assert small == {"name": "small", "params": n_params(net), "default": True,
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
    line = next(x for x in cli("methods").stdout.splitlines() if x.startswith("atrous "))
    assert "file missing: small" in line and "installed" not in line


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
    assert _complete("vdeblur train --dataset p") == ["photos"]


def test_codec_values_are_video_encoders():
    codecs = _complete("vdeblur run in.mp4 --codec ")
    assert {"libx264", "ffv1", "mpeg4"} <= set(codecs)
    assert "aac" not in codecs and "pcm_s16le" not in codecs  # audio encoders
    assert "libx264" in _complete("vdeblur run in.mp4 --codec libx26")


# ------------------------------------------------------------------------------------ progress


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_rate_is_steady_from_the_first_frames_start_up_excluded():
    """A slow first frame (model load) does not drag the rate; fps and ETA are right from frame 2."""
    from vdeblur.cli.output import RateMeter

    clock = FakeClock()
    m = RateMeter(clock=clock)
    clock.t += 12.0  # start-up: load, first decode, warm-up
    m.tick()
    assert m.fps is None and m.eta(50) is None  # one frame: no rate yet
    etas = []
    for _ in range(49):
        clock.t += 0.5
        m.tick()
        assert m.fps == pytest.approx(2.0)
        etas.append(m.eta(50))
    assert etas == pytest.approx([0.5 * (50 - k) for k in range(2, 51)])


def test_rate_follows_a_change_of_pace_without_jumping():
    from vdeblur.cli.output import RateMeter

    clock = FakeClock()
    m = RateMeter(clock=clock)
    m.tick()
    for _ in range(20):  # batches of 4 frames, one every 2 s: 2 fps, delivered in bursts
        clock.t += 2.0
        m.tick(4)
        assert m.fps == pytest.approx(2.0)
    seen = []
    for _ in range(60):  # then one frame every 0.25 s
        clock.t += 0.25
        m.tick()
        seen.append(m.fps)
    assert all(b >= a for a, b in zip(seen, seen[1:]))  # moves one way, step by step
    assert max(b / a for a, b in zip(seen, seen[1:])) < 1.2  # no jump
    assert seen[-1] == pytest.approx(4.0, rel=0.05)


def test_progress_columns_are_labelled():
    from vdeblur.cli.output import Progress, fmt_duration

    clock = FakeClock()
    p = Progress(enabled=False, clock=clock)
    p.start(300)
    clock.t += 5.0
    p.advance()
    assert p.status() == "frame 1/300  - fps  elapsed 0:05  ETA -"
    for _ in range(10):
        clock.t += 0.25
        p.advance()
    assert p.status() == "frame 11/300  4.0 fps  elapsed 0:08  ETA 1:12"
    p.start(None)  # unknown length: no ETA column
    assert p.status() == "frame 0  - fps  elapsed 0:00"
    assert [fmt_duration(s) for s in (0, 59.6, 61, 3725, None)] == ["0:00", "1:00", "1:01", "1:02:05", "-"]


def test_run_ends_with_one_line_naming_the_output(cli, tmp_path):
    from media import write_video  # tests/ is on sys.path (conftest)

    src, out = tmp_path / "in.mkv", tmp_path / "restored.mkv"
    write_video(src, 6, (64, 48), codec="ffv1")
    r = cli("run", src, "-o", out, "--method", "identity", "--select", "none", "--codec", "ffv1")
    assert r.exit_code == 0, r.output
    assert f"vdeblur: wrote {out} (6 frames, in " in r.stderr
    r = cli("run", src, "-o", tmp_path / "j.mkv", "--method", "identity", "--codec", "ffv1", "--json")
    assert r.exit_code == 0 and "wrote" not in r.stderr  # --json: nothing but JSON and errors


@pytest.mark.parametrize("command", ["", "run", "classify", "demo", "methods", "bench", "synth", "train",
                                     "weights list", "weights verify", "weights fetch"])
def test_help_has_no_programmer_type_labels(cli, command):
    from typer.testing import CliRunner

    from vdeblur.cli.app import app

    r = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "<bool>" not in r.stdout and "list[" not in r.stdout, r.stdout


# -------------------------------------------------------------------------------------- README


def test_readme_speaks_to_users():
    """Users have the package, not the repository's neighbours: papers cited by title; the GoPro
    data's origin and layout; which torch wheel to install."""
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert "../shared" not in readme and "shared/papers" not in readme
    assert "Deep Multi-scale Convolutional Neural Network for Dynamic Scene Deblurring" in readme
    assert "GOPRO_Large/{train,test}/<sequence>/{blur,blur_gamma,sharp}/" in readme
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme
    for title in ("Concurrent Video Denoising and Deblurring", "Towards Frames", "A Deep Optimization Approach",
                  "Multi-Level Feature Aggregation", "Scale Recurrent Network"):
        assert title in readme, title
