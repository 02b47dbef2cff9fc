"""Atrous stage-1 and MLFA stage-2 architectures: parameter counts, shapes, cosine weighting,
t-1/t+1 (a)symmetry, trainability. Source: /work/shared/papers/atrous-mlfa-image-video-deblur.md."""

import pytest
import torch

from nets import n_params
from vdeblur.methods.archs.atrous import ATROUS_VARIANTS, AtrousBlock, AtrousNet
from vdeblur.methods.archs.mlfa import MLFA, MLFA_VARIANTS, cosine_weight


# ---------------------------------------------------------------- parameter counts


def test_atrous_block_paper_count():
    # Section 3.1: 4 x Conv3x3(256->128) at rates 1..4, Conv3x3(512->256); every conv bias-free
    # with a learned per-map scale and a bias (Section 3.3): k*k*cin*cout + 2*cout each.
    block = AtrousBlock(256, 128, (1, 2, 3, 4))
    assert [b.conv.dilation for b in block.branches] == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert n_params(block) == 4 * (9 * 256 * 128 + 2 * 128) + (9 * 512 * 256 + 2 * 256) == 2_360_832


def test_atrous_paper_total_near_47m():
    net = AtrousNet(**ATROUS_VARIANTS["paper"])
    assert len(net.blocks) == 20
    assert net.head[0].conv.kernel_size == (9, 9)
    assert n_params(net.blocks) == 20 * 2_360_832 == 47_216_640
    # head 9x9 (3->64), stride-2 3x3 (64->256), deconv 3x3 (256->64), 3x3 (64->64), 3x3 (64->3);
    # widths outside the blocks are our choice (the paper gives none)
    rest = (81 * 3 * 64 + 128) + (9 * 64 * 256 + 512) + (9 * 256 * 64 + 128)
    rest += (9 * 64 * 64 + 128) + (9 * 64 * 3 + 6)
    assert n_params(net) == 47_216_640 + rest == 47_566_598
    assert abs(n_params(net) - 47e6) / 47e6 < 0.02  # the paper's "~47 M"


def test_mlfa_paper_structure():
    net = MLFA(**MLFA_VARIANTS["paper"])
    assert net.pad_multiple == 16 and len(net.extract) == 4
    assert all(e.conv.stride == (2, 2) for e in net.extract)
    assert [e.conv.out_channels for e in net.extract] == [32, 64, 128, 256]  # increasing depth
    assert all(len(f.blocks) == 3 for f in net.fusion)  # one conv + three residual blocks
    assert n_params(net) == 7_843_526


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("hw", [(2 * 37, 2 * 5), (12, 2 * 9)])
def test_atrous_shape(hw):
    torch.manual_seed(0)
    net = AtrousNet(**ATROUS_VARIANTS["small"]).eval()
    assert net.pad_multiple == 2
    x = torch.rand(2, 3, *hw)
    with torch.no_grad():
        assert net(x).shape == x.shape


def test_atrous_rejects_odd_size():
    with pytest.raises(ValueError):
        AtrousNet(**ATROUS_VARIANTS["small"])(torch.rand(1, 3, 11, 12))


@pytest.mark.parametrize("mult", [(3, 1), (1, 5)])
def test_mlfa_shape(mult):
    torch.manual_seed(0)
    net = MLFA(**MLFA_VARIANTS["small"]).eval()
    pm = net.pad_multiple
    frames = torch.rand(1, 3, 3, pm * mult[0], pm * mult[1])
    with torch.no_grad():
        assert net(frames).shape == (1, 3, pm * mult[0], pm * mult[1])


def test_mlfa_paper_levels_shape_odd_multiple():
    torch.manual_seed(0)
    net = MLFA(width=4, levels=4, res_blocks=1).eval()  # paper depth, tiny width
    frames = torch.rand(1, 3, 3, 16 * 3, 16 * 1)
    with torch.no_grad():
        assert net(frames).shape == (1, 3, 48, 16)


def test_mlfa_rejects_bad_input():
    net = MLFA(**MLFA_VARIANTS["small"])
    with pytest.raises(ValueError):
        net(torch.rand(1, 3, 3, 12, 16))  # 12 not divisible by 8
    with pytest.raises(ValueError):
        net(torch.rand(1, 9, 16, 16))


# ---------------------------------------------------------------- cosine weighting


def test_cosine_weight_unit_normalised():
    torch.manual_seed(0)
    a = torch.randn(2, 6, 5, 7)
    ones = torch.ones(2, 1, 5, 7)
    assert torch.allclose(cosine_weight(a, a), ones, atol=1e-6)  # identical -> 1 everywhere
    assert torch.allclose(cosine_weight(a, 3.7 * a), ones, atol=1e-6)  # scale-invariant (unit vectors)
    assert torch.allclose(cosine_weight(a, -a), -ones, atol=1e-6)  # opposite -> -1 (not squashed)
    e0 = torch.zeros(1, 4, 3, 3)
    e0[:, 0] = 2.0
    e1 = torch.zeros(1, 4, 3, 3)
    e1[:, 1] = 0.5
    assert torch.allclose(cosine_weight(e0, e1), torch.zeros(1, 1, 3, 3))  # orthogonal -> 0
    b = torch.randn(2, 6, 5, 7)
    w = cosine_weight(a, b)
    assert w.shape == (2, 1, 5, 7) and w.abs().max() <= 1 + 1e-6
    assert torch.allclose(w, cosine_weight(b, a))  # the measure itself is symmetric
    assert torch.allclose(cosine_weight(a, torch.zeros_like(a)), 0 * ones)  # zero vector -> 0, no NaN


