"""Turn windows of RGB frames into restored RGB frames on a device.

Padding to the method's multiple, precision (autocast + fp32 fallback), batching and the
uint8/uint16 <-> float conversion happen here, once, for every method.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vdeblur.engine.precision import run_with_fallback
from vdeblur.engine.tiling import run_tiled_or_whole
from vdeblur.errors import UsageError
from vdeblur.methods.base import Method


def to_tensor(frames: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """[T] HxWx3 uint8/uint16 arrays -> float tensor [T, 3, H, W] in [0, 1]."""
    peak = 65535.0 if frames[0].dtype == np.uint16 else 255.0
    arr = np.stack(frames)
    if arr.dtype == np.uint16:
        arr = arr.astype(np.int32)  # torch has no uint16 arithmetic on every build
    t = torch.from_numpy(arr).to(device, non_blocking=True)
    return t.permute(0, 3, 1, 2).float().div_(peak)


def to_array(t: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """float tensor [3, H, W] -> HxWx3 array of ``dtype`` (clamped and rounded)."""
    peak = 65535.0 if dtype == np.uint16 else 255.0
    x = t.detach().float().clamp_(0, 1).mul_(peak).round_().permute(1, 2, 0)
    return x.to("cpu", torch.int32).numpy().astype(dtype)


def pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Pad the last two dims of ``x`` up to ``multiple`` (reflection where possible)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, h, w
    shape = x.shape
    flat = x.reshape(-1, *shape[-3:])
    mode = "reflect" if ph < h and pw < w else "replicate"
    flat = F.pad(flat, (0, pw, 0, ph), mode=mode)
    return flat.reshape(*shape[:-2], h + ph, w + pw), h, w


def self_ensemble(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Geometric self-ensemble: the mean of ``fn`` over the 8 flips and rotations of the image
    plane of ``x`` (its last two dims), each mapped back. atrous-mlfa-image-video-deblur.md
    (Section 4, results on REDS) averages four such versions; vdeblur takes the whole dihedral group."""
    acc = None
    for k in range(4):
        for flip in (False, True):
            t = torch.rot90(x, k, dims=(-2, -1))
            t = t.flip(-1) if flip else t
            y = fn(t).float()
            y = y.flip(-1) if flip else y
            y = torch.rot90(y, -k, dims=(-2, -1))
            acc = y if acc is None else acc + y
    return acc / 8


class Restorer:
    """Runs ``method`` on batches of windows: ``restore(windows, state) -> (frames, state)``."""

    def __init__(
        self,
        method: Method,
        device: torch.device,
        precision: str = "fp32",
        warn: Callable[[str], None] = lambda m: None,
        tile: int | None = None,
        tile_overlap: int = 32,
        ensemble: bool = False,
    ):
        # channels_last: 3-4x faster convolutions on CPU in bf16, and on tensor cores
        self.method = method.to(device, memory_format=torch.channels_last).eval()
        self.device = device
        self.precision = precision
        self.warn = warn
        if tile is not None and method.recurrent:
            raise UsageError("--tile: a recurrent method carries whole-frame state and cannot be tiled")
        self.tile, self.tile_overlap = tile, tile_overlap
        if ensemble and method.recurrent:
            raise UsageError("--ensemble: a recurrent method carries state from frame to frame and cannot be ensembled")
        self.ensemble = ensemble

    def restore(self, windows: list[list[np.ndarray]], state: Any = None) -> tuple[list[np.ndarray], Any]:
        dtype = windows[0][0].dtype
        x = torch.stack([to_tensor(w, self.device) for w in windows])  # [B, T, 3, H, W]
        x, h, w = pad_to(x, self.method.pad_multiple)
        box: dict[str, Any] = {}

        def call() -> torch.Tensor:
            if self.method.recurrent:
                out, box["state"] = self.method(x, state)
                return out
            # whole frames, or overlapping tiles when asked or when a frame does not fit
            def fn(crop: torch.Tensor) -> torch.Tensor:
                return self_ensemble(lambda c: self.method(c)[0], crop) if self.ensemble else self.method(crop)[0]

            return run_tiled_or_whole(fn, x, self.tile, self.tile_overlap, self.method.pad_multiple,
                                      self.device, self.warn)

        out = run_with_fallback(call, self.device, self.precision, self.warn)[..., :h, :w]
        return [to_array(o, dtype) for o in out], box.get("state")
