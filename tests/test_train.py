"""`vdeblur train`: a few steps lower the loss, checkpoints resume, export loads back."""

import json

import cv2
import numpy as np
import pytest
import torch

from vdeblur.data.synth import synth_clip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    for split, seed in (("train", 1), ("test", 2)):
        c = synth_clip(n_frames=8, height=48, width=64, seed=seed)
        rng = np.random.default_rng(seed)
        for kind, frames in (("blur", c.blurred), ("sharp", c.sharp), ("noisy", None)):
            d = root / split / "seq" / kind
            d.mkdir(parents=True)
            for i in range(8):
                f = frames[i] if frames is not None else np.clip(
                    c.blurred[i].astype(int) + rng.integers(-8, 9, c.blurred[i].shape), 0, 255).astype(np.uint8)
                cv2.imwrite(str(d / f"{i:06d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return root


@pytest.mark.parametrize("method", ["golf", "deblurnet", "r2d4", "mlfa", "srn", "atrous"])
def test_a_few_steps_lower_the_loss(method, data):
    from vdeblur.data.datasets import open_dataset
    from vdeblur.train.loop import TrainConfig, train

    losses = []
    cfg = TrainConfig(method=method, steps=30, batch=2, crop=32, lr=1e-3, device="cpu", val_every=1000)
    train(cfg, open_dataset("synth", str(data), "train"), None, on_step=lambda d: losses.append(d["loss"]))
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_cli_checkpoint_resume_and_export(cli, data, tmp_path):
    ck, out = tmp_path / "ck.safetensors", tmp_path / "deblurnet-small.safetensors"
    r = cli("train", "--method", "deblurnet", "--data", data, "--steps", "4", "--batch", "2", "--crop", "32",
            "--val-every", "2", "--checkpoint", ck, "--device", "cpu", "--json")
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4] and "val_psnr" in lines[1]
    assert json.loads((tmp_path / "ck.safetensors.json").read_text())["step"] == 4
    r = cli("train", "--method", "deblurnet", "--data", data, "--steps", "6", "--batch", "2", "--crop", "32",
            "--val-every", "2", "--checkpoint", ck, "--resume", "--device", "cpu", "--json", "-o", out)
    assert r.exit_code == 0, r.output
    steps = [json.loads(x)["step"] for x in r.stdout.splitlines() if x.startswith("{")]
    assert steps == [5, 6]  # continued, not restarted
    entry = r.stdout[r.stdout.index("[[weights]]"):]
    toml = tmp_path / "weights.toml"
    toml.write_text("[[weights]]" + entry.split("[[weights]]", 1)[1].replace('file = "files/', 'file = "'))
    import os

    os.environ["VDEBLUR_WEIGHTS_TOML"] = str(toml)
    try:
        from vdeblur.methods.registry import create

        m = create("deblurnet", variant="small")  # found through the exported entry, sha256 checked
        x = torch.rand(1, 1, 3, 16, 16)
        assert m(x)[0].shape == (1, 3, 16, 16)
    finally:
        del os.environ["VDEBLUR_WEIGHTS_TOML"]


def test_train_errors(cli, data):
    assert cli("train", "--method", "wiener", "--data", data).exit_code == 2
    assert cli("train", "--method", "golf", "--data", data, "--resume").exit_code == 2
