"""SRN: the scale-recurrent network for deblurring (Tao et al., CVPR 2018, "Scale-recurrent
Network for Deep Image Deblurring"), as analysed in /work/shared/papers/srn-scale-recurrent-
analysis.md Section 3.2, laid out after the official SRN-Deblur TensorFlow code
(``models/model.py: DEBLUR.generator``, ``util/BasicConvLSTMCell.py``).

One encoder-decoder, weights shared across ``scales`` runs at ratio 0.5, coarsest first. At each
scale the input is ``cat([blurry image resized to that scale, previous estimate up-sampled])``
(the previous estimate is the blurry image itself at the coarsest scale, and is detached, as the
official ``tf.stop_gradient``). Official layer layout (paper variant, names as in the TF code)::

    enc1_1  conv 5x5, 2*C -> 32, ReLU             enc1_2..enc1_4  ResBlock(32, 5) x3
    enc2_1  conv 5x5 stride 2, 32 -> 64, ReLU     enc2_2..enc2_4  ResBlock(64, 5) x3
    enc3_1  conv 5x5 stride 2, 64 -> 128, ReLU    enc3_2..enc3_4  ResBlock(128, 5) x3
    LSTM    ConvLSTM 3x3, 128 -> 128 (state resized bilinearly to each scale's bottleneck)
    dec3_3..dec3_1  ResBlock(128, 5) x3
    dec2_4  transposed conv 4x4 stride 2, 128 -> 64, ReLU, + enc2_4   dec2_3..2_1  ResBlock(64) x3
    dec1_4  transposed conv 4x4 stride 2, 64 -> 32, ReLU, + enc1_4    dec1_3..1_1  ResBlock(32) x3
    dec1_0  conv 5x5, 32 -> C, no activation (the estimate itself, not a residual)

``ResBlock`` is conv-ReLU-conv + identity (no activation after the sum); every other conv and
transposed conv has a ReLU; Xavier-uniform weights, zero biases.

``channels`` is how many image channels one pass sees. The official ConvLSTM model
(``--model lstm``, the ~8.06 M-parameter network) is a *grey* network (C = 1): at test time the
three colour channels are stacked on the batch axis and restored independently; ``channels=1``
does exactly that inside ``forward`` (8,056,609 parameters). The official ``color`` model is
C = 3 without the LSTM (6,881,251 parameters). Both take and return [B, 3, H, W].

Padding: the engine pads the input; ``pad_multiple = 2 ** (scales - 1 + len(widths) - 1)``
(= 2 ** (3 - 1 + 2) = 16 for the paper): the coarsest scale is H / 2**(scales-1), and the encoder
halves that ``len(widths) - 1`` more times, every size along the way must stay even so that the
transposed convs restore it exactly for the additive skips. ``forward`` refuses other sizes.

Differences from the TF code a weight port must mind: stride-2 convs use TF "SAME" padding
(one pixel before, two after for 5x5), reproduced here; resizing uses PyTorch bilinear with
half-pixel centres (``align_corners=False``), whereas TF1 ``tf.image.resize_images`` used the
legacy ``half_pixel_centers=False`` mapping.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vdeblur.methods.neural import register_net

from .blocks import ConvLSTMCell, ResBlock

SRN_VARIANTS: dict[str, dict] = {
    # official SRN-Deblur "lstm" model: grey network run per colour channel, ConvLSTM bottleneck
    "paper": dict(widths=(32, 64, 128), scales=3, blocks=3, kernel_size=5, lstm=True, channels=1),
    # official SRN-Deblur "color" model: RGB in one pass, no ConvLSTM
    "color": dict(widths=(32, 64, 128), scales=3, blocks=3, kernel_size=5, lstm=False, channels=3),
    # tiny network for tests and quick experiments
    "small": dict(widths=(8, 16, 32), scales=3, blocks=1, kernel_size=3, lstm=True, channels=3),
}


class _SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (asymmetric for even totals: the extra pixel after)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1):
        super().__init__(in_ch, out_ch, kernel_size, stride=stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad order: W then H
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class SRN(nn.Module):
    """Scale-recurrent encoder-decoder (see module docstring). Hyperparameters only.

    ``forward(x [B, 3, H, W] in [0, 1], return_all=False)`` returns the finest estimate
    [B, 3, H, W] (not clamped), or with ``return_all=True`` the list of estimates of every scale,
    coarsest first, each [B, 3, H / 2**(scales-1-i), W / 2**(scales-1-i)].
    H and W must be multiples of ``pad_multiple``.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64, 128),
        scales: int = 3,
        blocks: int = 3,
        kernel_size: int = 5,
        lstm: bool = True,
        channels: int = 1,
        lstm_kernel: int = 3,
    ):
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (per colour channel) or 3, got {channels}")
        if scales < 1 or len(widths) < 1:
            raise ValueError("SRN needs at least one scale and one width")
        self.widths = tuple(widths)
        self.scales = scales
        self.channels = channels
        #: input H and W must be multiples of this (scales - 1 resizes, then len(widths) - 1
        #: stride-2 convs, each halving an even size)
        self.pad_multiple = 2 ** (scales - 1 + len(widths) - 1)

        def res(w: int) -> nn.Sequential:
            return nn.Sequential(*(ResBlock(w, kernel_size) for _ in range(blocks)))

        n = len(self.widths)
        self.enc_in = nn.ModuleList()
        for lvl, w in enumerate(self.widths):
            if lvl == 0:
                conv = nn.Conv2d(2 * channels, w, kernel_size, padding=kernel_size // 2)
            else:
                conv = _SameConv2d(self.widths[lvl - 1], w, kernel_size, stride=2)
            self.enc_in.append(nn.Sequential(conv, nn.ReLU(inplace=True)))
        self.enc_res = nn.ModuleList(res(w) for w in self.widths)
        self.lstm = ConvLSTMCell(self.widths[-1], self.widths[-1], lstm_kernel) if lstm else None
        self.dec_res = nn.ModuleList(res(w) for w in self.widths)
        # up[lvl]: widths[lvl + 1] -> widths[lvl]
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(self.widths[lvl + 1], self.widths[lvl], 4, stride=2, padding=1),
                nn.ReLU(inplace=True),
            )
            for lvl in range(n - 1)
        )
        self.out = nn.Conv2d(self.widths[0], channels, kernel_size, padding=kernel_size // 2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def _step(self, inp: torch.Tensor, state):
        feats = []
        x = inp
        for enc_in, enc_res in zip(self.enc_in, self.enc_res):
            x = enc_res(enc_in(x))
            feats.append(x)
        if self.lstm is not None:
            h, c = self.lstm(x, state)
            x, state = h, (h, c)
        x = self.dec_res[-1](x)
        for lvl in reversed(range(len(self.widths) - 1)):
            x = self.dec_res[lvl](self.up[lvl](x) + feats[lvl])
        return self.out(x), state

    def forward(self, x: torch.Tensor, return_all: bool = False):
        if x.dim() != 4:
            raise ValueError(f"SRN expects [B, C, H, W], got {list(x.shape)}")
        b, c, height, width = x.shape
        m = self.pad_multiple
        if height % m or width % m:
            raise ValueError(f"SRN needs H and W multiples of {m} (the engine pads), got {height}x{width}")
        if self.channels == 1:
            x = x.reshape(b * c, 1, height, width)
        elif c != self.channels:
            raise ValueError(f"SRN built for {self.channels} channels, got {c}")

        outs = []
        pred, state = x, None
        bottleneck = 2 ** (len(self.widths) - 1)
        for i in range(self.scales):
            f = 2 ** (self.scales - 1 - i)
            size = (height // f, width // f)
            blur = _resize(x, size)
            pred = _resize(pred, size).detach()
            if state is not None:
                bsize = (size[0] // bottleneck, size[1] // bottleneck)
                state = tuple(_resize(t, bsize) for t in state)
            pred, state = self._step(torch.cat([blur, pred], dim=1), state)
            outs.append(pred)

        if self.channels == 1:
            outs = [o.reshape(b, c, *o.shape[-2:]) for o in outs]
        return outs if return_all else outs[-1]


register_net("srn", build=SRN, variants=SRN_VARIANTS, default="small",
             doc="Scale-recurrent network, 3 scales, ConvLSTM (An analysis of Scale Recurrent Network for video deblurring, 3.2)")
