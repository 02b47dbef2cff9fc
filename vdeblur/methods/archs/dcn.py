"""Modulated deformable convolution (DCNv2) for feature-level frame alignment.

R2-D4 (Section IV-B1, Eq. 12-13) aligns the features of a past frame with those of the current
frame by a modulated deformable layer made of two convolutions:

    DC = C^D_{c, k x k, 1} o C_{3k^2, k x k, 1}                                   (Eq. 12)
    f_a^{t-N} = DC(f^t, f^{t-N})                                                  (Eq. 13)

The first, ordinary convolution estimates, from the concatenated frame features, ``2k^2`` offsets
and ``k^2`` modulation scalars per location (27 channels for a 3x3 kernel); the second, the actual
deformable convolution, samples the features to align at the displaced taps ``p + p_k + dp_k``,
scales each sample by its modulation scalar ``m_k`` in [0, 1], and applies the filter weights:

    y(p) = sum_k w_k * x(p + p_k + dp_k) * m_k

:func:`deform_conv2d` has exactly the semantics and tensor layouts of
``torchvision.ops.deform_conv2d`` and delegates to it when ``torchvision.ops`` can be imported;
otherwise :func:`deform_conv2d_pytorch`, a pure-PyTorch version built on a single
``F.grid_sample`` call over all taps, is used. :class:`ModulatedDeformConv2d` holds the filter
weights (offsets and mask are inputs), :class:`DCNv2Pack` adds the offset/mask predictor of Eq. 12.

Layouts (``K = kh * kw``, ``G`` offset groups, tap ``k = i * kw + j``):
    input  [B, C_in, H, W]
    offset [B, 2 * G * K, H_out, W_out]: for group g and tap k, channel ``g*2K + 2k`` is dy and
           ``g*2K + 2k + 1`` is dx
    mask   [B, G * K, H_out, W_out]: channel ``g*K + k``
    weight [C_out, C_in / groups, kh, kw]
Input channel c belongs to offset group ``c // (C_in / G)``. Samples are bilinear, zero outside the
image (a sample at y <= -1 or y >= H, or x <= -1 or x >= W is 0).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

try:  # torchvision is optional: use its (C++/CUDA) kernel when it is there
    import torchvision.ops as _tv_ops
except Exception:  # noqa: BLE001 -- ImportError, or a torch/torchvision mismatch at import
    _tv_ops = None

__all__ = [
    "HAS_TORCHVISION",
    "DCNv2Pack",
    "ModulatedDeformConv2d",
    "deform_conv2d",
    "deform_conv2d_pytorch",
]

HAS_TORCHVISION = _tv_ops is not None


def _pair(v, name: str) -> tuple[int, int]:
    if isinstance(v, int):
        t = (v, v)
    else:
        t = tuple(v)
        if len(t) != 2 or not all(isinstance(a, int) for a in t):
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return t  # type: ignore[return-value]


def _check(input, offset, weight, bias, stride, padding, dilation, mask):
    """Validate shapes; return (stride, padding, dilation, groups, offset_groups, (Ho, Wo))."""
    stride = _pair(stride, "stride")
    padding = _pair(padding, "padding")
    dilation = _pair(dilation, "dilation")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ValueError(
            f"stride and dilation must be >= 1 and padding >= 0, got stride={stride}, "
            f"padding={padding}, dilation={dilation}"
        )
    if input.dim() != 4:
        raise ValueError(f"input must be [B, C, H, W], got shape {tuple(input.shape)}")
    if weight.dim() != 4:
        raise ValueError(f"weight must be [C_out, C_in/groups, kh, kw], got shape {tuple(weight.shape)}")
    if offset.dim() != 4:
        raise ValueError(f"offset must be [B, 2*G*kh*kw, H_out, W_out], got shape {tuple(offset.shape)}")
    b, c_in, h, w = input.shape
    c_out, c_per_group, kh, kw = weight.shape
    if c_per_group < 1 or kh < 1 or kw < 1 or c_in % c_per_group:
        raise ValueError(
            f"weight shape {tuple(weight.shape)} does not fit {c_in} input channels "
            "(C_in must be a multiple of weight.shape[1])"
        )
    groups = c_in // c_per_group
    if c_out % groups:
        raise ValueError(f"weight's {c_out} output channels are not divisible by groups={groups}")
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if ho < 1 or wo < 1:
        raise ValueError(
            f"output would be empty ({ho}x{wo}) for input {h}x{w}, kernel {kh}x{kw}, "
            f"padding={padding}, dilation={dilation}, stride={stride}"
        )
    k = kh * kw
    if offset.shape[0] != b:
        raise ValueError(f"offset batch {offset.shape[0]} != input batch {b}")
    if offset.shape[1] == 0 or offset.shape[1] % (2 * k):
        raise ValueError(
            f"offset has {offset.shape[1]} channels, expected a positive multiple of 2*kh*kw = {2 * k}"
        )
    offset_groups = offset.shape[1] // (2 * k)
    if c_in % offset_groups:
        raise ValueError(f"input channels {c_in} are not divisible by offset groups {offset_groups}")
    if tuple(offset.shape[2:]) != (ho, wo):
        raise ValueError(f"offset spatial size {tuple(offset.shape[2:])} != output size {(ho, wo)}")
    if mask is not None:
        if mask.dim() != 4 or mask.shape[0] != b or mask.shape[1] != offset_groups * k:
            raise ValueError(
                f"mask must be [B={b}, G*kh*kw={offset_groups * k}, {ho}, {wo}], got {tuple(mask.shape)}"
            )
        if tuple(mask.shape[2:]) != (ho, wo):
            raise ValueError(f"mask spatial size {tuple(mask.shape[2:])} != output size {(ho, wo)}")
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != c_out):
        raise ValueError(f"bias must be [{c_out}], got shape {tuple(bias.shape)}")
    return stride, padding, dilation, groups, offset_groups, (ho, wo)


def _needs_grad(*ts) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in ts)


def deform_conv2d_pytorch(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pure-PyTorch modulated deformable convolution, same semantics as torchvision's.

    All ``K`` taps of all offset groups are sampled with one ``F.grid_sample`` call (bilinear,
    zeros padding, ``align_corners=False`` with the pixel coordinates normalised so that integer
    positions hit pixel centres), then contracted with the weight by one batched matmul. The
    positions are built, and the features sampled, in fp32 even under autocast or for fp16/bf16
    inputs (fp64 inputs stay fp64); the output has the input's dtype.
    """
    (sh, sw), (ph, pw), (dh, dw), groups, og, (ho, wo) = _check(
        input, offset, weight, bias, stride, padding, dilation, mask
    )
    # Sampling positions are built and sampled in fp32 (fp64 stays fp64): in fp16 a position near
    # x = 960 is off by up to 0.3 px and in bf16 by up to 4 px, so under autocast the features
    # would be aligned to the wrong place with no error. Autocast is switched off for the whole
    # op, as torchvision's autocast wrapper does; the result has the input's dtype.
    out_dtype = input.dtype
    cdtype = torch.float64 if input.dtype == torch.float64 else torch.float32
    with torch.autocast(input.device.type, enabled=False):
        out = _deform_conv2d_exact(
            input.to(cdtype), offset.to(cdtype), weight.to(cdtype),
            None if bias is None else bias.to(cdtype),
            (sh, sw), (ph, pw), (dh, dw), groups, og, (ho, wo),
            None if mask is None else mask.to(cdtype),
        )
    return out.to(out_dtype)


