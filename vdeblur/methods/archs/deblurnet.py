"""DeblurNet networks (Nahli, Cao, Jia, Ma, Xu: "Dataset and Network Structure: Towards Frames
Selection for Fast Video Deblurring", IEEE Access 2021).

Source: ``/work/shared/papers/deblurnet-frame-selection.md``.

Two independent single-frame networks: the generator of the Frame Deblurring Module (Section III-A,
Table 1) -> :class:`DeblurNetFDM`, and the blurred/sharp classifier of the Frame Selection Module
(Section III-B, Table 3) -> :class:`DeblurNetFSM`. The paper's WGAN-GP critic (Table 2) is a
training-only part and is not implemented here. The paper states no parameter totals; the counts
below are our own layer-by-layer computation (asserted in ``tests/test_arch_deblurnet.py``).

Frame Deblurring Module generator (III-A, Table 1)
--------------------------------------------------
Table 1, followed layer by layer (``w`` = width 64, ``h`` = head width 16):

* L1  Conv7x7(3->h) + ReLU.
* L2  Conv5x5(h->w) + ReLU; its output skips to L4 (identity of ResBlock 1) and to L36.
* L3-L32: 15 ResBlocks ``x + IN(Conv3x3(Dropout(ReLU(IN(Conv3x3(x))))))`` -- the "skip connection"
  column (L4->L6, L6->L8, ...) is the chain of ResBlock identities; L(x) has "BN + ReLU", L(x+1)
  "BN" and no activation after the sum.
* L33 Conv3x3 + IN + ReLU, L34 Conv3x3 + IN: the pair "without skip connection".
* L35 Conv1x1 + ReLU, L36 Conv1x1 + ReLU; L2's and L32's outputs are added to L36's output.
* L37 the output projection to the residual ``I_r``; ``I_c = I_b + I_r`` (the "ResInOut" shortcut).

Ambiguities and what we chose:

* **Norm.** Table 1 says BN, the text says each ResBlock is conv + *instance* normalization + ReLU,
  and Section IV-D says IN is applied at inference (the pix2pix practice). We use
  ``InstanceNorm2d(affine=True)`` (the TF ``instance_norm`` default has scale and offset) on every
  "BN" of Table 1; ``norm="batch"`` gives the literal table.
* **Dropout.** III-A: p = 0.5 "after the first convolution layer in each ResBlock"; we put it after
  that layer's norm + ReLU (conv-norm-relu-dropout, as pix2pix's ResNet block). IV-D keeps dropout
  active at inference; a restoration CLI must be deterministic (tiling, reproducibility), so dropout
  follows ``module.train()/eval()`` by default and ``mc_dropout=True`` restores the paper's
  behaviour (dropout also active in eval mode).
* **Down/up-sampling.** The text speaks of "two strided convolution blocks with stride 1/2" and "two
  transposed convolution blocks" (Johnson et al. style), but Table 1 lists neither and its skips
  forbid a resolution change anywhere between L2 and L36: L2 -> L36 and L32 -> L36 must add tensors
  of equal shape, so L33/L34 (which L32's skip crosses) cannot be transposed convolutions. We read
  "stride 1/2" as *L1 stride 1, L2 stride 2* -- L2..L36 then run at half resolution -- and the
  single up-sampling ("transposed convolution") is L37, a ``ConvTranspose2d(w->3, kernel=2,
  stride=2)``. That is exactly a 1x1 conv to ``3*2*2`` channels followed by a pixel shuffle, i.e.
  Table 1's 1x1 kernel applied per half-resolution pixel. L37's "64 output channels" cannot be
  literal because ResInOut adds L37 to the 3-channel input. Cross-check with Table 6: this reading
  costs 305,904 MACs per output pixel, 563.8 GFLOPs (2 per MAC) at 720x1280 / 571.7 at 730x1280,
  against the paper's 527.64 G; no down-sampling would give ~2,240 G and a x4 down-sampling (both
  L1, L2 strided) ~150 G. ``stride=1`` gives a full-resolution network (L37 a plain 1x1 conv).
* Convolutions carry biases (TF default), use zero padding ``k // 2``; the output is not clamped.

Parameters (paper variant, w = 64, h = 16, 15 blocks, affine IN): L1 2,368; L2 25,664; ResBlock
74,112 (x 15 = 1,111,680); L33+L34 74,112; L35+L36 8,320; L37 771; total **1,222,915**.
Input H and W must be multiples of :attr:`DeblurNetFDM.pad_multiple` (= stride); pad beforehand.

Frame Selection Module (III-B, Table 3)
---------------------------------------
Table 3 columns: layers 1-2 conv5x5/64, 3-6 conv3x3/128, 7-9 conv3x3/512, 10-11 "AP"/4096,
12-13 FC/2 with sigmoid. The text: input conv + LeakyReLU; four stride-2 ("stride 1/2") conv blocks
of conv + IN + LeakyReLU; every conv except the first and last followed by IN + LeakyReLU(0.3);
global average pooling and a fully connected net before the output sigmoid. Our reading:

* L1 Conv5x5(3->64) + LeakyReLU(0.3); L2..L8 Conv + IN + LeakyReLU(0.3); L9 Conv3x3(512->512) with
  neither norm nor activation (text: "except the last"). Text over table for the activation (the
  table's "ReLU"/"BN" row is the same generic row as Table 1's) and for IN.
* Which four convs are strided is not stated; we stride L2, L4, L6 and L8 (every other block
  conv, x16 in all, the last conv unstrided).
* L10 global average pooling (``AdaptiveAvgPool2d(1)``: the classifier accepts any H x W; the
  paper classifies whole 730x1280 frames, so no fixed crop is assumed); L11 FC(512->4096) + ReLU
  (the 4096 of column "10-11" can only be produced by a weighted layer); L12 FC(4096->2); L13 the
  sigmoid. The 2 outputs are (sharp, blurred) scores; :meth:`DeblurNetFSM.forward` returns their
  difference ``z_blurred - z_sharp``, the log-odds of the 2-way softmax, as logits [B]
  (positive = blurred; ``torch.sigmoid`` of it is P(blurred)). No norm on the FC layers.
* Any H x W >= 1 works in eval mode; in train mode InstanceNorm needs more than one pixel after the
  x16 down-sampling (e.g. H or W >= 17).

Parameters (paper variant): convs + IN 5,937,088; FC 2,109,442; total **8,046,530**. This contradicts
the paper's claim (III-C and Section IV's FSM results) that the FSM has fewer parameters than the FDM: any reading of
Table 3 with 512-channel 3x3 convolutions cannot be smaller (one 512->512 3x3 conv alone is
2,359,808 > the whole 1.22 M generator). We keep Table 3 as printed rather than shrink it.
"""

