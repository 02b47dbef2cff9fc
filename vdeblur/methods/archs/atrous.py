"""Stage 1 of Brehm, Scherer, Lienhart: "High-Resolution Dual-Stage Multi-Level Feature Aggregation
for Single Image and Video Deblurring" -- the high-resolution atrous single-image network.

Source: ``/work/shared/papers/atrous-mlfa-image-video-deblur.md``.

What this module follows
------------------------
* Section 3.1 / Figure 2 (atrous residual block): four *parallel* 3x3 convolutions on the block
  input with 128 filters each and atrous (dilation) rates 1, 2, 3, 4; their outputs are concatenated
  (512 maps, twice the 256 input maps), a further 3x3 convolution reduces them to 256 maps, and the
  block input is added. Receptive field 11x11 per block (rate 4 gives 9x9, the 3x3 reduction +2).
* Section 3.1 / Figure 4 (network): a 9x9 convolution extracting low-level features, one 3x3
  convolution with stride 2 (the single down-sampling), 20 atrous blocks, a single deconvolution
  (up-sampling x2), two standard convolutions; the output is a residual image added to the blurred
  input.
* Section 3.3 "Other Details": leaky ReLU after every convolution except the output layer (linear);
  no feature normalisation -- instead a learned scale per feature map applied "right before adding
  the bias term" (``y = s * conv(x) + b``); reflection padding instead of zero padding "wherever
  possible".

Choices where the paper is silent (documented, not from the paper)
------------------------------------------------------------------
* Widths outside the blocks: the paper gives only the block widths (256 / 4 x 128). The 9x9 head,
  the deconvolution and the first tail conv use ``head_width`` = 64 channels (the stride-2 conv
  raises 64 -> 256, the deconvolution lowers 256 -> 64). With 128 instead, the paper configuration
  would count ~48.0 M instead of ~47.6 M; the blocks alone are 47.2 M either way.
* Activation in the block: leaky ReLU after each atrous branch *and* after the reduction conv,
  before the residual addition ("all convolution layers except for the output layer").
* Leaky ReLU slope 0.2 (TensorFlow's ``tf.nn.leaky_relu`` default; the paper gives none).
* Deconvolution: ``ConvTranspose2d(k=3, stride=2, padding=1, output_padding=1)`` -- exactly x2, the
  size TensorFlow's "SAME" transposed conv gives. It cannot use reflection padding.
* The learned per-channel scale and the bias are kept on every conv, the output conv included (so
  each conv has ``k*k*c_in*c_out + 2*c_out`` parameters; the conv itself is bias-free).
* "Wherever possible": reflection padding is used when the pad is smaller than the feature map
  (a PyTorch requirement); on smaller maps the layer falls back to zero padding.
* Value range: the paper normalises images to [-1, 1]; the residual formulation is range-agnostic,
  and this module takes whatever range the caller trains with (vdeblur uses [0, 1]).

Parameter count of ``ATROUS_VARIANTS["paper"]``: 47,566,598 (20 blocks: 47,216,640; head/down/up/
tail: 349,958) against the paper's "~47 M" for stage 1.

Shapes: [B, 3, H, W] -> [B, 3, H, W] for H, W divisible by ``pad_multiple`` = 2 (one stride-2
down-sampling). Callers pad; this module does not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vdeblur.methods.neural import register_net

__all__ = ["ATROUS_VARIANTS", "AtrousBlock", "AtrousNet", "ScaledConv", "ScaledDeconv"]

#: Variants as data. "paper": Section 3.1 widths (256 / 4 x 128, 20 blocks); "small": CPU-sized.
ATROUS_VARIANTS: dict[str, dict] = {
    "paper": {"width": 256, "blocks": 20, "branch_width": 128, "head_width": 64},
    "small": {"width": 32, "blocks": 4, "branch_width": 16, "head_width": 16},
}

#: Leaky ReLU negative slope (not given in the paper; TensorFlow's default).
NEGATIVE_SLOPE = 0.2


class ScaledConv(nn.Module):
    """Reflection-padded conv, learned per-map scale, bias, optional leaky ReLU (Section 3.3).

    ``y = act(scale * conv(pad(x)) + bias)``; "same" size for stride 1, ``ceil(n / stride)`` else.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        act: bool = True,
    ):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.pad = dilation * (kernel_size // 2)
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride=stride, dilation=dilation, bias=False)
        self.scale = nn.Parameter(torch.ones(c_out))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.act = act

    def forward(self, x: torch.Tensor, padded: int = 0) -> torch.Tensor:
        """``padded``: ``x`` is already reflection-padded by that many pixels (at least
        ``self.pad``, stride 1): the border the conv computes beyond ``self.pad`` is cropped off,
        so several branches share one padded copy of their input (:class:`AtrousBlock`)."""
        if padded:
            if padded < self.pad or self.conv.stride != (1, 1):
                raise ValueError(f"padded={padded} needs stride 1 and at least pad={self.pad}")
        elif self.pad:
            p = self.pad
            mode = "reflect" if p < min(x.shape[-2:]) else "constant"
            x = F.pad(x, (p, p, p, p), mode=mode)
        # scale * conv(x) + bias as one conv: the scale folded into the filters (a tiny tensor),
        # the bias into the conv; then the activation in place (two passes over y fewer)
        c = self.conv
        y = F.conv2d(x, c.weight * self.scale.view(-1, 1, 1, 1), self.bias, c.stride, 0, c.dilation)
        e = padded - self.pad if padded else 0
        if e:  # the reflection of a wider pad cropped to this conv's: the same input it would pad
            y = y[..., e:y.shape[-2] - e, e:y.shape[-1] - e]
        return F.leaky_relu(y, NEGATIVE_SLOPE, inplace=True) if self.act else y