def _deform_conv2d_exact(input, offset, weight, bias, stride, padding, dilation, groups, og, out_size, mask):
    (sh, sw), (ph, pw), (dh, dw), (ho, wo) = stride, padding, dilation, out_size
    b, c_in, h, w = input.shape
    c_out, _, kh, kw = weight.shape
    k = kh * kw
    cg = c_in // og
    dtype, device = input.dtype, input.device

    # Regular sampling grid p + p_k in grid_sample's normalised coordinates; with
    # align_corners=False pixel position x maps to (2x + 1) / W - 1, i.e. x * (2/W) + (1/W - 1).
    # Python scalars only: no host-to-device copy in the forward.
    sx, sy = 2.0 / w, 2.0 / h
    xs = torch.arange(wo, device=device, dtype=dtype) * sw - pw
    ys = torch.arange(ho, device=device, dtype=dtype) * sh - ph
    kx = (torch.arange(kw, device=device, dtype=dtype) * dw).repeat(kh)  # [K], tap k = i*kw + j
    ky = (torch.arange(kh, device=device, dtype=dtype) * dh).repeat_interleave(kw)  # [K]
    base_x = ((kx[:, None] + xs[None, :]) * sx + (0.5 * sx - 1.0))[:, None, :]  # [K, 1, Wo]
    base_y = ((ky[:, None] + ys[None, :]) * sy + (0.5 * sy - 1.0))[:, :, None]  # [K, Ho, 1]

    off = offset.reshape(b, og, k, 2, ho, wo)  # (dy, dx) pairs
    gx = torch.add(base_x, off[:, :, :, 1], alpha=sx)  # [B, G, K, Ho, Wo]
    gy = torch.add(base_y, off[:, :, :, 0], alpha=sy)
    grid = torch.stack((gx, gy), dim=-1).view(b * og, k * ho, wo, 2)

    x = input.reshape(b * og, cg, h, w)
    cols = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    cols = cols.view(b, og, cg, k, ho * wo)
    if mask is not None:
        m = mask.reshape(b, og, 1, k, ho * wo)
        # in place (saves a copy of the largest tensor) unless autograd needs cols for m's gradient
        cols = cols * m if _needs_grad(m) else cols.mul_(m)
    # [B, C_in, K, L] -> [B, groups, (C_in/groups)*K, L]; weight -> [groups, C_out/groups, (C_in/groups)*K]
    cols = cols.reshape(b, groups, (c_in // groups) * k, ho * wo)
    wmat = weight.reshape(groups, c_out // groups, (c_in // groups) * k)
    out = torch.matmul(wmat.unsqueeze(0), cols)  # [B, groups, C_out/groups, L]
    if bias is not None:
        out.add_(bias.reshape(1, groups, c_out // groups, 1))  # autograd-safe: matmul keeps no output
    return out.reshape(b, c_out, ho, wo)


def deform_conv2d(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Modulated deformable convolution (DCNv2), the ``C^D`` of R2-D4 Eq. 12.

    Same signature, semantics and layouts as ``torchvision.ops.deform_conv2d`` (see the module
    docstring); ``mask=None`` gives DCNv1. Raises ``ValueError`` on inconsistent shapes. Uses
    torchvision's kernel when ``torchvision.ops`` imports, else :func:`deform_conv2d_pytorch`.
    """
    st, pa, di, *_ = _check(input, offset, weight, bias, stride, padding, dilation, mask)
    if _tv_ops is None:
        return deform_conv2d_pytorch(input, offset, weight, bias, st, pa, di, mask)
    # positions in fp32 whatever the autocast or input dtype (see deform_conv2d_pytorch)
    cdtype = torch.float64 if input.dtype == torch.float64 else torch.float32
    with torch.autocast(input.device.type, enabled=False):
        out = _tv_ops.deform_conv2d(
            input.to(cdtype), offset.to(cdtype), weight.to(cdtype),
            bias=None if bias is None else bias.to(cdtype), stride=st, padding=pa, dilation=di,
            mask=None if mask is None else mask.to(cdtype),
        )
    return out.to(input.dtype)


class ModulatedDeformConv2d(nn.Module):
    """Deformable convolution layer holding weight and bias; offsets and mask are inputs.

    ``forward(x, offset, mask=None)``: ``offset`` [B, 2*G*kh*kw, Ho, Wo], ``mask`` [B, G*kh*kw, Ho, Wo]
    (the number of offset groups G is read from ``offset``). Initialised like ``nn.Conv2d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=3,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels={in_channels} and out_channels={out_channels} must be divisible by groups={groups}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return deform_conv2d(
            x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}, bias={self.bias is not None}"
        )


class DCNv2Pack(ModulatedDeformConv2d):
    """Modulated deformable conv with its own offset/mask predictor (R2-D4 Eq. 12-13).

    ``forward(x, feat)``: ``conv_offset`` (a ``k x k`` conv with the same stride, padding and
    dilation, ``3 * G * k^2`` outputs -- 27 for one group and a 3x3 kernel, as in Eq. 12) maps
    ``feat`` (e.g. the concatenated current/neighbour features of Eq. 13) to ``2 G k^2`` offsets
    (first channels, in torchvision's (dy, dx) layout) and ``G k^2`` mask logits (last channels,
    passed through a sigmoid); then ``x`` (the neighbour features) is deformably convolved.
    ``feat`` must have ``x``'s spatial size. ``conv_offset`` starts at zero: offsets 0, mask 0.5.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=3,
        stride=1,
        padding=1,
        dilation=1,
        deformable_groups: int = 1,
        offset_in_channels: int | None = None,
        groups: int = 1,
        bias: bool = True,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        if deformable_groups < 1 or in_channels % deformable_groups:
            raise ValueError(
                f"in_channels={in_channels} must be divisible by deformable_groups={deformable_groups}"
            )
        self.deformable_groups = deformable_groups
        self.offset_in_channels = in_channels if offset_in_channels is None else offset_in_channels
        k = self.kernel_size[0] * self.kernel_size[1]
        self.conv_offset = nn.Conv2d(
            self.offset_in_channels,
            3 * deformable_groups * k,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            bias=True,
        )
        self.init_offset()

    def init_offset(self) -> None:
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if x.dim() != 4 or feat.dim() != 4:
            raise ValueError(f"x and feat must be [B, C, H, W], got {tuple(x.shape)} and {tuple(feat.shape)}")
        if feat.shape[0] != x.shape[0] or feat.shape[2:] != x.shape[2:]:
            raise ValueError(
                f"feat {tuple(feat.shape)} must match x {tuple(x.shape)} in batch and spatial size"
            )
        if feat.shape[1] != self.offset_in_channels:
            raise ValueError(f"feat has {feat.shape[1]} channels, expected {self.offset_in_channels}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x has {x.shape[1]} channels, expected {self.in_channels}")
        out = self.conv_offset(feat)
        n_off = 2 * self.deformable_groups * self.kernel_size[0] * self.kernel_size[1]
        offset, mask = out[:, :n_off], torch.sigmoid(out[:, n_off:])
        return super().forward(x, offset, mask)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", deformable_groups={self.deformable_groups}"
