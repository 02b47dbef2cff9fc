"""Stage 2 of Brehm, Scherer, Lienhart: "High-Resolution Dual-Stage Multi-Level Feature Aggregation
for Single Image and Video Deblurring" -- Multi-Level Feature Aggregation (MLFA).

Source: ``/work/shared/papers/atrous-mlfa-image-video-deblur.md``.

What this module follows (Section 3.2 / Figure 5)
-------------------------------------------------
Input: frames t-1, t, t+1, each already deblurred by stage 1 (:mod:`.atrous`).

1. Feature extraction: each frame separately, shared weights, "4 consecutive convolutions with
   stride s = 2 and increasing feature depth" -- one feature block per frame and per resolution
   (1/2, 1/4, 1/8, 1/16 for ``levels = 4``).
2. Intra-resolution aggregation, per level (Figure 5 bottom): pixel-wise feature vectors are scaled
   to unit length; the t-1 and t+1 vectors are re-weighted by their dot product with the t vector
   (:func:`cosine_weight`: the cosine, in [-1, 1]; 1 = identical direction, 0 = orthogonal,
   -1 = opposite; deliberately *not* squashed to [0, 1], unlike EDVR); the three are concatenated
   along channels and fused by one convolution followed by three residual blocks (two 3x3 convs).
3. Inter-resolution aggregation: from the coarsest level up, fused features are up-sampled x2 by a
   deconvolution and added element-wise to the fused features of the next finer level.

Section 3.3 applies to "all reported models": leaky ReLU after every conv but the output layer, a
learned per-map scale before the bias instead of normalisation, reflection padding where possible
(the conv units are shared with :mod:`.atrous`).

Choices where the paper is silent (documented, not from the paper)
------------------------------------------------------------------
* Widths: "increasing feature depth" only. Level ``l`` (0 = finest, 1/2 resolution) has
  ``width * 2**l`` channels; "paper" uses width 32 -> 32, 64, 128, 256 (the paper gives no number).
* Extraction conv kernel 3x3 (as every other non-head conv in the paper).
* What is concatenated: the Figure 5 caption's order -- scale to unit length, *then* re-weight -- so
  the fusion conv sees ``[w_prev * u_{t-1}, u_t, w_next * u_{t+1}]`` with ``u = f / |f|`` (all three
  unit-normalised; magnitude is dropped). ``w = <u_t, u_n>``; an all-zero vector gets weight 0.
* Output: the paper does not say how the 1/2-resolution aggregate returns to full resolution. One
  more deconvolution (x2) and a linear 3x3 output conv give a residual added to the centre frame
  (the stage-1 convention; stage 2 refines an already deblurred frame).
* Residual blocks: ``x + act(conv(act(conv(x))))`` -- the second conv keeps its leaky ReLU (every
  conv but the output layer has one), applied before the identity is added.

Symmetry: the cosine weight is symmetric, but the fusion conv has separate weights for the t-1 and
t+1 slots of the concatenation, so MLFA is *not* invariant to swapping t-1 and t+1 (it is
equivariant to swapping those two input-channel blocks of every fusion conv's weight).

Shapes: [B, 3, 3, H, W] (dim 1: t-1, t, t+1; index 1 is the centre) -> [B, 3, H, W] for H, W
divisible by ``pad_multiple`` = ``2**levels``. Callers pad; this module does not.

The ``mlfa`` method (bottom of this module) is :class:`TwoStage`: stage 1 on each frame, then MLFA,
its variants :data:`TWO_STAGE_VARIANTS`; its step :class:`CachedTwoStageStep` runs stage 1 once
per frame of a video, not once per window slot.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vdeblur.methods.neural import autocast_key, register_net

from .atrous import ATROUS_VARIANTS, AtrousNet, ScaledConv, ScaledDeconv

__all__ = ["MLFA", "MLFA_VARIANTS", "TWO_STAGE_VARIANTS", "CachedTwoStageStep", "FusionBlock", "ResidualBlock",
           "TwoStage", "cosine_weight", "two_stage_step"]

#: Variants as data. "paper": 4 stride-2 levels, 3 residual blocks per fusion (Section 3.2; the
#: widths are ours). "small": CPU-sized.
MLFA_VARIANTS: dict[str, dict] = {
    "paper": {"width": 32, "levels": 4, "res_blocks": 3},
    "small": {"width": 8, "levels": 3, "res_blocks": 1},
}


def cosine_weight(center: torch.Tensor, neighbour: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-pixel dot product of unit-normalised feature vectors (Eq. 1 with |a| = |b| = 1).

    ``center``, ``neighbour``: [B, C, H, W] -> [B, 1, H, W] in [-1, 1]. Invariant to the scale of
    either input; zero vectors give weight 0.
    """
    u_c = F.normalize(center, dim=1, eps=eps)
    u_n = F.normalize(neighbour, dim=1, eps=eps)
    return (u_c * u_n).sum(dim=1, keepdim=True)