class ScaledDeconv(nn.Module):
    """x2 deconvolution (3x3, stride 2, exact doubling) with per-map scale, bias, leaky ReLU."""

    def __init__(self, c_in: int, c_out: int, act: bool = True):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(
            c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=False
        )
        self.scale = nn.Parameter(torch.ones(c_out))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.deconv  # weight [c_in, c_out, 3, 3]: the scale folded in per output map
        y = F.conv_transpose2d(x, d.weight * self.scale.view(1, -1, 1, 1), self.bias, d.stride,
                               d.padding, d.output_padding)
        return F.leaky_relu(y, NEGATIVE_SLOPE, inplace=True) if self.act else y


class AtrousBlock(nn.Module):
    """Figure 2: ``x + reduce(cat_r branch_r(x))`` with parallel 3x3 branches at ``rates``.

    Paper: width 256, four branches of 128 filters at rates (1, 2, 3, 4), reduction 512 -> 256.
    """

    def __init__(
        self, width: int = 256, branch_width: int | None = None, rates: tuple[int, ...] = (1, 2, 3, 4)
    ):
        super().__init__()
        branch_width = width // 2 if branch_width is None else branch_width
        if width < 1 or branch_width < 1 or not rates:
            raise ValueError("width, branch_width must be >= 1 and rates non-empty")
        self.rates = tuple(rates)
        self.branches = nn.ModuleList(ScaledConv(width, branch_width, 3, dilation=r) for r in rates)
        self.reduce = ScaledConv(branch_width * len(rates), width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one reflection pad of the widest rate for all branches (its inner pixels are each
        # narrower rate's own reflection pad), not one copy of x per branch
        p = max(b.pad for b in self.branches)
        if p and p < min(x.shape[-2:]):
            xp = F.pad(x, (p, p, p, p), mode="reflect")
            ys = [b(xp, padded=p) for b in self.branches]
        else:
            ys = [b(x) for b in self.branches]
        return x + self.reduce(torch.cat(ys, dim=1))


class AtrousNet(nn.Module):
    """Figure 4 stage-1 network: 9x9 head, stride-2 conv, ``blocks`` atrous blocks, deconv x2,
    conv, linear output conv; ``forward(x) = x + residual(x)``.

    [B, 3, H, W] -> [B, 3, H, W] for H, W divisible by :attr:`pad_multiple` (= 2).
    Defaults are a small CPU-sized net (width 32); ``ATROUS_VARIANTS["paper"]`` is Section 3.1.
    ``branch_width`` defaults to ``width // 2`` and ``head_width`` to ``width // 4`` (64 for 256).
    """

    pad_multiple = 2

    def __init__(
        self,
        width: int = 32,
        blocks: int = 20,
        branch_width: int | None = None,
        head_width: int | None = None,
        rates: tuple[int, ...] = (1, 2, 3, 4),
        head_kernel: int = 9,
    ):
        super().__init__()
        if blocks < 0:
            raise ValueError(f"blocks must be >= 0, got {blocks}")
        head_width = max(width // 4, 1) if head_width is None else head_width
        self.head = nn.Sequential(
            ScaledConv(3, head_width, head_kernel),  # low-level features, 9x9
            ScaledConv(head_width, width, 3, stride=2),  # the single down-sampling
        )
        self.blocks = nn.Sequential(*(AtrousBlock(width, branch_width, rates) for _ in range(blocks)))
        self.tail = nn.Sequential(
            ScaledDeconv(width, head_width),  # the single up-sampling
            ScaledConv(head_width, head_width, 3),
            ScaledConv(head_width, 3, 3, act=False),  # linear output layer
        )

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.blocks(self.head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"AtrousNet expects [B, 3, H, W], got {list(x.shape)}")
        if x.shape[-2] % self.pad_multiple or x.shape[-1] % self.pad_multiple:
            raise ValueError(
                f"AtrousNet needs H, W divisible by {self.pad_multiple}, got {list(x.shape[-2:])}"
            )
        return x + self.residual(x)


register_net("atrous", build=AtrousNet, variants=ATROUS_VARIANTS, default="small",
             doc="Atrous residual network, stage 1 (Brehm et al., Dual-Stage Multi-Level Feature Aggregation, 3)")
