"""On-the-fly training pairs from photographs (vdeblur/data/online.py) and `train --dataset photos`."""

import json

import cv2
import numpy as np
import pytest
import torch

from vdeblur.data.online import (DegradeConfig, OnlineDegrader, PhotoPool, list_photos, poisson_gaussian_torch,
                                 render_window)


def _photos(root, n=4, size=160):
    from vdeblur.data.synth import _canvas

    for split, k in (("train", n), ("val", 2)):
        d = root / split
        d.mkdir(parents=True)
        for i in range(k):
            img = _canvas(np.random.default_rng([i, len(split)]), size, size + 40)
            cv2.imwrite(str(d / f"p{i}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return _photos(tmp_path_factory.mktemp("photos"))


def _deg(photos, **kw):
    pool = PhotoPool(list_photos(str(photos), "train"), size=8)
    base = dict(crop=32, p_jpeg=0.0, p_defocus=0.0, p_object=0.0)
    base.update(kw)
    return OnlineDegrader(pool, DegradeConfig(**base))


def test_batch_shapes_range_and_determinism(photos):
    d = _deg(photos, frames=3, current=1, noise=[None, (1.9, 1.7)], p_jpeg=0.5, p_object=0.5, p_defocus=0.5)
    a = d.sample(np.random.default_rng(3), 4)
    b = _deg(photos, frames=3, current=1, noise=[None, (1.9, 1.7)], p_jpeg=0.5, p_object=0.5,
             p_defocus=0.5).sample(np.random.default_rng(3), 4)
    assert a["x"].shape == (4, 3, 3, 32, 32) and a["y"].shape == (4, 3, 32, 32) and a["clean"].shape == (4, 3, 32, 32)
    for k in a:
        assert torch.equal(a[k], b[k]), k  # a seed gives the same batch
        assert 0 <= a[k].min() and a[k].max() <= 1
    c = d.sample(np.random.default_rng(4), 4)
    assert not torch.equal(a["x"], c["x"])  # new draws every step


def test_static_sample_input_equals_target(photos):
    """A share of samples is sharp: no motion, no noise, no compression -> input == target."""
    d = _deg(photos, frames=3, current=1, p_static=1.0)
    b = d.sample(np.random.default_rng(0), 3)
    for t in range(3):
        assert torch.equal(b["x"][:, t], b["y"])


def _pan(v, e):
    return {"static": False, "e": e, "vel": np.array([v, 0.0]), "acc": np.zeros(2), "tremor": [],
            "omega": 0.0, "zeta": 0.0, "centre": np.zeros(2)}


def test_target_sits_at_the_exposures_mean_pose(photos):
    """A symmetric exposure of a steady pan is centred on the pose at t = 0, so the target equals
    the still view there; the input is blurred along the pan only."""
    d = _deg(photos, shape=(48, 64), frames=1)
    moving = d.sample_one(np.random.default_rng(5), motion=_pan(10.0, 1.0), all_targets=True)
    still = d.sample_one(np.random.default_rng(5), motion=_pan(10.0, 0.0), all_targets=True)
    assert torch.equal(moving[1], still[1])
    x = moving[0][0]
    gx = (x[..., 1:] - x[..., :-1]).abs().mean()
    gy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    s = still[1][0]
    sx, sy = (s[..., 1:] - s[..., :-1]).abs().mean(), (s[..., 1:, :] - s[..., :-1, :]).abs().mean()
    assert gx / sx < 0.6 * (gy / sy)  # horizontal detail lost much more than vertical


def test_long_exposures_at_2x_match_4x(photos):
    """Sub-frames of a long exposure are rendered at 2x (ss_blur) to save time: the blurred
    frame differs from the 4x render by well under a level on average."""
    a = _deg(photos, shape=(48, 64), ss_blur=2).sample_one(np.random.default_rng(2), motion=_pan(8.0, 1.0))
    b = _deg(photos, shape=(48, 64), ss_blur=4).sample_one(np.random.default_rng(2), motion=_pan(8.0, 1.0))
    assert torch.equal(a[1], b[1])  # targets: always at the full supersampling
    assert (a[0] - b[0]).abs().mean() < 0.5 and not torch.equal(a[0], b[0])


def test_window_frames_follow_one_motion(photos):
    """Frames of a window are views of one path: frame t+1 of a steady pan of v px per frame
    is frame t moved by v px (sharp exposures)."""
    d = _deg(photos, shape=(40, 64), frames=3, current=1)
    x, y = render_window(d, np.random.default_rng(1), sharp=[True] * 3, motion=_pan(4.0, 1.0))
    assert np.array_equal(x, y)  # sharp exposures: input frames are their targets
    diff = np.abs(x[1][:, :-4].astype(int) - x[0][:, 4:].astype(int))[:, 2:-2]  # the view moved right
    assert diff.mean() < 1.0


def test_torch_noise_matches_r2d4_eq1_statistics():
    from vdeblur.data.degrade import NOISE_PRESETS, poisson_gaussian

    y = torch.full((3, 64, 64), 128.0)
    for alpha, sigma in NOISE_PRESETS.values():
        t = poisson_gaussian_torch(y, alpha, sigma, torch.Generator().manual_seed(0))
        n = poisson_gaussian(np.full((64, 64, 3), 128, np.uint8), alpha, sigma, np.random.default_rng(0))
        expect = (alpha * 128 + sigma**2) ** 0.5
        assert abs(t.std().item() - expect) < 0.1 * expect
        assert abs(float(n.std()) - t.std().item()) < 0.1 * expect
        assert abs(t.mean().item() - 128) < 1


@pytest.mark.slow
def test_train_photos_minutes_checkpoint_resume_export(cli, photos, tmp_path):
    ck, out = tmp_path / "ck" / "atrous.ck", tmp_path / "atrous.safetensors"
    args = ["train", "--method", "atrous", "--dataset", "photos", "--data", photos, "--batch", "2",
            "--crop", "32", "--device", "cpu", "--checkpoint", ck, "--json"]
    r = cli(*args, "--minutes", "0.03", "--checkpoint-minutes", "0.01")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert rows and all(x["samples_per_s"] > 0 and "elapsed_s" in x for x in rows)
    assert "val_psnr" in rows[-1] and "val_psnr_input" in rows[-1]  # validated at the end
    meta = json.loads((tmp_path / "ck" / "atrous.ck.json").read_text())
    assert meta["step"] == rows[-1]["step"] and meta["elapsed_s"] > 0 and meta["val"]
    assert (tmp_path / "ck" / "atrous.ck.ema.safetensors").is_file()
    assert 'file = "atrous.ck.ema.safetensors"' in (tmp_path / "ck" / "atrous.ck.ema.toml").read_text()
    # resume: the time already spent counts; a longer budget continues from the step reached
    r = cli(*args, "--minutes", "0.05", "--resume", "-o", out)
    assert r.exit_code == 0, r.output
    more = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert more and more[0]["step"] == rows[-1]["step"] + 1
    assert "--dataset photos --minutes 0.05" in r.stdout and out.is_file()


def test_resume_damaged_or_mismatched_checkpoint_is_one_line_exit_5(cli, photos, tmp_path):
    ck = tmp_path / "a.ck"
    base = ["train", "--dataset", "photos", "--data", photos, "--batch", "1", "--crop", "32", "--device", "cpu",
            "--steps", "1", "--checkpoint", ck]
    assert cli(*base, "--method", "atrous").exit_code == 0
    for bad_args, words in (
        (["--method", "srn"], "atrous-small, not srn-small"),  # another network's checkpoint
        (["--method", "atrous", "--variant", "paper"], "not atrous-paper"),
    ):
        r = cli(*base, *bad_args, "--resume")
        assert r.exit_code == 5, r.output
        assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output
    # tensors that do not fit (the JSON says atrous, the file holds something else)
    meta = json.loads((tmp_path / "a.ck.json").read_text())
    from safetensors.torch import save_file

    save_file({"model.x": torch.zeros(2)}, str(ck))
    r = cli(*base, "--method", "atrous", "--resume")
    assert r.exit_code == 5 and "does not fit" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    ck.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")  # damaged
    r = cli(*base, "--method", "atrous", "--resume")
    assert r.exit_code == 5 and "not a readable" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    save_file({"model.x": torch.zeros(2)}, str(ck))
    (tmp_path / "a.ck.json").write_text("{")  # damaged JSON
    r = cli(*base, "--method", "atrous", "--resume")
    assert r.exit_code == 5 and len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "a.ck.json").unlink()
    ck.unlink()
    r = cli(*base, "--method", "atrous", "--resume")  # missing
    assert r.exit_code == 5 and "does not exist" in r.stderr
    assert meta["step"] == 1


def test_photos_errors(cli, tmp_path):
    assert cli("train", "--method", "atrous", "--dataset", "photos", "--data", tmp_path / "none").exit_code == 3
    (tmp_path / "empty").mkdir()
    assert cli("train", "--method", "atrous", "--dataset", "photos", "--data", tmp_path / "empty").exit_code == 3
    assert cli("train", "--method", "fsm", "--dataset", "photos", "--data", tmp_path / "empty").exit_code == 3


def test_every_train_option_has_help():
    import typer

    from vdeblur.cli.app import app

    cmd = typer.main.get_command(app).commands["train"]
    missing = [p.name for p in cmd.params if not getattr(p, "help", None)]
    assert not missing, missing


@pytest.mark.slow
def test_train_all_script_runs_with_a_budget_of_seconds(photos, tmp_path):
    """benchmarks/train_all.sh, as CI runs it: one net, a budget of about a second, the shipped
    weights as the start; it leaves a resumable checkpoint, the EMA export and its entry."""
    import os
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PHOTOS": str(photos), "NETS": "atrous", "CROP": "32", "BATCH": "2", "DEVICE": "cpu",
           "CKMIN": "0.01", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(["bash", "benchmarks/train_all.sh", str(tmp_path / "w"), "0.02"], cwd=repo, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    log = (tmp_path / "w" / "atrous.log").read_text()
    assert "[[weights]]" in log and "--init vdeblur/weights/files/atrous-small.safetensors" in log
    assert (tmp_path / "w" / "atrous.safetensors").is_file() and (tmp_path / "w" / "atrous.ck.json").is_file()


def test_blur_label_bounds():
    from vdeblur.data.online import BLURRED_PX, SHARP_PX, blur_label

    assert SHARP_PX < BLURRED_PX <= 2.0  # the hard clips' mild blur (2-4 px) is blurred
    assert blur_label(0.0) == 0 and blur_label(SHARP_PX) == 0 and blur_label(BLURRED_PX) == 1
    assert blur_label(1.2) == -1  # in between: ambiguous, left out of the loss
    assert blur_label(0.0, object_px=5.0) == -1 and blur_label(5.0, object_px=0.0) == 1


def test_sample_info_reports_the_current_frames_blur(photos):
    d = _deg(photos, shape=(48, 64), frames=1)
    info = {}
    d.sample_one(np.random.default_rng(5), motion=_pan(10.0, 0.5), info=info)
    assert info["camera_px"] == pytest.approx(5.0, rel=1e-3) and info["object_px"] == 0 and info["defocus"] == 0
    # the info does not change the draw
    a = d.sample_one(np.random.default_rng(7))[0]
    assert torch.equal(a, d.sample_one(np.random.default_rng(7), info={})[0])


def test_labelled_frames_follow_the_blur(photos):
    from vdeblur.data.online import LabelledFrames, blur_label

    pool = PhotoPool(list_photos(str(photos), "train"), size=8)
    lf = LabelledFrames(pool, [(32, 48), (48, 64)], DegradeConfig(p_jpeg=0.5, p_static=0.3, noise=[None, (0.5, 0.9)]))
    b = lf.sample(np.random.default_rng(1), 12)
    assert b["x"].shape[0] == 12 and b["x"].shape[2:] in ((32, 48), (48, 64)) and 0 <= b["x"].min() <= b["x"].max() <= 1
    for v, lab in zip(b["blur"].tolist(), b["label"].tolist()):
        # the camera's blur decides, except a sharp camera with a moving object (ambiguous)
        assert lab == blur_label(v) or (lab == -1 and blur_label(v) == 0)
    again = LabelledFrames(PhotoPool(list_photos(str(photos), "train"), size=8), [(32, 48), (48, 64)],
                           DegradeConfig(p_jpeg=0.5, p_static=0.3, noise=[None, (0.5, 0.9)]))
    assert torch.equal(again.sample(np.random.default_rng(1), 12)["x"], b["x"])  # a seed gives the batch
    # no motion: every frame is sharp; strong blur only: every frame is blurred
    still = LabelledFrames(pool, [(32, 48)], DegradeConfig(p_static=1.0)).sample(np.random.default_rng(2), 4)
    assert still["label"].tolist() == [0] * 4 and still["blur"].tolist() == [0.0] * 4
    lf = LabelledFrames(pool, [(32, 48)], DegradeConfig(p_static=0.0, p_object=0.0, max_blur=40.0))
    lf.degraders[0]._motion = lambda rng: _pan(12.0, 0.5)
    assert lf.sample(np.random.default_rng(3), 3)["label"].tolist() == [1] * 3


def test_train_fsm_on_photos_minutes_checkpoint_resume_export(cli, photos, tmp_path):
    ck, out = tmp_path / "fsm.ck", tmp_path / "fsm.safetensors"
    args = ["train", "--method", "fsm", "--dataset", "photos", "--data", photos, "--batch", "4", "--crop", "48",
            "--device", "cpu", "--checkpoint", ck, "--json", "--lr", "1e-3"]
    r = cli(*args, "--minutes", "0.04", "--checkpoint-minutes", "0.01")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert rows and all(x["samples_per_s"] > 0 and "elapsed_s" in x for x in rows)
    assert 0 <= rows[-1]["val_accuracy"] <= 1  # validated at the end, on the val photographs
    meta = json.loads((tmp_path / "fsm.ck.json").read_text())
    assert meta["step"] == rows[-1]["step"]
    assert meta["val"][-1]["val_accuracy"] == pytest.approx(rows[-1]["val_accuracy"], abs=1e-4)
    assert (tmp_path / "fsm.ck.ema.safetensors").is_file() and (tmp_path / "fsm.ck.best.safetensors").is_file()
    r = cli(*args, "--minutes", "0.06", "--resume", "-o", out)
    assert r.exit_code == 0, r.output
    more = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert more and more[0]["step"] == rows[-1]["step"] + 1
    assert 'method = "fsm"' in r.stdout and out.is_file()
    from vdeblur.select.fsm import load_fsm

    assert load_fsm(str(out), "cpu", 1, None).probability(np.zeros((40, 48, 3), np.uint8)) >= 0


def test_labelled_pairs_differ_only_by_the_cameras_blur(photos):
    from vdeblur.data.online import LabelledFrames

    pool = PhotoPool(list_photos(str(photos), "train"), size=8)
    lf = LabelledFrames(pool, [(32, 48)], DegradeConfig(p_static=0.0, p_jpeg=0.0, p_object=0.0, p_defocus=0.0,
                                                        max_blur=40.0), p_contrast=0.0)
    lf.degraders[0]._motion = lambda rng: _pan(12.0, 0.5)
    b = lf.sample(np.random.default_rng(4), 6, pairs=True)
    assert b["label"].tolist() == [0, 1] * 3 and b["blur"][0::2].tolist() == [0.0] * 3
    for i in range(3):  # one view per pair: the blurred frame is the still one smeared along the pan
        sharp, blurred = b["x"][2 * i], b["x"][2 * i + 1]
        assert (sharp.mean() - blurred.mean()).abs() < 0.02
        gx = lambda t: (t[..., 1:] - t[..., :-1]).abs().mean()  # noqa: E731
        assert gx(blurred) < 0.7 * gx(sharp)