class ResidualBlock(nn.Module):
    """Two consecutive 3x3 convs plus identity (Figure 5 bottom)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(ScaledConv(channels, channels, 3), ScaledConv(channels, channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FusionBlock(nn.Module):
    """Figure 5 bottom: unit-normalise, cosine re-weight t-1 / t+1, concat, conv, residual blocks."""

    def __init__(self, channels: int, res_blocks: int = 3):
        super().__init__()
        self.fuse = ScaledConv(3 * channels, channels, 3)
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(res_blocks)))

    def forward(self, prev: torch.Tensor, cur: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        u_prev, u_cur, u_next = (F.normalize(f, dim=1) for f in (prev, cur, nxt))
        w_prev = cosine_weight(u_cur, u_prev)
        w_next = cosine_weight(u_cur, u_next)
        x = torch.cat([w_prev * u_prev, u_cur, w_next * u_next], dim=1)
        return self.blocks(self.fuse(x))


class MLFA(nn.Module):
    """Multi-Level Feature Aggregation (Section 3.2, Figure 5).

    ``forward(frames)``: [B, 3, 3, H, W] stage-1-restored (t-1, t, t+1) -> restored centre
    [B, 3, H, W] = ``frames[:, 1] + residual``. H, W divisible by :attr:`pad_multiple` = 2**levels.
    """

    def __init__(self, width: int = 8, levels: int = 4, res_blocks: int = 3):
        super().__init__()
        if width < 1 or levels < 1 or res_blocks < 0:
            raise ValueError("width, levels must be >= 1 and res_blocks >= 0")
        self.levels = levels
        self.pad_multiple = 2**levels
        chans = [width * 2**lv for lv in range(levels)]
        # phase 1: shared-weight extraction, one stride-2 conv per level, increasing depth
        self.extract = nn.ModuleList(
            ScaledConv(c_in, c_out, 3, stride=2) for c_in, c_out in zip([3] + chans[:-1], chans)
        )
        # phase 2: one fusion per resolution
        self.fusion = nn.ModuleList(FusionBlock(c, res_blocks) for c in chans)
        # phase 3: deconv from level l+1 to level l, added to level l's fused features
        self.up = nn.ModuleList(ScaledDeconv(chans[lv + 1], chans[lv]) for lv in range(levels - 1))
        # back to full resolution and a linear output layer (our choice, see module docstring)
        self.out = nn.Sequential(ScaledDeconv(chans[0], chans[0]), ScaledConv(chans[0], 3, 3, act=False))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() != 5 or frames.shape[1] != 3 or frames.shape[2] != 3:
            raise ValueError(f"MLFA expects [B, 3, 3, H, W] (t-1, t, t+1), got {list(frames.shape)}")
        b, t, c, h, w = frames.shape
        if h % self.pad_multiple or w % self.pad_multiple:
            raise ValueError(f"MLFA needs H, W divisible by {self.pad_multiple}, got {[h, w]}")
        x = frames.reshape(b * t, c, h, w)  # the three frames share the extraction weights
        fused = []
        for conv, fuse in zip(self.extract, self.fusion):
            x = conv(x)
            f = x.view(b, t, *x.shape[1:])
            fused.append(fuse(f[:, 0], f[:, 1], f[:, 2]))
        y = fused[-1]
        for lv in range(self.levels - 2, -1, -1):
            y = fused[lv] + self.up[lv](y)
        return frames[:, 1] + self.out(y)


class TwoStage(nn.Module):
    """Atrous stage 1 on each of t-1, t, t+1, then MLFA stage 2 (atrous-mlfa ... Section 3)."""

    def __init__(self, stage1: dict, stage2: dict):
        super().__init__()
        self.stage1, self.stage2 = AtrousNet(**stage1), MLFA(**stage2)
        self.pad_multiple = max(self.stage1.pad_multiple, self.stage2.pad_multiple)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t = frames.shape[:2]
        pre = self.stage1(frames.flatten(0, 1)).unflatten(0, (b, t))
        return self.stage2(pre)


#: The mlfa method's variants as data: stage 1's (:data:`ATROUS_VARIANTS`) and stage 2's settings.
TWO_STAGE_VARIANTS: dict[str, dict] = {
    v: {"stage1": ATROUS_VARIANTS[v], "stage2": MLFA_VARIANTS[v]} for v in ("small", "paper")
}


def two_stage_step(net: nn.Module, window: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
    return net(window), None


class CachedTwoStageStep:
    """``two_stage_step`` that runs stage 1 once per frame, not once per window slot.

    Frame t sits in three sliding windows (as t+1, t and t-1), so plain ``net(window)`` runs the
    atrous stage 1 three times on it. This step keeps stage 1's outputs for the frames of its last
    call and looks each new frame up by content (a strided fingerprint, then exact equality with a
    kept copy): the windows are new tensors each call, so object identity cannot be the key. It is
    bounded (at most the B*T frames of one call, inputs and outputs), and keyed too by device,
    dtype, autocast state and the stage-1 weights' versions (an optimiser step or a weight load
    invalidates it). With gradients on or the net in training mode it is bypassed.
    Equal frames within one call are also run once.
    """

    def __init__(self) -> None:
        self._entries: list[tuple[tuple, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.stage1_frames = 0  # frames stage 1 has run on (for tests and benchmarks)

    @staticmethod
    def _fingerprint(frame: torch.Tensor) -> torch.Tensor:
        return frame[:, ::37, ::41]

    def __call__(self, net: nn.Module, window: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        if torch.is_grad_enabled() or net.training:
            self._entries = []
            self.stage1_frames += window.shape[0] * window.shape[1]
            return net(window), None
        b, t = window.shape[:2]
        frames = window.flatten(0, 1)
        key = (window.device, window.dtype, tuple(window.shape[2:]), autocast_key(window.device),
               tuple(p._version for p in net.stage1.parameters()))
        known = [(fp, f, out) for k, fp, f, out in self._entries if k == key]
        same = lambda i, fp, f: torch.equal(fp, fps[i]) and torch.equal(f, frames[i])  # noqa: E731
        fps = [self._fingerprint(frames[i]) for i in range(b * t)]
        slots: list[Any] = []  # per frame: a kept stage-1 output, or its position in ``todo``
        todo: list[int] = []
        for i in range(b * t):
            slot = next((out for fp, f, out in known if same(i, fp, f)), None)
            if slot is None:  # an equal frame earlier in this call
                slot = next((slots[j] for j in range(i)
                             if isinstance(slots[j], int) and same(i, fps[j], frames[j])), None)
            if slot is None:
                slot = len(todo)
                todo.append(i)
            slots.append(slot)
        if todo:
            pre = net.stage1(frames[todo])
            self.stage1_frames += len(todo)
        outs = [pre[s] if isinstance(s, int) else s for s in slots]
        self._entries, seen = [], set()
        for i, slot in enumerate(slots):
            tag = slot if isinstance(slot, int) else ("kept", id(slot))
            if tag not in seen:
                seen.add(tag)
                self._entries.append((key, fps[i].clone(), frames[i].clone(), outs[i]))
        return net.stage2(torch.stack(outs).unflatten(0, (b, t))), None


register_net("mlfa", build=TwoStage, variants=TWO_STAGE_VARIANTS, default="small", step=CachedTwoStageStep,
             past=1, future=1,
             doc="Atrous stage 1 + multi-level feature aggregation over t-1, t, t+1 (Brehm et al., 3).")
