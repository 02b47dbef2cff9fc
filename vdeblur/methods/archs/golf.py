"""Golf Optimizer networks (Luo, Chen, Qian: "A Deep Optimization Approach for Image Deconvolution").

Source: ``/work/shared/papers/golf-optimizer-deconvolution.md``.

What this module follows
------------------------
* Section 3 / Figure 3: two networks, ``x_0 = F(y)`` (one "aggressive" step from the blurry input)
  and ``x_i = G(x_{i-1})`` for ``i = 1..N`` with one shared ``G`` (delicate corrections).
* Section 4.2, Eq. 11: ``G(x) = x + r(x)`` -- a single identity shortcut from the current estimate
  to the next one (the residual ``r`` is the learned negative gradient of the prior, Eq. 3/9).
  Section 5.1 says F and G have *identical* architecture with different widths, so F carries the
  same global shortcut (``F(y) = y + r_F(y)``, the "vanilla residual CNN" of Section 3.3).
* Section 5.1 / Figure 6 / Table 1: first Conv(3->f), four "Layers" of two Basic-Blocks (BB) each --
  three BB(f->f) pairs and one BB(f->3) pair -- then a last Conv(3->3); stride 1 everywhere; f = 32
  for F and f = 16 for G; 50 basic layers (1 + 8 x 6 + 1); parameters F = 466,348, G = 120,188.
* Section 6.1: G is applied N = 3 times at test time (N = 5 during training).

Blind, single-frame use in vdeblur
----------------------------------
The paper is already blind: neither network sees a kernel, and G's only input is the current
estimate ``x_{i-1}`` (no data-term gradient -- the data term is handled once, implicitly, by F;
Section 3.3 explains why the paper deliberately drops the ``x - alpha * grad data(x)`` step of Eq. 5
for blind deblurring). So :class:`Golf` maps ``[B, 3, H, W]`` RGB in [0, 1] straight to
``[B, 3, H, W]``: ``F`` on the blurred frame, then ``G`` ``iterations`` times on its own output.
No adaptation of the formulation is needed and every Table 1 layer shape is kept.

Reading of Table 1 (Figure 6 itself is not in the text; these choices reproduce both counts
exactly, and every convolution is bias-free because Conv(3->32, 7x7) = 4,704 = 3*32*49 exactly):

* first conv: 7x7, 3 -> f                                            F 4,704   G 2,352
* BB(c_in -> c_out): pre-activation residual unit (He et al., "identity mappings") of six basic
  layers ``IN(c_in) - ReLU - Conv7x7(c_in->c_out) - IN(c_out) - ReLU - Conv5x5(c_out->c_out)``
  (InstanceNorm with affine weights), identity shortcut; 74 f^2 + 4 f per BB(f->f)
                                                        F 75,904 x 2   G 19,008 x 2 per pair
* "BB(f->3) x 2" = BB(f->3) then BB(3->3). The first changes width, so its shortcut is a
  projection ``Conv1x1(f->3) + IN(3)`` (as torchvision's ResNet downsample: conv1x1 + norm);
  the paper's 50-layer count does not count shortcut layers.          F 5,779       G 3,347
* last conv: 3 -> 3 with a 7x7 kernel: Table 1 gives 441 = 3*3*7*7 (the Figure 6 caption's "7 and
  3" for the first/last layers would give 81 for a 3x3 kernel, which does not match the table).

The count of the BB(f->3) pair is the one inferred part: 152 f + 915 parameters -- 147 f + 891 for
the four convolutions, 2 f for IN(f) before the first conv of the pre-activation unit, and 3 f + 6
for the projection shortcut, plus 3 x IN(3) = 18 (5 f + 24 on top of the convs in all).
Convolutions use zero padding ``k // 2`` and stride 1, so any H x W (odd included) round-trips.
"""

from __future__ import annotations

import torch
from torch import nn

from vdeblur.methods.neural import register_net

__all__ = ["GOLF_VARIANTS", "BasicBlock", "Golf", "GolfNet"]

#: Variants as data. "paper" is Section 5.1 (f = 32 / 16) with the Section 6.1 test-time N = 3.
GOLF_VARIANTS: dict[str, dict[str, int]] = {
    "paper": {"f_width": 32, "g_width": 16, "iterations": 3},
    "small": {"f_width": 16, "g_width": 8, "iterations": 2},
}