from __future__ import annotations

import torch
from torch import nn

from vdeblur.methods.neural import register_net

__all__ = [
    "DEBLURNET_VARIANTS",
    "FSM_VARIANTS",
    "DeblurNetFDM",
    "DeblurNetFSM",
    "ResBlock",
]

#: Frame Deblurring Module generator variants. "paper" is Table 1 with the reading documented above.
DEBLURNET_VARIANTS: dict[str, dict] = {
    "paper": {
        "width": 64,
        "head_width": 16,
        "num_blocks": 15,
        "stride": 2,
        "dropout": 0.5,
    },
    "small": {
        "width": 16,
        "head_width": 8,
        "num_blocks": 2,
        "stride": 2,
        "dropout": 0.5,
    },
}

#: Frame Selection Module variants. "paper" is Table 3 with the reading documented above.
FSM_VARIANTS: dict[str, dict] = {
    "paper": {
        "widths": (64, 128, 512),
        "depths": (2, 4, 3),
        "kernels": (5, 3, 3),
        "strided": (2, 4, 6, 8),
        "fc_hidden": 4096,
        "negative_slope": 0.3,
    },
    "small": {
        "widths": (8, 16, 32),
        "depths": (2, 4, 3),
        "kernels": (5, 3, 3),
        "strided": (2, 4, 6, 8),
        "fc_hidden": 64,
        "negative_slope": 0.3,
    },
}


def _conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=True)


