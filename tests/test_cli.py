"""The commands' outputs: JSON lines, tables, classify, demo, methods, --version."""

import csv
import json

import numpy as np
import pytest

from vdeblur.data.synth import synth_clip
from vdeblur.io.writer import write_rgb_video

FRAME_KEYS = {"frame", "pts", "blur_score", "blurred", "restored", "ms", "psnr", "ssim", "psnr_input", "ssim_input"}
SUMMARY_KEYS = {"frames", "restored", "seconds", "fps", "psnr", "ssim", "psnr_input", "ssim_input"}


@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    """A synthetic partially blurred clip (lossless) with its sharp reference and true labels."""
    d = tmp_path_factory.mktemp("partial")
    c = synth_clip(n_frames=40, height=96, width=160, seed=3)
    write_rgb_video(str(d / "blur.mkv"), c.blurred)
    write_rgb_video(str(d / "sharp.mkv"), c.sharp)
    return d / "blur.mkv", d / "sharp.mkv", c


def lines(out):
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def test_run_json_lines_with_reference(cli, partial, tmp_path):
    blur, sharp, c = partial
    r = cli("run", blur, "-o", tmp_path / "o.mp4", "--method", "wiener", "--psf", "motion:7:0",
            "--reference", sharp, "--json")
    assert r.exit_code == 0, r.output
    rows = lines(r.stdout)  # nothing but JSON on stdout
    frames, summary = rows[:-1], rows[-1]["summary"]
    assert len(frames) == 40 and [f["frame"] for f in frames] == list(range(40))
    assert all(set(f) == FRAME_KEYS for f in frames)
    assert set(summary) == SUMMARY_KEYS
    assert summary["frames"] == 40 and summary["restored"] == sum(f["restored"] for f in frames)
    assert frames[1]["pts"] == pytest.approx(1 / 25)
    for f in frames:
        assert f["restored"] == f["blurred"]
        if not f["restored"]:  # a passed-through frame of the synthetic clip equals its reference
            assert f["ms"] == 0 and f["psnr"] is None and f["ssim"] == pytest.approx(1.0)
        else:
            assert f["psnr"] > 10 and f["ms"] > 0
            # the input's PSNR: finite for a truly blurred frame, None (infinite) for a sharp frame
            # the selector sent to the restorer (the clip is lossless: it equals its reference)
            assert f["psnr_input"] > 10 if c.labels[f["frame"]] else f["psnr_input"] is None
    # selector accuracy end to end on a partially blurred video
    acc = np.mean([f["blurred"] == t for f, t in zip(frames, c.labels)])
    assert acc >= 0.9
    assert "\x1b" not in r.stderr  # no progress bar with --json


def test_run_table_without_json(cli, partial, tmp_path):
    blur, _, _ = partial
    r = cli("run", blur, "-o", tmp_path / "o.mp4", "--method", "unsharp")
    assert r.exit_code == 0, r.output
    assert "frames" in r.stdout and "restored" in r.stdout and "40" in r.stdout


def test_select_every_labels_groups(cli, partial, tmp_path):
    blur, _, _ = partial
    r = cli("classify", blur, "--select-every", "5", "--json")
    assert r.exit_code == 0, r.output
    rows = lines(r.stdout)[:-1]
    for g in range(0, 40, 5):
        group = rows[g : g + 5]
        assert len({x["blurred"] for x in group}) == 1
        assert sum(x["blur_score"] is not None for x in group) == 1


def test_classify_json_csv_and_summary(cli, partial, tmp_path):
    blur, _, c = partial
    out_csv = tmp_path / "b.csv"
    r = cli("classify", blur, "--json", "--csv", out_csv)
    assert r.exit_code == 0, r.output
    rows = lines(r.stdout)
    frames, summary = rows[:-1], rows[-1]["summary"]
    assert [set(f) for f in frames] == [{"frame", "pts", "blur_score", "blurred"}] * 40
    assert summary["frames"] == 40
    assert summary["blurred"] == sum(f["blurred"] for f in frames)
    assert summary["blurred_fraction"] == pytest.approx(summary["blurred"] / 40)
    labels = [f["blurred"] for f in frames]
    assert np.mean([a == b for a, b in zip(labels, c.labels)]) >= 0.9
    for a, b in summary["runs"]:
        assert all(labels[a : b + 1]) and (a == 0 or not labels[a - 1])
    with open(out_csv) as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 40 and table[0].keys() == {"frame", "pts", "blur_score", "blurred"}
    # a fixed threshold above every score calls every frame blurred
    r = cli("classify", blur, "--threshold", "1e9", "--json")
    assert lines(r.stdout)[-1]["summary"]["blurred"] == 40


