"""`vdeblur bench`: rows per method and selector on a tiny synth-layout dataset."""

import json

import cv2
import pytest

from vdeblur.data.synth import synth_clip


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    c = synth_clip(n_frames=12, height=48, width=64, seed=5)
    for split in ("train", "test"):
        for kind, frames in (("blur", c.blurred), ("sharp", c.sharp)):
            d = root / split / "seq0" / kind
            d.mkdir(parents=True)
            for i, f in enumerate(frames):
                cv2.imwrite(str(d / f"{i:06d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return root, c


def test_bench_json_rows(cli, synth_root):
    root, c = synth_root
    r = cli("bench", "--dataset", "synth", "--root", root, "--methods", "unsharp,identity", "--json", "--limit", "10")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    methods = {x["method"]: x for x in rows if "method" in x}
    assert set(methods) == {"unsharp", "identity"}
    for x in methods.values():
        assert set(x) == {"method", "psnr", "ssim", "psnr_input", "ssim_input", "ms_per_frame", "frames"}
        assert x["frames"] == 10
    ident = methods["identity"]
    assert ident["psnr"] == pytest.approx(ident["psnr_input"]) and ident["ssim"] == pytest.approx(ident["ssim_input"])
    sel = [x for x in rows if "selector" in x][0]
    r = cli("bench", "--dataset", "synth", "--root", root, "--methods", "", "--json", "--limit", "4")
    assert [json.loads(line).get("selector") for line in r.stdout.splitlines()] == ["laplacian"]  # '' = none
    assert sel["selector"] == "laplacian" and sel["frames"] == 10 and sel["accuracy"] >= 0.8


def test_bench_table_and_errors(cli, synth_root, tmp_path, no_weights):
    root, _ = synth_root
    r = cli("bench", "--dataset", "synth", "--root", root, "--methods", "unsharp", "--limit", "4")
    assert r.exit_code == 0, r.output
    assert "unsharp" in r.stdout and "accuracy" in r.stdout
    r = cli("bench", "--dataset", "gopro", "--root", tmp_path)
    assert r.exit_code == 3 and "no test/ folder" in r.stderr
    r = cli("bench", "--dataset", "nope", "--root", tmp_path)
    assert r.exit_code == 2
    r = cli("bench", "--dataset", "synth", "--root", root, "--methods", "golf")
    assert r.exit_code == 5 and "no trained weights" in r.stderr


def test_bench_noisy_input(cli, synth_root, tmp_path):
    """--noisy scores the restoration of the noisy/ frames; a tree without them is an input error."""
    import numpy as np

    root, c = synth_root
    assert cli("bench", "--dataset", "synth", "--root", root, "--methods", "identity", "--noisy",
               "--selectors", "").exit_code == 3
    noisy_root = tmp_path / "noisy"
    from vdeblur.metrics import psnr

    rng = np.random.default_rng(0)
    expected = []
    for kind, frames in (("blur", c.blurred), ("sharp", c.sharp), ("noisy", c.blurred)):
        d = noisy_root / "test" / "seq0" / kind
        d.mkdir(parents=True)
        for i, f in enumerate(frames):
            if kind == "noisy":
                f = np.clip(f.astype(int) + rng.integers(-20, 21, f.shape), 0, 255).astype(np.uint8)
                expected.append(psnr(f, c.sharp[i]))
            cv2.imwrite(str(d / f"{i:06d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    rows = {}
    for flag in ([], ["--noisy"]):
        r = cli("bench", "--dataset", "synth", "--root", noisy_root, "--methods", "identity", "--selectors", "",
                "--json", *flag)
        assert r.exit_code == 0, r.output
        rows[bool(flag)] = json.loads(r.stdout.splitlines()[0])
    assert rows[True]["psnr_input"] == pytest.approx(np.mean(expected), abs=1e-3)
    assert rows[False]["psnr_input"] != pytest.approx(rows[True]["psnr_input"], abs=0.5)
    assert rows[True]["psnr"] == pytest.approx(rows[True]["psnr_input"])


def test_bench_method_variants(cli, synth_root):
    """--methods NAME:VARIANT benches a variant other than the default, named so in its row."""
    root, _ = synth_root
    r = cli("bench", "--dataset", "synth", "--root", root, "--methods", "r2d4:small", "--selectors", "", "--json",
            "--limit", "3")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["method"] for x in rows] == ["r2d4:small"] and rows[0]["frames"] == 3
    r = cli("bench", "--dataset", "synth", "--root", root, "--methods", "r2d4:huge", "--limit", "3")
    assert r.exit_code == 2 and "unknown variant 'huge'" in r.stderr
