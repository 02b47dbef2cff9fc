"""Every neural method: refuses to run without weights, streams exactly as the network runs
directly, carries/resets recurrent state, and loads the user's safetensors file."""

import numpy as np
import pytest
import torch

from test_engine import FixedSelector, frames, items
from vdeblur.engine.pipeline import Engine, reflect
from vdeblur.engine.restorer import Restorer, pad_to
from vdeblur.errors import UsageError, WeightsError
from nets import random_weights
from vdeblur.methods.registry import create, list_methods

NEURAL = [s.name for s in list_methods() if s.kind == "neural"]


def test_all_five_are_registered():
    assert set(NEURAL) == {"r2d4", "atrous", "mlfa", "golf", "srn", "deblurnet"}


@pytest.mark.parametrize("name", NEURAL)
def test_refuses_to_run_without_weights(name, cli, clip, tmp_path, no_weights):
    with pytest.raises(WeightsError, match="no trained weights"):
        create(name)
    r = cli("run", clip, "-o", tmp_path / "o.mp4", "--method", name)
    assert r.exit_code == 5 and "no trained weights" in r.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_bad_variant_and_mismatched_weights(tmp_path):
    with pytest.raises(UsageError, match="unknown variant"):
        create("golf", variant="huge", weights="x")
    _, path = random_weights("srn", tmp_path)
    with pytest.raises(WeightsError, match="do not fit"):
        create("golf", variant="small", weights=path)


def direct(name, net, clip):
    """Run the network on the whole clip by hand, the reference the engine must equal."""
    x = torch.stack([torch.from_numpy(a).permute(2, 0, 1).float() / 255 for a in clip])
    x, h, w = pad_to(x, int(getattr(net, "pad_multiple", 1)))
    n = len(clip)
    outs = []
    with torch.inference_mode():
        if name == "r2d4":
            state = None
            for t in range(n):
                cur = x[t : t + 1]
                pc = torch.stack([x[reflect(t - 1, n - 1)], x[reflect(t - 2, n - 1)]])[None]
                pr = pc if state is None else state
                _, out = net(cur, pc, pr)
                state = torch.stack([out, pr[:, 0]], 1)
                outs.append(out[0])
        elif name == "mlfa":
            for t in range(n):
                win = torch.stack([x[reflect(t + k, n - 1)] for k in (-1, 0, 1)])[None]
                outs.append(net(win)[0])
        else:
            outs = list(net(x))
    return [(o[:, :h, :w].clamp(0, 1) * 255).round().permute(1, 2, 0).numpy().astype(np.uint8) for o in outs]


@pytest.mark.parametrize("name", NEURAL)
def test_streaming_equals_running_the_network(name, tmp_path):
    net, path = random_weights(name, tmp_path)
    method = create(name, variant="small", weights=path)
    clip = frames(10, 20, 28, seed=1)  # not a multiple of any pad: the engine pads and crops
    written = []
    eng = Engine(Restorer(method, torch.device("cpu")), FixedSelector([True] * 10, 3), batch_size=3)
    s = eng.run(iter(items(clip)), lambda f, o: written.append((f.index, o)), lambda p: None)
    assert s.frames == 10 and [i for i, _ in written] == list(range(10))
    want = direct(name, net, clip)
    for (i, got), ref in zip(written, want):
        assert got.shape == (20, 28, 3)
        assert np.abs(got.astype(int) - ref).max() <= 1, (name, i)