# ---------------------------------------------------------------- t-1 / t+1 symmetry


def test_mlfa_not_swap_invariant_but_slot_equivariant():
    """The paper concatenates [t-1, t, t+1] and fuses with one conv: separate weights per slot, so
    swapping t-1 and t+1 changes the output -- unless the two slots' weights are swapped too."""
    torch.manual_seed(0)
    net = MLFA(**MLFA_VARIANTS["small"]).eval()
    frames = torch.rand(1, 3, 3, 16, 16)
    swapped = frames[:, [2, 1, 0]]
    with torch.no_grad():
        y = net(frames)
        y_swapped = net(swapped)
        assert not torch.allclose(y, y_swapped, atol=1e-5)
        for fusion in net.fusion:
            wt = fusion.fuse.conv.weight
            c = wt.shape[1] // 3
            wt.copy_(torch.cat([wt[:, 2 * c :], wt[:, c : 2 * c], wt[:, :c]], dim=1))
        assert torch.allclose(net(swapped), y, atol=1e-5)


# ---------------------------------------------------------------- trainability


def _loss_drops(net, x, target, steps=6):
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = (net(x) - target).abs().mean()  # Section 3.3: pixel-wise absolute error
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.slow
def test_atrous_trains():
    torch.manual_seed(0)
    net = AtrousNet(**ATROUS_VARIANTS["small"])
    sharp = torch.rand(2, 3, 16, 16)
    blurry = torch.nn.functional.avg_pool2d(sharp, 3, 1, 1, count_include_pad=False)
    losses = _loss_drops(net, blurry, sharp)
    assert losses[-1] < losses[0]


def test_mlfa_trains():
    torch.manual_seed(0)
    net = MLFA(**MLFA_VARIANTS["small"])
    sharp = torch.rand(2, 3, 16, 16)
    frames = torch.stack([sharp.roll(1, -1), sharp, sharp.roll(-1, -1)], dim=1) * 0.8 + 0.1
    losses = _loss_drops(net, frames, sharp)
    assert losses[-1] < losses[0]


def test_scaled_conv_and_deconv_equal_their_first_form():
    """The scale folded into the filters and the bias into the conv: the first implementation
    (``act(conv(pad(x)) * scale + bias)``) is kept here as the reference."""
    import torch.nn.functional as F

    from vdeblur.methods.archs.atrous import NEGATIVE_SLOPE, ScaledConv, ScaledDeconv

    torch.manual_seed(4)
    x = torch.randn(2, 6, 17, 21)
    for layer in (ScaledConv(6, 5, 3, dilation=2), ScaledConv(6, 5, 3, stride=2, act=False),
                  ScaledConv(6, 4, 9), ScaledDeconv(6, 4), ScaledDeconv(6, 4, act=False)):
        with torch.no_grad():
            layer.scale.uniform_(0.5, 2.0)
            layer.bias.uniform_(-1, 1)
        if isinstance(layer, ScaledConv):
            p = layer.pad
            y = layer.conv(F.pad(x, (p, p, p, p), mode="reflect"))
        else:
            y = layer.deconv(x)
        ref = y * layer.scale.view(1, -1, 1, 1) + layer.bias.view(1, -1, 1, 1)
        ref = F.leaky_relu(ref, NEGATIVE_SLOPE) if layer.act else ref
        torch.testing.assert_close(layer(x), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("hw", [(17, 21), (4, 9), (3, 40)])
def test_atrous_block_shared_pad_equals_one_pad_per_branch(hw):
    """The block pads its input once (the widest rate) and each branch crops its conv's output:
    the same as each branch padding x itself, reflection or (on a frame too small to reflect
    the widest pad) zeros, in either memory layout, with gradients."""
    torch.manual_seed(5)
    block = AtrousBlock(8, 4)
    with torch.no_grad():
        for b in (*block.branches, block.reduce):
            b.scale.uniform_(0.5, 2.0)
            b.bias.uniform_(-1, 1)
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(2, 8, *hw).contiguous(memory_format=fmt).requires_grad_(True)
        ref = x + block.reduce(torch.cat([b(x) for b in block.branches], dim=1))
        out = block(x)
        torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)
        g, = torch.autograd.grad(out.sum(), x)
        g_ref, = torch.autograd.grad(ref.sum(), x)
        torch.testing.assert_close(g, g_ref, atol=1e-5, rtol=1e-5)


def test_scaled_conv_rejects_a_narrower_pre_pad():
    from vdeblur.methods.archs.atrous import ScaledConv

    with pytest.raises(ValueError, match="padded"):
        ScaledConv(4, 4, 3, dilation=3)(torch.randn(1, 4, 12, 12), padded=2)
    with pytest.raises(ValueError, match="padded"):
        ScaledConv(4, 4, 3, stride=2)(torch.randn(1, 4, 12, 12), padded=1)
