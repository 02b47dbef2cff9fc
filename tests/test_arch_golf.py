"""Golf Optimizer architecture: Table 1 parameter counts, shapes, trainability, recurrence."""

import pytest
import torch

from vdeblur.methods.archs.golf import GOLF_VARIANTS, BasicBlock, Golf, GolfNet


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


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
    measured = [_count(net.head)]
    measured += [_count(blocks[i]) + _count(blocks[i + 1]) for i in range(0, 8, 2)]
    measured += [_count(net.tail)]
    assert measured == rows
    assert _count(net) == total


def test_paper_golf_totals():
    model = Golf(**GOLF_VARIANTS["paper"])
    assert _count(model.f) == 466_348
    assert _count(model.g) == 120_188
    assert _count(model) == 466_348 + 120_188
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
