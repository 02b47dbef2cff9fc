import math

import pytest
import torch
import torch.nn.functional as F

from vdeblur.methods.archs import dcn
from vdeblur.methods.archs.dcn import (
    DCNv2Pack,
    ModulatedDeformConv2d,
    deform_conv2d,
    deform_conv2d_pytorch,
)

IMPLS = [deform_conv2d_pytorch, deform_conv2d]


def _out_size(h, k, s, p, d):
    return (h + 2 * p - d * (k - 1) - 1) // s + 1


def _zeros_offset(b, og, kh, kw, ho, wo):
    return torch.zeros(b, 2 * og * kh * kw, ho, wo, dtype=torch.float64)


def _bilinear_tv(img, y, x):
    """torchvision's CPU bilinear_interpolate, transcribed."""
    height, width = img.shape
    if y <= -1 or height <= y or x <= -1 or width <= x:
        return 0.0
    y_low, x_low = math.floor(y), math.floor(x)
    y_high, x_high = y_low + 1, x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    v1 = img[y_low, x_low] if y_low >= 0 and x_low >= 0 else 0.0
    v2 = img[y_low, x_high] if y_low >= 0 and x_high <= width - 1 else 0.0
    v3 = img[y_high, x_low] if y_high <= height - 1 and x_low >= 0 else 0.0
    v4 = img[y_high, x_high] if y_high <= height - 1 and x_high <= width - 1 else 0.0
    return hy * hx * v1 + hy * lx * v2 + ly * hx * v3 + ly * lx * v4