def test_classify_table(cli, clip):
    r = cli("classify", clip)
    assert r.exit_code == 0, r.output
    assert "frames blurred" in r.stdout


def test_classify_errors(cli, tmp_path):
    r = cli("classify", tmp_path / "missing.mp4")
    assert r.exit_code == 3 and "input not found" in r.stderr


def test_demo_json(cli):
    r = cli("demo", "--frames", "16", "--method", "unsharp", "--json")
    assert r.exit_code == 0, r.output
    rows = lines(r.stdout)
    s = rows[-1]["summary"]
    assert s["frames"] == 16 and s["psnr_input"] is not None and s["selector_accuracy"] >= 0.8
    assert len(rows) == 17


@pytest.mark.slow
def test_demo_table(cli, tmp_path):
    r = cli("demo", "--frames", "12", "--keep", tmp_path / "demo")
    assert r.exit_code == 0, r.output
    assert "mean PSNR" in r.stdout and "selector accuracy" in r.stdout
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["blurred.mkv", "restored.mp4", "sharp.mkv"]


def test_methods_list_and_json(cli):
    r = cli("methods", "--json")
    rows = lines(r.stdout)
    names = {x["name"] for x in rows}
    assert {"identity", "unsharp", "wiener", "richardson-lucy"} <= names
    for x in rows:
        assert set(x) >= {"name", "kind", "params", "temporal", "weights"}
    text = cli("methods").stdout.splitlines()
    assert len(text) == len(rows) + 1  # a header line, then one line per method


def test_version_and_help(cli):
    from vdeblur import __version__

    assert __version__ in cli("--version").stdout
    r = cli("--help")
    assert r.exit_code == 0 and "run" in r.stdout and "classify" in r.stdout


def test_param_option(cli, clip, tmp_path):
    r = cli("run", clip, "-o", tmp_path / "o.mp4", "--method", "unsharp", "--param", "amount=2", "--select", "none")
    assert r.exit_code == 0, r.output
    r = cli("run", clip, "-o", tmp_path / "o2.mp4", "--method", "unsharp", "--param", "psf=motion:3:0")
    assert r.exit_code == 2 and "does not take --psf" in r.stderr
    r = cli("run", clip, "-o", tmp_path / "o3.mp4", "--param", "novalue")
    assert r.exit_code == 2 and "KEY=VALUE" in r.stderr


def test_closed_stdout_stops_quietly(partial):
    import subprocess
    import sys

    blur, _, _ = partial
    p = subprocess.Popen([sys.executable, "-m", "vdeblur", "classify", str(blur), "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # the reader goes away before the first line (like `| head -0`)
    err = p.stderr.read()
    assert p.wait(timeout=60) == 141
    assert err == b""


def test_help_and_readme_say_what_the_default_method_does(cli):
    """The default method is lucky (it measured best on the held-out partially blurred clips):
    the option's default, `run --help` and README's usage say so, and what to try instead."""
    import inspect
    import re
    from pathlib import Path

    from vdeblur.cli.run import run

    assert inspect.signature(run).parameters["method"].default.default == "lucky"
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", cli("run", "--help").stdout).split())
    for words in ("The default, lucky, restores each frame the selector judges blurred from its sharp neighbours",
                  "leaves a frame with no usable neighbour as it is", "fallback=atrous",
                  "--frames 50 --reference SHARP", "r2d4"):
        assert words in text, words
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    usage = readme[readme.index("### `vdeblur run"):readme.index("### Many files")]
    row = next(line for line in usage.splitlines() if line.startswith("| `--method NAME`"))
    assert "The default, `lucky`" in row and "fallback=atrous" in row and "richardson-lucy" in row
    assert "`--start TIME`" in usage and "`--frames N`" in usage
