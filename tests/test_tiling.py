import pytest
import torch
from torch import nn

from vdeblur.engine.tiling import (
    is_oom,
    run_tiled_or_whole,
    tile_grid,
    tiled_call,
)


def conv_net(seed=0, cin=3, cout=3):
    """Three 3x3 convs with ReLU: receptive field 7 (radius 3)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(cin, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, cout, 3, padding=1),
    ).eval()


class Recorder:
    def __init__(self, fn):
        self.fn, self.shapes = fn, []

    def __call__(self, x):
        self.shapes.append(tuple(x.shape))
        return self.fn(x)


@torch.no_grad()
@pytest.mark.parametrize("tile,overlap", [(32, 16), (40, 12), (24, 20)])
def test_tiled_equals_whole_4d(tile, overlap):
    net = conv_net()
    x = torch.rand(1, 3, 67, 93)
    rec = Recorder(net)
    out = tiled_call(rec, x, tile, overlap)
    assert out.shape == (1, 3, 67, 93)
    assert len(rec.shapes) > 4  # really tiled
    assert all(s[-2] <= tile and s[-1] <= tile for s in rec.shapes)
    assert (out - net(x)).abs().max().item() < 1e-3


@torch.no_grad()
def test_tiled_equals_whole_5d_window():
    net = conv_net(seed=1)
    x = torch.rand(2, 3, 3, 45, 61)  # [B, T, C, H, W]

    def fn(w):
        assert w.dim() == 5 and w.shape[:3] == (2, 3, 3)
        return net(w[:, 1])

    out = tiled_call(fn, x, 32, 16)
    assert out.shape == (2, 3, 45, 61)
    assert (out - net(x[:, 1])).abs().max().item() < 1e-3


@torch.no_grad()
def test_output_channels_may_differ_from_input():
    net = conv_net(seed=2, cin=3, cout=5)
    x = torch.rand(1, 3, 50, 50)
    out = tiled_call(net, x, 24, 16)
    assert out.shape == (1, 5, 50, 50)
    assert (out - net(x)).abs().max().item() < 1e-3


@torch.no_grad()
@pytest.mark.parametrize("multiple", [8, 16])
def test_tiles_respect_multiple(multiple):
    net = conv_net()
    x = torch.rand(1, 3, 96, 144)  # already padded to the multiple, as the restorer does
    rec = Recorder(net)
    out = tiled_call(rec, x, 50, 16, multiple=multiple)
    assert len(rec.shapes) > 1
    for s in rec.shapes:
        assert s[-2] % multiple == 0 and s[-1] % multiple == 0
        assert s[-2] <= 50 and s[-1] <= 50
    assert (out - net(x)).abs().max().item() < 1e-3


def test_grid_covers_image_and_stays_inside():
    for h, w, tile, ov, m in [(67, 93, 32, 16, 1), (45, 61, 32, 8, 1), (96, 144, 50, 16, 16), (33, 100, 32, 31, 1)]:
        cover = torch.zeros(h, w, dtype=torch.int64)
        for y, x, th, tw in tile_grid(h, w, tile, ov, m):
            assert 0 <= y and y + th <= h and 0 <= x and x + tw <= w
            cover[y:y + th, x:x + tw] += 1
        assert (cover > 0).all()


def test_image_smaller_than_tile_is_one_call():
    net = conv_net()
    x = torch.rand(1, 3, 20, 27)
    rec = Recorder(net)
    with torch.no_grad():
        out = tiled_call(rec, x, 64, 16)
    assert rec.shapes == [(1, 3, 20, 27)]
    assert torch.allclose(out, net(x).detach())


def test_one_axis_smaller_than_tile():
    x = torch.rand(1, 3, 20, 100)
    rec = Recorder(lambda c: c * 2)
    out = tiled_call(rec, x, 32, 8)
    assert all(s[-2] == 20 for s in rec.shapes) and len(rec.shapes) > 1
    assert torch.allclose(out, x * 2, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 3, 67, 93), (1, 3, 3, 45, 61)])
def test_blend_exact_for_constant_fn(shape):
    x = torch.rand(*shape)

    def const(c):
        return torch.full((c.shape[0], 3, *c.shape[-2:]), 0.37)

    out = tiled_call(const, x, 24, 10)
    assert out.shape == (shape[0], 3, *shape[-2:])
    assert (out - 0.37).abs().max().item() < 1e-6


def test_blend_exact_for_pointwise_fn():
    x = torch.rand(1, 3, 67, 93)
    out = tiled_call(lambda c: c.sigmoid(), x, 32, 16)
    assert (out - x.sigmoid()).abs().max().item() < 1e-6


def test_overlap_larger_than_tile_is_clamped():
    x = torch.rand(1, 3, 70, 70)
    out = tiled_call(lambda c: c + 1, x, 16, 100)
    assert torch.allclose(out, x + 1, atol=1e-6)


def test_bad_fn_output_shape_is_an_error():
    with pytest.raises(ValueError, match="crop"):
        tiled_call(lambda c: c[..., :-1, :], torch.rand(1, 3, 64, 64), 32, 8)


class OOMAbove:
    """Raises a CUDA-style OOM on crops with more than ``limit`` pixels."""

    def __init__(self, fn, limit, message="CUDA out of memory. Tried to allocate 2.00 GiB"):
        self.fn, self.limit, self.message, self.calls = fn, limit, message, []

    def __call__(self, x):
        self.calls.append(tuple(x.shape[-2:]))
        if x.shape[-2] * x.shape[-1] > self.limit:
            raise RuntimeError(self.message)
        return self.fn(x)


@torch.no_grad()
def test_oom_falls_back_to_512_tiles():
    net = conv_net()
    x = torch.rand(1, 3, 600, 40)
    fn, warnings = OOMAbove(net, 512 * 40), []
    out = run_tiled_or_whole(fn, x, None, 16, 1, "cpu", warn=warnings.append)
    assert fn.calls[0] == (600, 40)
    assert all(h <= 512 for h, _ in fn.calls[1:])
    assert len(warnings) == 1 and "512" in warnings[0] and "out of memory" in warnings[0]
    assert (out - net(x)).abs().max().item() < 1e-3


@torch.no_grad()
def test_oom_falls_back_to_256_and_warns_twice():
    net = conv_net()
    x = torch.rand(1, 3, 600, 30)
    fn, warnings = OOMAbove(net, 300 * 30), []
    out = run_tiled_or_whole(fn, x, None, 16, 8, "cpu", warn=warnings.append)
    assert len(warnings) == 2 and "512" in warnings[0] and "256" in warnings[1]
    assert (out - net(x)).abs().max().item() < 1e-3


def test_oom_everywhere_reraises():
    fn, warnings = OOMAbove(lambda c: c, 10), []
    with pytest.raises(RuntimeError, match="out of memory"):
        run_tiled_or_whole(fn, torch.rand(1, 3, 600, 600), None, 16, 1, "cpu", warn=warnings.append)
    assert len(warnings) == 3  # 512, 256, 128


def test_oom_skips_tile_sizes_not_smaller_than_frame():
    # a 300x300 frame: 512 tiles would be the whole frame again, so go straight to 256
    fn, warnings = OOMAbove(lambda c: c * 3, 256 * 256), []
    x = torch.rand(1, 3, 300, 300)
    out = run_tiled_or_whole(fn, x, None, 16, 1, "cpu", warn=warnings.append)
    assert len(warnings) == 1 and "256" in warnings[0]
    assert torch.allclose(out, x * 3, atol=1e-6)


def test_non_oom_errors_propagate_without_fallback():
    def boom(c):
        raise RuntimeError("shape mismatch")

    warnings = []
    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_tiled_or_whole(boom, torch.rand(1, 3, 600, 600), None, 16, 1, "cpu", warn=warnings.append)
    assert warnings == []


def test_real_cuda_oom_type_is_recognised():
    assert is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_oom(RuntimeError("MPS backend out of memory"))
    assert not is_oom(RuntimeError("expected scalar type Float"))
    assert not is_oom(ValueError("out of memory"))


def test_explicit_tile_is_used_directly():
    rec = Recorder(lambda c: c)
    x = torch.rand(1, 3, 64, 64)
    out = run_tiled_or_whole(rec, x, 32, 8, 1, "cpu")
    assert len(rec.shapes) == 9 and torch.allclose(out, x, atol=1e-6)  # 3x3 tiles of 32, stride 24


def test_whole_frame_when_it_fits():
    rec = Recorder(lambda c: c)
    x = torch.rand(1, 3, 64, 64)
    assert run_tiled_or_whole(rec, x, None, 8, 1, "cpu") is x
    assert rec.shapes == [(1, 3, 64, 64)]