def _reference(inp, offset, weight, bias, stride, padding, dilation, mask):
    """Loop implementation of torchvision's deform_conv2d (groups=1)."""
    b, c, _, _ = inp.shape
    c_out, _, kh, kw = weight.shape
    k = kh * kw
    og = offset.shape[1] // (2 * k)
    cg = c // og
    ho, wo = offset.shape[2:]
    inp_l, off_l = inp.tolist(), offset.tolist()
    msk_l = mask.tolist() if mask is not None else None
    cols = torch.zeros(b, c, k, ho, wo, dtype=torch.float64)
    for n in range(b):
        for ci in range(c):
            g = ci // cg
            img = torch.tensor(inp_l[n][ci], dtype=torch.float64)
            for i in range(kh):
                for j in range(kw):
                    t = i * kw + j
                    for oy in range(ho):
                        for ox in range(wo):
                            dy = off_l[n][g * 2 * k + 2 * t][oy][ox]
                            dx = off_l[n][g * 2 * k + 2 * t + 1][oy][ox]
                            y = oy * stride - padding + i * dilation + dy
                            x = ox * stride - padding + j * dilation + dx
                            v = _bilinear_tv(img, y, x)
                            if msk_l is not None:
                                v *= msk_l[n][g * k + t][oy][ox]
                            cols[n, ci, t, oy, ox] = float(v)
    out = torch.einsum("ock,nckhw->nohw", weight.reshape(c_out, c, k).double(), cols)
    if bias is not None:
        out = out + bias.double().view(1, -1, 1, 1)
    return out


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "stride,padding,dilation,kernel",
    [(1, 0, 1, 3), (1, 1, 1, 3), (2, 1, 1, 3), (1, 2, 2, 3), (2, 2, 2, 3), (1, 0, 1, 1), (1, 2, 1, 5)],
)
@pytest.mark.parametrize("og", [1, 2])
def test_zero_offset_unit_mask_is_conv2d(impl, stride, padding, dilation, kernel, og):
    torch.manual_seed(0)
    b, c, h, w, c_out = 2, 4, 11, 13, 5
    x = torch.randn(b, c, h, w)
    wt = torch.randn(c_out, c, kernel, kernel)
    bias = torch.randn(c_out)
    ho, wo = _out_size(h, kernel, stride, padding, dilation), _out_size(w, kernel, stride, padding, dilation)
    off = _zeros_offset(b, og, kernel, kernel, ho, wo).float()
    mask = torch.ones(b, og * kernel * kernel, ho, wo)
    got = impl(x, off, wt, bias, stride, padding, dilation, mask)
    ref = F.conv2d(x, wt, bias, stride, padding, dilation)
    assert got.shape == ref.shape
    # 1e-5 for the usual kernels; a 5x5 kernel sums 100 fp32 products of size ~10, where F.conv2d
    # itself is ~1.5e-5 off the float64 result, so two fp32 paths can differ by a few 1e-5
    tol = 1e-5 if kernel <= 3 else 1e-4
    torch.testing.assert_close(got, ref, atol=tol, rtol=tol)
    # mask=None is DCNv1: the same here
    torch.testing.assert_close(impl(x, off, wt, bias, stride, padding, dilation), ref, atol=tol, rtol=tol)
    # in float64 the only error left is rounding: exact to 1e-10 for every kernel
    got64 = impl(x.double(), off.double(), wt.double(), bias.double(), stride, padding, dilation, mask.double())
    ref64 = F.conv2d(x.double(), wt.double(), bias.double(), stride, padding, dilation)
    torch.testing.assert_close(got64, ref64, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("impl", IMPLS)
def test_integer_dx_offset_is_shifted_conv(impl):
    torch.manual_seed(1)
    x = torch.randn(1, 4, 9, 12)
    wt = torch.randn(3, 4, 3, 3)
    off = torch.zeros(1, 2 * 2 * 9, 9, 12)
    off[:, 1::2] = 1.0  # every dx = +1, both offset groups: sample at x + 1
    got = impl(x, off, wt, None, 1, 1, 1, torch.ones(1, 18, 9, 12))
    shifted = torch.zeros_like(x)
    shifted[..., :-1] = x[..., 1:]
    ref = F.conv2d(shifted, wt, None, 1, 1)
    # interior, away from the right border where the shifted image lost a column
    torch.testing.assert_close(got[..., 1:-2], ref[..., 1:-2], atol=1e-5, rtol=1e-5)
    # equivalently, output column w is the plain conv at column w + 1
    torch.testing.assert_close(got[..., :-1], F.conv2d(x, wt, None, 1, 1)[..., 1:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_integer_dy_offset_in_one_group_only(impl):
    torch.manual_seed(2)
    x = torch.randn(1, 4, 10, 8)
    wt = torch.randn(2, 4, 3, 3)
    off = torch.zeros(1, 2 * 2 * 9, 10, 8)
    off[:, 0:18:2] = -2.0  # group 0 (channels 0-1): dy = -2; group 1 untouched
    got = impl(x, off, wt, None, 1, 1, 1, None)
    shifted = x.clone()
    shifted[:, :2] = 0
    shifted[:, :2, 2:] = x[:, :2, :-2]
    ref = F.conv2d(shifted, wt, None, 1, 1)
    torch.testing.assert_close(got[:, :, 3:-1], ref[:, :, 3:-1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_half_mask_halves_output(impl):
    torch.manual_seed(3)
    x = torch.randn(2, 4, 8, 9)
    wt = torch.randn(6, 4, 3, 3)
    off = torch.randn(2, 2 * 2 * 9, 8, 9) * 1.5
    one = impl(x, off, wt, None, 1, 1, 1, torch.ones(2, 18, 8, 9))
    half = impl(x, off, wt, None, 1, 1, 1, torch.full((2, 18, 8, 9), 0.5))
    torch.testing.assert_close(half, 0.5 * one, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "stride,padding,dilation,og",
    [(1, 1, 1, 1), (2, 1, 1, 2), (1, 2, 2, 2)],
)
def test_matches_torchvision_reference_fractional(stride, padding, dilation, og):
    """Random fractional offsets, many samples falling partly / wholly outside the image."""
    torch.manual_seed(4)
    b, c, h, w, c_out, kk = 1, 4, 5, 7, 3, 3
    ho, wo = _out_size(h, kk, stride, padding, dilation), _out_size(w, kk, stride, padding, dilation)
    x = torch.randn(b, c, h, w, dtype=torch.float64)
    wt = torch.randn(c_out, c, kk, kk, dtype=torch.float64)
    bias = torch.randn(c_out, dtype=torch.float64)
    off = torch.randn(b, 2 * og * kk * kk, ho, wo, dtype=torch.float64) * 2.5
    # edge cases at output (0, 0), tap 0: y = -padding + dy exactly -1 (zero), x = -0.5 (half weight)
    off[0, 0, 0, 0] = padding - 1.0
    off[0, 1, 0, 0] = padding - 0.5
    off[0, 2, 0, 1] = 0.0  # tap 1: y exactly on an integer row
    mask = torch.rand(b, og * kk * kk, ho, wo, dtype=torch.float64)
    ref = _reference(x, off, wt, bias, stride, padding, dilation, mask)
    got = deform_conv2d_pytorch(x, off, wt, bias, stride, padding, dilation, mask)
    torch.testing.assert_close(got, ref, atol=1e-9, rtol=1e-9)
    got32 = deform_conv2d(x.float(), off.float(), wt.float(), bias.float(), stride, padding, dilation, mask.float())
    torch.testing.assert_close(got32.double(), ref, atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(not dcn.HAS_TORCHVISION, reason="torchvision not installed")
def test_pure_matches_torchvision():
    import torchvision.ops

    torch.manual_seed(5)
    x = torch.randn(2, 8, 13, 17)
    wt = torch.randn(6, 8, 3, 3)
    bias = torch.randn(6)
    off = torch.randn(2, 2 * 4 * 9, 7, 9) * 3
    mask = torch.rand(2, 4 * 9, 7, 9)
    ref = torchvision.ops.deform_conv2d(x, off, wt, bias, (2, 2), (1, 1), (1, 1), mask)
    got = deform_conv2d_pytorch(x, off, wt, bias, 2, 1, 1, mask)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("impl", IMPLS)
def test_gradients_flow(impl):
    torch.manual_seed(6)
    x = torch.randn(1, 4, 7, 9, requires_grad=True)
    wt = torch.randn(3, 4, 3, 3, requires_grad=True)
    bias = torch.randn(3, requires_grad=True)
    off = (torch.randn(1, 2 * 2 * 9, 7, 9) * 0.7).requires_grad_()
    mask = torch.rand(1, 2 * 9, 7, 9).requires_grad_()
    out = impl(x, off, wt, bias, 1, 1, 1, mask)
    (out**2).sum().backward()
    for t in (x, wt, bias, off, mask):
        assert t.grad is not None
        assert torch.isfinite(t.grad).all()
        assert t.grad.abs().sum() > 0


def test_gradcheck_pure():
    torch.manual_seed(7)
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    wt = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    # keep sampling positions away from integer coordinates, where bilinear is not differentiable
    off = (torch.rand(1, 2 * 2 * 9, 4, 5, dtype=torch.float64) * 0.6 + 0.2).requires_grad_()
    mask = torch.rand(1, 2 * 9, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, o, m, ww: deform_conv2d_pytorch(a, o, ww, None, 1, 1, 1, m),
        (x, off, mask, wt),
        fast_mode=True,
    )


@pytest.mark.parametrize("h,w", [(7, 11), (1, 1), (3, 2), (13, 5)])
def test_odd_sizes(h, w):
    torch.manual_seed(8)
    x = torch.randn(2, 6, h, w)
    wt = torch.randn(4, 6, 3, 3)
    off = torch.zeros(2, 2 * 3 * 9, h, w)
    got = deform_conv2d(x, off, wt, None, 1, 1, 1, torch.ones(2, 27, h, w))
    torch.testing.assert_close(got, F.conv2d(x, wt, None, 1, 1), atol=1e-5, rtol=1e-5)


def test_weight_groups_in_pure_path():
    torch.manual_seed(9)
    x = torch.randn(1, 8, 6, 7)
    wt = torch.randn(6, 4, 3, 3)  # groups = 2
    off = torch.zeros(1, 2 * 4 * 9, 6, 7)
    got = deform_conv2d_pytorch(x, off, wt, None, 1, 1, 1, None)
    torch.testing.assert_close(got, F.conv2d(x, wt, None, 1, 1, 1, 2), atol=1e-5, rtol=1e-5)


def test_module_zero_offset_is_conv():
    torch.manual_seed(10)
    m = ModulatedDeformConv2d(5, 7, 3, stride=2, padding=1)
    x = torch.randn(1, 5, 9, 10)
    off = torch.zeros(1, 18, 5, 5)
    got = m(x, off, torch.ones(1, 9, 5, 5))
    torch.testing.assert_close(got, F.conv2d(x, m.weight, m.bias, 2, 1), atol=1e-5, rtol=1e-5)


def test_dcnv2pack_shape_and_init():
    torch.manual_seed(11)
    pack = DCNv2Pack(8, 16, 3, padding=1, deformable_groups=2, offset_in_channels=16)
    assert pack.conv_offset.out_channels == 3 * 2 * 9
    x = torch.randn(2, 8, 13, 21)  # neighbour features
    feat = torch.randn(2, 16, 13, 21)  # e.g. cat(current, neighbour)
    out = pack(x, feat)
    assert out.shape == (2, 16, 13, 21)
    # zero-initialised predictor: offsets 0, mask sigmoid(0) = 0.5
    ref = 0.5 * F.conv2d(x, pack.weight, None, 1, 1) + pack.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    out.sum().backward()
    assert pack.conv_offset.weight.grad is not None and torch.isfinite(pack.conv_offset.weight.grad).all()
    assert pack.conv_offset.weight.grad.abs().sum() > 0


def test_dcnv2pack_eq12_default_channels():
    pack = DCNv2Pack(32, 128, 3, padding=1, offset_in_channels=64)
    assert pack.conv_offset.out_channels == 27  # C_{27,3x3,1} of Eq. 12
    out = pack(torch.randn(1, 32, 5, 7), torch.randn(1, 64, 5, 7))
    assert out.shape == (1, 128, 5, 7)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"x": torch.randn(4, 8, 8)}, "input must be"),
        ({"off": torch.zeros(1, 17, 8, 8)}, "multiple of 2"),
        ({"off": torch.zeros(1, 18, 7, 8)}, "offset spatial size"),
        ({"off": torch.zeros(2, 18, 8, 8)}, "offset batch"),
        ({"off": torch.zeros(1, 18 * 3, 8, 8)}, "not divisible by offset groups"),
        ({"mask": torch.ones(1, 18, 8, 8)}, "mask must be"),
        ({"mask": torch.ones(1, 9, 8, 7)}, "mask spatial size"),
        ({"wt": torch.randn(3, 3, 3, 3)}, "weight shape"),
        ({"bias": torch.zeros(4)}, "bias must be"),
        ({"x": torch.randn(1, 4, 1, 1), "pad": 0}, "output would be empty"),
    ],
)
def test_bad_shapes_raise_value_error(kwargs, match):
    args = {
        "x": torch.randn(1, 4, 8, 8),
        "off": torch.zeros(1, 18, 8, 8),
        "wt": torch.randn(3, 4, 3, 3),
        "bias": None,
        "pad": 1,
        "mask": None,
    }
    args.update(kwargs)
    for impl in IMPLS:
        with pytest.raises(ValueError, match=match):
            impl(args["x"], args["off"], args["wt"], args["bias"], 1, args["pad"], 1, args["mask"])


def test_dcnv2pack_bad_feat():
    pack = DCNv2Pack(4, 4)
    with pytest.raises(ValueError, match="spatial size"):
        pack(torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 9))
    with pytest.raises(ValueError, match="channels"):
        pack(torch.randn(1, 4, 8, 8), torch.randn(1, 5, 8, 8))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("h,w", [(540, 960), pytest.param(1080, 1920, marks=pytest.mark.slow)])
def test_half_precision_autocast_samples_at_fp32_positions(impl, dtype, h, w):
    """Under autocast the features and offsets arrive in fp16/bf16; the sampling positions must
    still be those of fp32 (bf16 has 8 bits of mantissa: x = 960 + 0.4 would become 960). The
    reference is fp32 on the very same (rounded) inputs, so only the output's rounding may differ."""
    g = torch.Generator().manual_seed(11)
    x = torch.rand(1, 2, h, w, generator=g).to(dtype)  # noise: a shift of a pixel changes everything
    off = ((torch.rand(1, 18, h, w, generator=g) * 6 - 3)).to(dtype)  # +-3 px
    mask = torch.rand(1, 9, h, w, generator=g).to(dtype)
    wt = torch.randn(2, 2, 3, 3, generator=g)
    ref = impl(x.float(), off.float(), wt, None, 1, 1, 1, mask.float())
    with torch.autocast("cpu", dtype=dtype):
        got = impl(x, off, wt, None, 1, 1, 1, mask)
    assert got.dtype == dtype
    err = (got.float() - ref).abs()
    scale = ref.abs().max()
    assert err.max() <= 0.02 * scale, (err.max().item(), err.mean().item(), scale.item())
