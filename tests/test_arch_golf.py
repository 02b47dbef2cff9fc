"""Golf Optimizer architecture: Table 1 parameter counts, shapes, trainability, recurrence."""

import pytest
import torch

from nets import n_params
from vdeblur.methods.archs.golf import GOLF_VARIANTS, BasicBlock, Golf, GolfNet


@pytest.mark.parametrize(
    "width, rows, total",
    [
        # Table 1, column F (f = 32) and column G (f = 16), row by row
        (32, [4_704, 151_808, 151_808, 151_808, 5_779, 441], 466_348),
        (16, [2_352, 38_016, 38_016, 38_016, 3_347, 441], 120_188),
    ],
)
def test_table1_parameter_counts(width, rows, total):
    net = GolfNet(width)
    blocks = net.blocks
    measured = [n_params(net.head)]
    measured += [n_params(blocks[i]) + n_params(blocks[i + 1]) for i in range(0, 8, 2)]
    measured += [n_params(net.tail)]
    assert measured == rows
    assert n_params(net) == total


def test_paper_golf_totals():
    model = Golf(**GOLF_VARIANTS["paper"])
    assert n_params(model.f) == 466_348
    assert n_params(model.g) == 120_188
    assert n_params(model) == 466_348 + 120_188
    assert model.iterations == 3


def test_fifty_basic_layers():
    # Table 1 bottom row: 1 first conv + 8 BB x 6 basic layers + 1 last conv (shortcuts not counted)
    net = GolfNet(16)
    bb_layers = [len(b.residual) for b in net.blocks]
    assert len(net.blocks) == 8 and all(isinstance(b, BasicBlock) for b in net.blocks)
    assert 1 + sum(bb_layers) + 1 == 50


@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (1, 3, 16, 9)])
def test_output_shape_equals_input_small(shape):
    torch.manual_seed(0)
    model = Golf(**GOLF_VARIANTS["small"]).eval()
    y = torch.rand(*shape)
    with torch.no_grad():
        out = model(y)
    assert out.shape == y.shape
    assert torch.isfinite(out).all()


def test_rejects_non_rgb():
    with pytest.raises(ValueError):
        Golf(**GOLF_VARIANTS["small"])(torch.rand(1, 1, 8, 8))


def test_return_intermediates():
    model = Golf(f_width=4, g_width=4, iterations=3).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 12, 12), return_intermediates=True)
    assert len(outs) == 4 and all(o.shape == (1, 3, 12, 12) for o in outs)


def test_gradient_steps_reduce_l1():
    torch.manual_seed(0)
    model = Golf(**GOLF_VARIANTS["small"])
    sharp = torch.rand(2, 3, 16, 16)
    blurred = torch.nn.functional.avg_pool2d(sharp, 5, stride=1, padding=2, count_include_pad=False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss = (model(blurred) - sharp).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        final = (model(blurred) - sharp).abs().mean().item()
    assert final < losses[0]
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("iterations", [0, 1, 2, 4])
def test_iterations_count_g_applications(iterations):
    model = Golf(f_width=4, g_width=4, iterations=iterations).eval()
    calls = {"f": 0, "g": 0}
    model.f.register_forward_hook(lambda *_: calls.__setitem__("f", calls["f"] + 1))
    model.g.register_forward_hook(lambda *_: calls.__setitem__("g", calls["g"] + 1))
    with torch.no_grad():
        model(torch.rand(1, 3, 10, 10))
    assert calls == {"f": 1, "g": iterations}


def _old_block(blk, x):
    """The first implementation of BasicBlock.forward, kept as the reference: every layer through
    its own module (nn.InstanceNorm2d, separate ReLUs)."""
    return blk.shortcut(x) + blk.residual(x)


@pytest.mark.parametrize("c_in,c_out", [(8, 8), (8, 3), (3, 3)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_norm_relu_equals_the_module_form(c_in, c_out, channels_last):
    torch.manual_seed(3)
    blk = BasicBlock(c_in, c_out).eval()
    with torch.no_grad():  # non-trivial affine parameters
        for m in blk.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, c_in, 19, 23) * 2 + 1
    if channels_last:
        blk, x = blk.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        torch.testing.assert_close(blk(x), _old_block(blk, x), atol=1e-5, rtol=1e-5)
    # and gradients still flow through the fused form
    y = blk.train()(x.clone().requires_grad_())
    y.square().mean().backward()
    assert all(p.grad is not None for p in blk.parameters())


def test_shipped_golf_weights_give_the_module_form_output():
    from vdeblur.weights.store import load_state_dict
    from pathlib import Path

    import vdeblur.weights as w

    net = Golf(**GOLF_VARIANTS["small"]).eval()
    net.load_state_dict({k: v.float() for k, v in load_state_dict(
        Path(w.__file__).parent / "files" / "golf-small.safetensors").items()})
    x = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        ref = x
        for g in [net.f] + [net.g] * net.iterations:
            h = g.head(ref)
            for blk in g.blocks:
                h = _old_block(blk, h)
            ref = ref + g.tail(h)
        torch.testing.assert_close(net(x), ref, atol=1e-5, rtol=1e-5)
