"""--select fsm: DeblurNet's Frame Selection Module as a streaming selector."""

import numpy as np
import pytest
import torch

from vdeblur.errors import WeightsError
from vdeblur.methods.archs.deblurnet import FSM_VARIANTS, DeblurNetFSM
from vdeblur.select import make_selector
from vdeblur.select.fsm import FSMSelector
from vdeblur.weights.store import save_state_dict


def small_fsm():
    torch.manual_seed(0)
    return DeblurNetFSM(**FSM_VARIANTS["small"]).eval()


def run(sel, n, h=40, w=48):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        out += sel.push(i, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return out + sel.flush()


def check_groups(decisions, n, every):
    """Every frame decided once, in order; each group of ``every`` one label, one probability."""
    assert [d.index for d in decisions] == list(range(n))
    for g in range(0, n, every):
        group = decisions[g : g + every]
        assert len({d.blurred for d in group}) == 1
        assert sum(d.score is not None for d in group) == 1
        assert all(0 <= d.score <= 1 for d in group if d.score is not None)


@pytest.mark.parametrize("every, n", [(1, 7), (5, 12), (4, 10), (15, 7)])
def test_decisions_in_order_once_and_grouped(every, n):
    check_groups(run(FSMSelector(small_fsm(), every=every), n), n, every)


def test_threshold_is_a_probability():
    assert all(d.blurred for d in run(FSMSelector(small_fsm(), threshold=0.0), 4))
    assert not any(d.blurred for d in run(FSMSelector(small_fsm(), threshold=1.0), 4))


def test_fsm_refuses_without_weights(cli, clip, no_weights):
    with pytest.raises(WeightsError, match="no trained weights"):
        make_selector("fsm")
    r = cli("classify", clip, "--select", "fsm")
    assert r.exit_code == 5 and "no trained weights" in r.stderr


def test_fsm_with_a_weights_file_on_the_cli(cli, clip, tmp_path):
    net = DeblurNetFSM(**FSM_VARIANTS["small"])
    path = tmp_path / "fsm.safetensors"
    save_state_dict(net.state_dict(), path)
    r = cli("classify", clip, "--select", "fsm", "--select-weights", path, "--select-every", "4", "--json")
    assert r.exit_code == 0, r.output
    r = cli("run", clip, "-o", tmp_path / "o.mp4", "--method", "unsharp", "--select", "fsm",
            "--select-weights", path)
    assert r.exit_code == 0, r.output


def test_fsm_weights_of_another_variant_are_a_weights_error(cli, clip, tmp_path):
    path = tmp_path / "fsm-paper.safetensors"
    save_state_dict(DeblurNetFSM(**FSM_VARIANTS["paper"]).state_dict(), path)
    r = cli("classify", clip, "--select", "fsm", "--select-weights", path)
    assert r.exit_code == 5 and "do not fit" in r.stderr


def _context(n, cuts=(), level=500.0):
    from vdeblur.select.context import Labels, Shot

    bounds = [0, *cuts, n]
    shots = [Shot(a, b - 1, level, [0.0] * 4, 0.0) for a, b in zip(bounds[:-1], bounds[1:])]
    return Labels([False] * n, [0.0] * n, shots, [1.0] * n)


RULE = {"margin": 2.0, "floor": -2.0, "sure": 6.0, "percentile": 10.0, "lap_weight": 0.0}


def test_label_fsm_judges_each_shot_against_its_sharp_frames():
    from vdeblur.select.fsm import label_fsm

    # shot 1: the net calls even its sharp frames "blurred" (logit +1: soft content); shot 2: a
    # detailed shot, sharp at -5; blurred frames are 3-4 above their shot's sharp frames
    z = np.array([1.0, 1.2, 4.5, 0.9, 5.0, 1.1, -5.0, -4.8, -1.5, -5.1, -1.0, -4.9])
    truth = [False, False, True, False, True, False, False, False, True, False, True, False]
    ctx = _context(len(z), cuts=[6])
    assert label_fsm(z, ctx, **RULE).blurred == truth
    absolute = label_fsm(z, ctx, threshold=0.5).blurred
    assert absolute == (z > 0).tolist() and absolute != truth  # the absolute rule calls shot 1 all blurred
    probs = label_fsm(z, ctx, **RULE).scores
    assert probs == pytest.approx((1 / (1 + np.exp(-z))).tolist())


def test_label_fsm_all_sharp_shot_and_whole_blurred_shot():
    from vdeblur.select.fsm import label_fsm

    rng = np.random.default_rng(0)
    sharp = -3 + rng.normal(0, 0.5, 40)  # jitter only: no frame is blurred
    assert not any(label_fsm(sharp, _context(40), **RULE).blurred)
    blurred = 8 + rng.normal(0, 0.5, 20)  # blurred throughout: only the absolute "sure" part sees it
    assert all(label_fsm(blurred, _context(20), **RULE).blurred)
    assert not any(label_fsm(blurred, _context(20), **{**RULE, "sure": 1e9}).blurred)
    # a flat shot (nothing to deblur, as the Laplacian rule) is left sharp
    assert not any(label_fsm(blurred, _context(20, level=1e-3), **RULE).blurred)


def test_fsm_labels_the_whole_file_shot_by_shot(cli, tmp_path):
    """A file: classify --select fsm runs the pre-pass (the summary has shots); a pipe-like
    streaming run (context off) gives the same frame count."""
    import json

    from media import write_video
    from vdeblur.cli.classify import classify_video

    clip = tmp_path / "c.mp4"
    write_video(clip, 10, (64, 48))
    path = tmp_path / "fsm.safetensors"
    save_state_dict(DeblurNetFSM(**FSM_VARIANTS["small"]).state_dict(), path)
    r = cli("classify", clip, "--select", "fsm", "--select-weights", path, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.splitlines()[-1])["summary"]
    assert summary["frames"] == 10 and summary["shots"] and summary["shots"][0]["first"] == 0
    seen = []
    classify_video(str(clip), "fsm", select_weights=str(path), context=False, on_decision=lambda d, t: seen.append(d))
    assert len(seen) == 10
    r = cli("run", clip, "-o", tmp_path / "o.mp4", "--method", "unsharp", "--select", "fsm", "--select-weights", path)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("every, n", [(1, 40), (5, 37), (15, 50)])
def test_stream_selector_decisions_in_order_once_and_grouped(every, n):
    from vdeblur.select.fsm import FSMStreamSelector

    sel = FSMStreamSelector(FSMSelector(small_fsm()), every=every, total=n)
    check_groups(run(sel, n), n, every)
    assert len(sel._logits) <= sel.history + sel.radius + 2 * every  # the window's, not the stream's


def test_streaming_fsm_is_judged_against_its_window(tmp_path):
    """A pipe's --select fsm (no --threshold) judges each frame against the frames around it in its
    shot, with the Laplacian detail beside it: on a hard clip (mild blur, 2-4 px) it finds the
    blurred frames the classifier's absolute verdict calls sharp."""
    from selector_media import make_clip, write_clip
    from vdeblur.cli.classify import classify_video

    clip = make_clip("mild", n=48, size=(320, 240), seed=4)
    path = str(tmp_path / "mild.mp4")
    write_clip(path, clip)

    def accuracy(threshold):
        got = []
        classify_video(path, "fsm", threshold=threshold, context=False, on_decision=lambda d, t: got.append(d.blurred))
        return float(np.mean(np.array(got) == np.array(clip.blurred)))

    window, absolute = accuracy(None), accuracy(0.5)
    assert window >= 0.9 and window > absolute + 0.1, (window, absolute)
