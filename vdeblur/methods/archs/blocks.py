"""Shared building blocks for the architectures in ``vdeblur.methods.archs``.

Hyperparameters only: no paths, no loading, no padding of the input to a multiple.
"""

from __future__ import annotations

import torch
from torch import nn


class ResBlock(nn.Module):
    """conv-ReLU-conv plus identity, no activation after the sum (SRN-Deblur ``ResnetBlock``).

    Both convolutions keep the channel count and the spatial size ("same" padding, odd kernel).
    """

    def __init__(self, channels: int, kernel_size: int = 5):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"ResBlock needs an odd kernel_size, got {kernel_size}")
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, padding=pad)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, padding=pad)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the sum written into the conv's fresh output (autograd-safe: a conv keeps its input, not
        # its output): one frame-sized allocation fewer per block
        return self.conv2(self.act(self.conv1(x))).add_(x)


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM cell (Shi et al. 2015), laid out as SRN-Deblur's ``BasicConvLSTMCell``.

    One convolution over ``cat([x, h])`` gives the four gates in the order i, j, f, o;
    ``c' = c * sigmoid(f + forget_bias) + sigmoid(i) * tanh(j)``, ``h' = tanh(c') * sigmoid(o)``.
    No peepholes. ``forward(x, state=None)`` with ``state = (h, c)`` (zeros when None) returns
    ``(h', c')``; ``h'`` is also the cell's output.
    """

    def __init__(self, in_ch: int, hidden_ch: int, kernel_size: int = 3, forget_bias: float = 1.0):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"ConvLSTMCell needs an odd kernel_size, got {kernel_size}")
        self.in_ch = in_ch
        self.hidden_ch = hidden_ch
        self.forget_bias = forget_bias
        self.conv = nn.Conv2d(in_ch + hidden_ch, 4 * hidden_ch, kernel_size, padding=kernel_size // 2)

    def zero_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = x.shape
        z = x.new_zeros(b, self.hidden_ch, h, w)
        return z, z.clone()

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = self.zero_state(x) if state is None else state
        i, j, f, o = torch.chunk(self.conv(torch.cat([x, h], dim=1)), 4, dim=1)
        c = c * torch.sigmoid(f + self.forget_bias) + torch.sigmoid(i) * torch.tanh(j)
        h = torch.tanh(c) * torch.sigmoid(o)
        return h, c