def test_r2d4_state_resets_after_a_skipped_frame(tmp_path):
    net, path = random_weights("r2d4", tmp_path)
    method = create("r2d4", variant="small", weights=path)
    clip = frames(6, 16, 16, seed=2)
    labels = [True, True, False, True, True, True]
    written = []
    eng = Engine(Restorer(method, torch.device("cpu")), FixedSelector(labels, 0))
    eng.run(iter(items(clip)), lambda f, o: written.append(o), lambda p: None)
    assert written[2] is None
    # frame 3 restarts: its corrupted past (frames 2, 1) stands in for the restored past
    x = torch.stack([torch.from_numpy(a).permute(2, 0, 1).float() / 255 for a in clip])
    with torch.inference_mode():
        pc = torch.stack([x[2], x[1]])[None]
        _, out = net(x[3:4], pc, pc)
    ref = (out[0].clamp(0, 1) * 255).round().permute(1, 2, 0).numpy().astype(np.uint8)
    assert np.abs(written[3].astype(int) - ref).max() <= 1


def test_weights_option_on_the_cli(cli, clip, tmp_path):
    _, path = random_weights("golf", tmp_path)
    r = cli("run", clip, "-o", tmp_path / "o.mp4", "--method", "golf", "--param", "variant=small",
            "--weights", path, "--select", "none")
    assert r.exit_code == 0, r.output
    r = cli("run", clip, "-o", tmp_path / "o2.mp4", "--method", "wiener", "--weights", path)
    assert r.exit_code == 2 and "does not take --weights" in r.stderr


def _count_stage1(method):
    """Frames the atrous stage 1 of an mlfa method runs on, counted by a forward hook."""
    seen = []
    method.net.stage1.register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[0]))
    return seen


def test_mlfa_runs_stage1_once_per_frame(tmp_path):
    net, path = random_weights("mlfa", tmp_path)
    method = create("mlfa", variant="small", weights=path)
    ran = _count_stage1(method)
    clip = frames(10, 16, 24, seed=3)
    written = []
    eng = Engine(Restorer(method, torch.device("cpu")), FixedSelector([True] * 10, 3), batch_size=3)
    eng.run(iter(items(clip)), lambda f, o: written.append(o), lambda p: None)
    assert sum(ran) == 10  # not 30: each frame is in three windows
    for got, ref in zip(written, direct("mlfa", net, clip)):
        assert np.abs(got.astype(int) - ref).max() <= 1


def test_mlfa_stage1_cache_gives_the_networks_floats_and_forgets_old_weights(tmp_path):
    net, path = random_weights("mlfa", tmp_path)
    method = create("mlfa", variant="small", weights=path).eval()
    ran = _count_stage1(method)
    x = torch.rand(7, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    windows = [x[i : i + 3][None] for i in range(5)]
    with torch.inference_mode():
        for w in windows:
            torch.testing.assert_close(method(w.clone())[0], net(w), atol=1e-5, rtol=1e-5)
        assert sum(ran) == 7
        # a window whose frames repeat: one stage-1 run per distinct frame
        method(torch.stack([x[0], x[0], x[6]])[None])
        assert sum(ran) == 7 + 1
    with torch.no_grad():  # new stage-1 weights (as after an optimiser step): nothing stale is served
        for p in method.net.stage1.parameters():
            p.mul_(0.5)
    with torch.inference_mode():
        want = method.net(windows[-1])
        torch.testing.assert_close(method(windows[-1].clone())[0], want, atol=1e-5, rtol=1e-5)


def test_r2d4_extracts_one_past_frame_per_step(tmp_path):
    """Past slot n+1 at step t+1 is slot n at step t: its features are kept, not recomputed; the
    frames equal the network run by hand (which recomputes everything)."""
    net, path = random_weights("r2d4", tmp_path)
    method = create("r2d4", variant="small", weights=path)
    seen = []
    method.net.feat_past.register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[0]))
    clip = frames(10, 20, 28, seed=5)
    written = []
    eng = Engine(Restorer(method, torch.device("cpu")), FixedSelector([True] * 10, 0))
    eng.run(iter(items(clip)), lambda f, o: written.append(o), lambda p: None)
    assert seen == [2] + [1] * 9  # was [2] * 10
    for got, ref in zip(written, direct("r2d4", net, clip)):
        assert np.abs(got.astype(int) - ref).max() <= 1
