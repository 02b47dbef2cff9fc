"""The Frame Selection Module as a selector (deblurnet-frame-selection.md III-B, Table 3).

A trained ``DeblurNetFSM`` classifies each frame (or, with ``every=K``, the middle frame of each
group of K, the batch mode of IV-E.3 / Table 9) as sharp or blurred. Frames are classified at an
analysis scale (shorter side ``analysis_side``, default 360 px, the scale the selector is trained
at) on the engine's device. Needs trained weights: a weights.toml entry for method ``fsm`` or a
safetensors file; without them it refuses, like every neural method.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vdeblur.select.laplacian import Decision


class FSMSelector:
    wants = "rgb"  # the engine hands this selector RGB frames, not luma

    def __init__(self, net: torch.nn.Module, device: torch.device | str = "cpu", every: int = 1,
                 threshold: float | None = None, analysis_side: int = 360):
        self.net = net.to(device).eval()
        self.device = torch.device(device)
        self.every = every
        self.threshold = 0.5 if threshold is None else threshold
        self.analysis_side = analysis_side
        self.lookahead = (every - 1) // 2
        self._waiting: list[int] = []  # frames of the current group waiting for its middle
        self._label: tuple[float | None, bool] | None = None  # the current group's label
        self._last: np.ndarray | None = None  # the current group's latest frame (for a short last group)

    def needs_score(self, index: int) -> bool:
        return True  # keep the latest frame of the group, in case the stream ends before its middle

    def probability(self, rgb: np.ndarray) -> float:
        peak = 65535.0 if rgb.dtype == np.uint16 else 255.0
        x = torch.from_numpy(rgb.astype(np.float32) / peak).permute(2, 0, 1)[None].to(self.device)
        h, w = x.shape[-2:]
        s = self.analysis_side / min(h, w)
        if s < 1:
            x = F.interpolate(x, size=(max(17, round(h * s)), max(17, round(w * s))), mode="area")
        with torch.inference_mode():
            return float(torch.sigmoid(self.net(x)).item())

    def push(self, index: int, rgb: np.ndarray | None) -> list[Decision]:
        pos = index % self.every
        if pos == 0:
            self._label, self._waiting = None, []
        self._last = rgb
        if self._label is None and pos == (self.every - 1) // 2:
            p = self.probability(rgb)
            self._label = (p, p > self.threshold)
            out = [Decision(i, None, self._label[1]) for i in self._waiting]
            self._waiting = []
            return out + [Decision(index, p, self._label[1])]
        if self._label is not None:
            return [Decision(index, None, self._label[1])]
        self._waiting.append(index)
        return []

    def flush(self) -> list[Decision]:
        if not self._waiting:
            return []
        p = self.probability(self._last)
        out = [Decision(i, p if i == self._waiting[-1] else None, p > self.threshold) for i in self._waiting]
        self._waiting = []
        return out


def load_fsm(weights: str | None, device: Any, every: int, threshold: float | None,
             variant: str = "small") -> FSMSelector:
    """The FSM selector with its trained weights (weights.toml entry 'fsm', or ``weights``)."""
    from vdeblur.methods.archs.deblurnet import FSM_VARIANTS, DeblurNetFSM
    from vdeblur.methods.neural import load_into

    net = DeblurNetFSM(**FSM_VARIANTS[variant])
    load_into(net, "fsm", variant, weights)
    return FSMSelector(net, device, every=every, threshold=threshold)
