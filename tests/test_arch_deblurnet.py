"""DeblurNet architectures (FDM generator, Table 1; FSM classifier, Table 3): counts, shapes, training."""

import pytest
import torch
import torch.nn.functional as F

from nets import n_params
from vdeblur.methods.archs.deblurnet import (
    DEBLURNET_VARIANTS,
    FSM_VARIANTS,
    DeblurNetFDM,
    DeblurNetFSM,
    ResBlock,
)


def _conv(c_in, c_out, k):  # weights + bias
    return c_in * c_out * k * k + c_out


def test_fdm_paper_parameter_count():
    w, h, n = 64, 16, 15
    inorm = 2 * w  # affine InstanceNorm: scale + shift
    l1, l2 = _conv(3, h, 7), _conv(h, w, 5)
    block = 2 * (_conv(w, w, 3) + inorm)
    l33_34 = block
    l35_36 = 2 * _conv(w, w, 1)
    l37 = (
        w * 3 * 2 * 2 + 3
    )  # ConvTranspose2d(w, 3, 2, 2) == 1x1 conv to 12 ch + pixel shuffle
    expected_rows = [l1, l2, block, l33_34, l35_36, l37]
    assert expected_rows == [2_368, 25_664, 74_112, 74_112, 8_320, 771]
    net = DeblurNetFDM(**DEBLURNET_VARIANTS["paper"])
    measured = [
        n_params(net.l1),
        n_params(net.l2),
        n_params(net.blocks[0]),
        n_params(net.l33_34),
        n_params(net.l35) + n_params(net.l36),
        n_params(net.l37),
    ]
    assert measured == expected_rows
    assert len(net.blocks) == n and all(isinstance(b, ResBlock) for b in net.blocks)
    total = l1 + l2 + n * block + l33_34 + l35_36 + l37
    print(f"DeblurNetFDM paper parameters: {total:,}")
    assert n_params(net) == total == 1_222_915


def _inorm(c):  # affine InstanceNorm
    return 2 * c


def test_fsm_paper_parameter_count():
    inorm = _inorm
    convs = (
        _conv(3, 64, 5)  # L1, no norm
        + _conv(64, 64, 5)
        + inorm(64)  # L2
        + _conv(64, 128, 3)
        + inorm(128)  # L3
        + 3 * (_conv(128, 128, 3) + inorm(128))  # L4-L6
        + _conv(128, 512, 3)
        + inorm(512)  # L7
        + _conv(512, 512, 3)
        + inorm(512)  # L8
        + _conv(512, 512, 3)  # L9, no norm
    )
    fcs = (512 * 4096 + 4096) + (4096 * 2 + 2)  # L11, L12
    net = DeblurNetFSM(**FSM_VARIANTS["paper"])
    assert n_params(net.features) == convs == 5_937_088
    assert n_params(net.classifier) == fcs == 2_109_442
    print(f"DeblurNetFSM paper parameters: {convs + fcs:,}")
    assert n_params(net) == convs + fcs == 8_046_530
    strides = [m.stride[0] for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert strides == [1, 2, 1, 2, 1, 2, 1, 2, 1]


def test_fdm_paper_macs_per_pixel():
    """Docstring's Table 6 cross-check: 305,904 MACs per output pixel (563.8 GFLOPs at 720p)."""
    net = DeblurNetFDM(**DEBLURNET_VARIANTS["paper"]).eval()
    macs = []

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.ConvTranspose2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            macs.append(inp[0][0].numel() * mod.out_channels * k)
        else:
            k = mod.kernel_size[0] * mod.kernel_size[1]
            macs.append(out[0].numel() * mod.in_channels * k)

    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        net(torch.rand(1, 3, 8, 8))
    assert sum(macs) / 64 == 305_904


@pytest.mark.parametrize("size", [(16, 24), (8, 8)])
def test_fdm_shape_divisible(size):
    net = DeblurNetFDM(**DEBLURNET_VARIANTS["small"]).eval()
    assert net.pad_multiple == 2
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape


def test_fdm_odd_sizes_after_padding():
    net = DeblurNetFDM(**DEBLURNET_VARIANTS["small"]).eval()
    x = torch.rand(1, 3, 13, 17)
    with pytest.raises(ValueError, match="divisible"):
        net(x)
    m = net.pad_multiple
    ph, pw = (-x.shape[-2]) % m, (-x.shape[-1]) % m
    xp = F.pad(x, (0, pw, 0, ph), mode="reflect")
    with torch.no_grad():
        y = net(xp)[..., : x.shape[-2], : x.shape[-1]]
    assert y.shape == x.shape


def test_fdm_stride1_and_dropout_modes():
    net = DeblurNetFDM(width=8, head_width=4, num_blocks=1, stride=1).eval()
    assert net.pad_multiple == 1
    x = torch.rand(1, 3, 7, 9)
    with torch.no_grad():
        assert net(x).shape == x.shape
        assert torch.equal(
            net(x), net(x)
        )  # eval: dropout off by default -> deterministic
    mc = DeblurNetFDM(
        width=8, head_width=4, num_blocks=1, stride=1, mc_dropout=True
    ).eval()
    with torch.no_grad():
        assert not torch.equal(mc(x), mc(x))  # Section IV-D: dropout kept at inference


def test_fsm_logits_any_size():
    net = DeblurNetFSM(**FSM_VARIANTS["small"]).eval()
    with torch.no_grad():
        for shape in [(3, 3, 32, 32), (2, 3, 40, 56)]:
            logits = net(torch.rand(*shape))
            assert logits.shape == (shape[0],)
            assert torch.isfinite(logits).all()
        z = net.scores(torch.rand(2, 3, 32, 48))
        assert z.shape == (2, 2)


def test_fdm_training_lowers_loss():
    torch.manual_seed(0)
    net = DeblurNetFDM(**DEBLURNET_VARIANTS["small"])
    sharp = torch.rand(2, 3, 16, 16)
    blurred = F.avg_pool2d(F.pad(sharp, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def loss_eval():
        net.eval()
        with torch.no_grad():
            return F.huber_loss(
                net(blurred), sharp
            ).item()  # III-D content loss (Huber)

    before = loss_eval()
    net.train()
    for _ in range(15):
        opt.zero_grad()
        F.huber_loss(net(blurred), sharp).backward()
        opt.step()
    assert loss_eval() < before


def test_fsm_training_lowers_loss():
    torch.manual_seed(0)
    net = DeblurNetFSM(**FSM_VARIANTS["small"])
    sharp = torch.rand(4, 3, 32, 32)
    blurred = F.avg_pool2d(F.pad(sharp, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    x = torch.cat([sharp, blurred])
    target = torch.cat([torch.zeros(4), torch.ones(4)])  # positive = blurred
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def loss_eval():
        net.eval()
        with torch.no_grad():
            return F.binary_cross_entropy_with_logits(net(x), target).item()

    before = loss_eval()
    net.train()
    for _ in range(15):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(net(x), target).backward()
        opt.step()
    assert loss_eval() < before
