"""The Method protocol: the one seam every restoration backend plugs into.

A method is created by a factory registered under its CLI name (see ``registry``). It says what it
needs from the engine (``past``/``future`` frames, ``recurrent`` state, ``pad_multiple``), and it is
called by the engine with a batch of temporal windows already on the device, padded and cast:

    window: float tensor [B, T, 3, H, W], RGB in [0, 1], T = past + 1 + future, the frame to
            restore at index ``past``
    state:  whatever the method returned for the previous frame (recurrent methods), else None
    returns (restored [B, 3, H, W] in [0, 1] -- not necessarily clamped, the engine clamps --, new state)

A method never opens files, never pads, tiles or casts, never decides which frames to skip.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Method(nn.Module):
    """Base class for restoration methods. Subclasses implement ``restore``."""

    past: int = 0
    future: int = 0
    recurrent: bool = False
    pad_multiple: int = 1
    #: True for a method whose output equals its input (lets the engine skip colour conversion)
    is_identity: bool = False
    #: True for a method restored from the selector's labels of its window (``lucky``): the engine
    #: calls its ``pick`` and ``restore_frame`` instead of ``restore`` (see engine.pipeline.Engine)
    needs_labels: bool = False

    @property
    def window(self) -> int:
        return self.past + 1 + self.future

    def restore(self, window: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def forward(self, window: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        if window.dim() != 5 or window.shape[1] != self.window or window.shape[2] != 3:
            raise ValueError(
                f"{type(self).__name__} expects a window of shape [B, {self.window}, 3, H, W], "
                f"got {list(window.shape)}"
            )
        return self.restore(window, state)


class FrameMethod(Method):
    """A single-frame method: wraps ``op(image [B,3,H,W]) -> [B,3,H,W]``."""

    def __init__(self, op: nn.Module):
        super().__init__()
        self.op = op

    def restore(self, window: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return self.op(window[:, self.past]), None