def _norm(kind: str, c: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(c, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(c)
    raise ValueError(f"norm must be 'instance' or 'batch', got {kind!r}")


class _Dropout(nn.Dropout):
    """Dropout that optionally stays active in eval mode (Section IV-D: dropout at inference)."""

    def __init__(self, p: float, always: bool):
        super().__init__(p)
        self.always = always

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.dropout(
            x, self.p, self.training or self.always, self.inplace
        )


class ResBlock(nn.Module):
    """Table 1's L(x), L(x+1): ``x + N(Conv3(Drop(ReLU(N(Conv3(x))))))`` (III-A)."""

    def __init__(
        self, width: int, norm: str = "instance", dropout: float = 0.5, mc_dropout=False
    ):
        super().__init__()
        self.body = nn.Sequential(
            _conv(width, width, 3),
            _norm(norm, width),
            nn.ReLU(inplace=True),
            _Dropout(dropout, mc_dropout),
            _conv(width, width, 3),
            _norm(norm, width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DeblurNetFDM(nn.Module):
    """Frame Deblurring Module generator (Section III-A, Table 1); see the module docstring.

    [B, 3, H, W] blurred RGB in [0, 1] -> [B, 3, H, W] restored (``I_b + I_r``, not clamped). H and
    W must be multiples of :attr:`pad_multiple` (= ``stride``, 2 for the paper variant).
    """

    #: Spatial multiple the input must have (overridden per instance from ``stride``).
    pad_multiple: int = 2

    def __init__(
        self,
        width: int = 64,
        head_width: int = 16,
        num_blocks: int = 15,
        stride: int = 2,
        dropout: float = 0.5,
        norm: str = "instance",
        mc_dropout: bool = False,
    ):
        super().__init__()
        if width < 1 or head_width < 1 or num_blocks < 0 or stride < 1:
            raise ValueError(
                f"bad hyperparameters: width={width} head_width={head_width} "
                f"num_blocks={num_blocks} stride={stride}"
            )
        self.pad_multiple = stride
        self.l1 = nn.Sequential(_conv(3, head_width, 7), nn.ReLU(inplace=True))
        self.l2 = nn.Sequential(
            _conv(head_width, width, 5, stride), nn.ReLU(inplace=True)
        )
        self.blocks = nn.Sequential(
            *(ResBlock(width, norm, dropout, mc_dropout) for _ in range(num_blocks))
        )
        self.l33_34 = nn.Sequential(
            _conv(width, width, 3),
            _norm(norm, width),
            nn.ReLU(inplace=True),
            _conv(width, width, 3),
            _norm(norm, width),
        )
        self.l35 = nn.Sequential(_conv(width, width, 1), nn.ReLU(inplace=True))
        self.l36 = nn.Sequential(_conv(width, width, 1), nn.ReLU(inplace=True))
        if stride == 1:
            self.l37: nn.Module = _conv(width, 3, 1)
        else:  # 1x1 projection to 3*s*s channels + pixel shuffle == transposed conv (k = s = stride)
            self.l37 = nn.ConvTranspose2d(
                width, 3, kernel_size=stride, stride=stride, bias=True
            )

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``I_r``: the correction ResInOut adds to the blurred input."""
        h2 = self.l2(self.l1(x))
        h32 = self.blocks(h2)
        h36 = self.l36(self.l35(self.l33_34(h32))) + h2 + h32
        return self.l37(h36)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"DeblurNetFDM expects [B, 3, H, W], got {list(x.shape)}")
        m = self.pad_multiple
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(
                f"DeblurNetFDM needs H and W divisible by {m}, got {tuple(x.shape[-2:])}; pad first"
            )
        return x + self.residual(x)


class DeblurNetFSM(nn.Module):
    """Frame Selection Module classifier (Section III-B, Table 3); see the module docstring.

    [B, 3, H, W] RGB in [0, 1], any H x W -> logits [B] (positive = blurred,
    ``sigmoid(logit)`` = P(blurred)). :meth:`scores` gives Table 3's two FC outputs (sharp, blurred).
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (64, 128, 512),
        depths: tuple[int, ...] = (2, 4, 3),
        kernels: tuple[int, ...] = (5, 3, 3),
        strided: tuple[int, ...] = (2, 4, 6, 8),
        fc_hidden: int = 4096,
        negative_slope: float = 0.3,
    ):
        super().__init__()
        if not (len(widths) == len(depths) == len(kernels)) or sum(depths) < 2:
            raise ValueError(
                "widths, depths, kernels must align and give at least 2 convs"
            )
        layers: list[nn.Module] = []
        n_convs = sum(depths)
        c_in, index = 3, 0
        for c_out, depth, k in zip(widths, depths, kernels):
            for _ in range(depth):
                index += 1  # 1-based layer number of Table 3
                layers.append(_conv(c_in, c_out, k, 2 if index in strided else 1))
                if 1 < index < n_convs:
                    layers.append(nn.InstanceNorm2d(c_out, affine=True))
                if index < n_convs:
                    layers.append(nn.LeakyReLU(negative_slope, inplace=True))
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in, fc_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(fc_hidden, 2),
        )

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Table 3's FC output, [B, 2] = (sharp, blurred) pre-softmax scores."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"DeblurNetFSM expects [B, 3, H, W], got {list(x.shape)}")
        return self.classifier(self.pool(self.features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.scores(x)
        return z[:, 1] - z[:, 0]


register_net("deblurnet", build=DeblurNetFDM, variants=DEBLURNET_VARIANTS, default="small",
             doc="DeblurNet frame deblurring module (Nahli et al., Towards Frames Selection for Fast Video Deblurring, III-A)")
