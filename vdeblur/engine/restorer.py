"""Turn windows of RGB frames into restored RGB frames on a device.

Padding to the method's multiple, precision (autocast + fp32 fallback), batching and the
uint8/uint16 <-> float conversion happen here, once, for every method.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vdeblur.engine.memory import (default_budget, describe_oom, format_size, plan_tile,
                                   probe_bytes_per_pixel)
from vdeblur.engine.precision import run_with_fallback
from vdeblur.engine.tiling import is_oom, run_tiled_or_whole
from vdeblur.errors import OutOfMemoryError, UsageError
from vdeblur.methods.base import Method


def to_tensor(frames: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """[T] HxWx3 uint8/uint16 arrays -> float tensor [T, 3, H, W] in [0, 1]."""
    peak = 65535.0 if frames[0].dtype == np.uint16 else 255.0
    arr = np.stack(frames)
    if arr.dtype == np.uint16:
        arr = arr.astype(np.int32)  # torch has no uint16 arithmetic on every build
    t = torch.from_numpy(arr).to(device, non_blocking=True)
    return t.permute(0, 3, 1, 2).float().div_(peak)


def to_int_tensor(frames: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """[T] HxWx3 uint8/uint16 arrays -> integer tensor [T, 3, H, W] (uint8, or int32 for 16-bit:
    torch has no uint16 arithmetic on every build); a quarter of the float copy for 8-bit frames."""
    arr = np.stack(frames)
    if arr.dtype == np.uint16:
        arr = arr.astype(np.int32)
    return torch.from_numpy(arr).to(device, non_blocking=True).permute(0, 3, 1, 2)


def to_array(t: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """float tensor [3, H, W] -> HxWx3 array of ``dtype`` (clamped and rounded)."""
    peak = 65535.0 if dtype == np.uint16 else 255.0
    x = t.detach().float().clamp_(0, 1).mul_(peak).round_().permute(1, 2, 0)
    if dtype == np.uint8:  # straight to 1 byte a value: no int32 copy of the frame (4 bytes a value)
        return np.ascontiguousarray(x.to("cpu", torch.uint8).numpy())
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
        max_memory: int | None = None,
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
        #: bytes a batch may take (--max-memory); None: a share of what is free, read per frame size
        self.max_memory = max_memory
        #: tile size per frame size (h, w): planned from the budget, or what worked after running
        #: out of memory (so later frames start there instead of failing again); None: whole frames
        self._tiles: dict[tuple[int, int], int | None] = {}

    def _plan(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> int | None:
        """The tile size to start a batch ``x`` [B, T, 3, H, W] with (None: the whole frame)."""
        key = tuple(x.shape[-2:])
        if key not in self._tiles:
            h, w = key
            budget = self.max_memory if self.max_memory is not None else default_budget(self.device)
            bpp: list[float] = []

            def probe() -> float:
                bpp.append(probe_bytes_per_pixel(fn, x[:1], multiple=self.method.pad_multiple))
                return bpp[-1]

            tile = plan_tile(h, w, x.shape[0], x.shape[1], budget, probe)
            if tile is not None and (tile >= h and tile >= w):
                tile = None
            if tile is not None:
                how = "--max-memory" if self.max_memory is not None else "free memory"
                self.warn(f"a {w}x{h} frame needs ~{format_size(h * w * x.shape[0] * bpp[-1])} with this method, "
                          f"over the {format_size(budget)} budget ({how}); "
                          f"restoring in {tile}x{tile} tiles (overlap {self.tile_overlap})")
            self._tiles[key] = tile
        return self._tiles[key]

    def restore(self, windows: list[list[np.ndarray]], state: Any = None) -> tuple[list[np.ndarray], Any]:
        try:
            return self._restore(windows, state)
        except (RuntimeError, MemoryError) as e:
            if not is_oom(e):
                raise
            err = e.with_traceback(None)  # drop the frames (and the tensors they hold)
        fh, fw = windows[0][0].shape[:2]
        where = "" if self.method.recurrent or self.tile is not None else " even in the smallest tiles"
        raise OutOfMemoryError(f"not enough memory to restore a {fw}x{fh} frame{where} ({describe_oom(err)}); "
                          "pass a smaller --tile, or free memory")

    def _restore(self, windows: list[list[np.ndarray]], state: Any) -> tuple[list[np.ndarray], Any]:
        dtype = windows[0][0].dtype
        peak = 65535.0 if dtype == np.uint16 else 255.0
        # frames stay integers until used: a tiled frame is converted to float tile by tile, so
        # its float copy (4 bytes a value) never exists whole
        xi = torch.stack([to_int_tensor(w, self.device) for w in windows])  # [B, T, 3, H, W]
        xi, h, w = pad_to(xi, self.method.pad_multiple)
        box: dict[str, Any] = {}

        def as_float(c: torch.Tensor) -> torch.Tensor:
            return c.float().div_(peak)

        def call() -> torch.Tensor:
            if self.method.recurrent:
                out, box["state"] = self.method(as_float(xi), state)
                return out

            # whole frames, or overlapping tiles when asked, when the memory budget says so, or
            # when a frame does not fit (the size that worked is kept for the next frames)
            def fn(crop: torch.Tensor) -> torch.Tensor:
                crop = as_float(crop)
                return self_ensemble(lambda c: self.method(c)[0], crop) if self.ensemble else self.method(crop)[0]

            key = (xi.shape[-2], xi.shape[-1])
            start = None if self.tile is not None else self._plan(fn, xi)
            return run_tiled_or_whole(fn, xi, self.tile, self.tile_overlap, self.method.pad_multiple,
                                      self.device, self.warn, start=start,
                                      on_tile=lambda t: self._tiles.__setitem__(key, t))

        out = run_with_fallback(call, self.device, self.precision, self.warn)[..., :h, :w]
        return [to_array(o, dtype) for o in out], box.get("state")
