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


@pytest.mark.parametrize("every, n", [(1, 7), (5, 12), (4, 10), (15, 7)])
def test_decisions_in_order_once_and_grouped(every, n):
    decisions = run(FSMSelector(small_fsm(), every=every), n)
    assert [d.index for d in decisions] == list(range(n))
    for g in range(0, n, every):
        group = decisions[g : g + every]
        assert len({d.blurred for d in group}) == 1
        assert sum(d.score is not None for d in group) == 1
        assert all(0 <= d.score <= 1 for d in group if d.score is not None)


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