def _conv(c_in: int, c_out: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride=1, padding=k // 2, bias=False)


def _norm(c: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(c, affine=True)


class BasicBlock(nn.Module):
    """Table 1's BB(c_in -> c_out): IN-ReLU-Conv7-IN-ReLU-Conv5 plus a shortcut.

    The shortcut is the identity when ``c_in == c_out``, else ``Conv1x1(c_in->c_out) + IN(c_out)``.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.residual = nn.Sequential(
            _norm(c_in),
            nn.ReLU(inplace=False),
            _conv(c_in, c_out, 7),
            _norm(c_out),
            nn.ReLU(inplace=True),
            _conv(c_out, c_out, 5),
        )
        self.shortcut = (
            nn.Identity() if c_in == c_out else nn.Sequential(_conv(c_in, c_out, 1), _norm(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the layers of ``residual`` run by hand: each IN + ReLU pair is one pass (same maths)
        norm1, _, conv1, norm2, _, conv2 = self.residual
        r = conv2(_instance_norm(norm2, conv1(_instance_norm(norm1, x, relu=True)), relu=True))
        if isinstance(self.shortcut, nn.Identity):
            return r.add_(x)
        conv, norm = self.shortcut
        return r.add_(_instance_norm(norm, conv(x)))


def _instance_norm(norm: nn.InstanceNorm2d, x: torch.Tensor, relu: bool = False) -> torch.Tensor:
    """``norm(x)`` (affine InstanceNorm, no running stats), then ReLU if asked, in x's memory layout.

    ``nn.InstanceNorm2d`` runs batch norm on a [1, B*C, H, W] view: on a channels_last tensor it
    first copies the whole tensor to NCHW and back (half of Golf's CPU time went there). Here the
    per-sample, per-channel mean and variance are one reduction, and the affine map plus the ReLU
    one more pass that keeps the layout. Same statistics (biased variance, ``norm.eps``).
    """
    b, c, h, w = x.shape
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        var, mean = torch.var_mean(x.permute(0, 2, 3, 1).reshape(b, h * w, c), dim=1, correction=0)
        var, mean = var.view(b, c, 1, 1), mean.view(b, c, 1, 1)
    else:
        var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    scale = torch.rsqrt(var.float() + norm.eps) * norm.weight.view(1, c, 1, 1)
    shift = norm.bias.view(1, c, 1, 1) - mean.float() * scale
    y = torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))
    return y.clamp_min_(0) if relu else y


class GolfNet(nn.Module):
    """The residual CNN of Figure 6 / Table 1 (network F with width 32, network G with width 16).

    ``forward(x) = x + body(x)`` (Eq. 11's ``G(x) = x + r(x)``); body = Conv7(3->f), 3 x [BB(f->f)
    x 2], BB(f->3), BB(3->3), Conv7(3->3). [B, 3, H, W] -> [B, 3, H, W] for any H, W.
    """

    def __init__(self, width: int):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.width = width
        blocks: list[nn.Module] = []
        for _ in range(3):  # Layers 1-3: BB(f->f) x 2 each
            blocks += [BasicBlock(width, width), BasicBlock(width, width)]
        blocks += [BasicBlock(width, 3), BasicBlock(3, 3)]  # Layer 4: BB(f->3) x 2
        self.head = _conv(3, width, 7)
        self.blocks = nn.Sequential(*blocks)
        self.tail = _conv(3, 3, 7)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """r(x): the learned step (negative prior gradient up to scale, Eq. 9 and 11)."""
        return self.tail(self.blocks(self.head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)


class Golf(nn.Module):
    """Golf Optimizer: ``x_0 = F(y)``, then ``x_i = G(x_{i-1})`` for ``i = 1..iterations``.

    Blind single-frame restoration: ``y`` is a blurred RGB frame [B, 3, H, W] in [0, 1]; the output
    is ``x_N`` with the same shape (not clamped). ``return_intermediates=True`` returns the list
    ``[x_0, x_1, ..., x_N]`` instead, as the training objectives (Eq. 4 and 6) need.
    """

    def __init__(self, f_width: int = 32, g_width: int = 16, iterations: int = 3):
        super().__init__()
        if iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {iterations}")
        self.iterations = iterations
        self.f = GolfNet(f_width)
        self.g = GolfNet(g_width)

    def forward(
        self, y: torch.Tensor, return_intermediates: bool = False
    ) -> torch.Tensor | list[torch.Tensor]:
        if y.dim() != 4 or y.shape[1] != 3:
            raise ValueError(f"Golf expects [B, 3, H, W], got {list(y.shape)}")
        x = self.f(y)
        outs = [x]
        for _ in range(self.iterations):
            x = self.g(x)
            outs.append(x)
        return outs if return_intermediates else x


register_net("golf", build=Golf, variants=GOLF_VARIANTS, default="small",
             doc="Golf Optimizer: F then G applied recurrently (Luo et al., A Deep Optimization Approach for Image Deconvolution, 3-5)")
