"""Spatial tiling: run a method on overlapping crops and blend them back into one frame.

``tiled_call(fn, x, tile, overlap, multiple)`` splits the last two dims of ``x`` ([B, T, C, H, W]
windows or [B, C, H, W] images) into overlapping tiles, calls ``fn`` on each crop (same leading
dims) and blends the [B, C, h, w] outputs with a separable window. Only one tile's output and the
[B, C, H, W] accumulator are alive at a time.

The blend window of a tile, along each axis, is 1 inside, and on every side that touches another
tile (not the image border) it is 0 over the outer ``overlap // 4`` pixels, then rises as a raised
cosine over the next ``overlap - 2 * (overlap // 4)`` pixels. The zero margin discards the pixels
a convolution sees the crop's padding through, so for a fully convolutional net whose receptive
field radius is at most ``overlap // 4`` (e.g. a 7x7 receptive field and overlap >= 12) the tiled
output equals the untiled one up to float rounding; the ramp hides seams for larger nets. The
weights are divided by their sum, so the blend is exact for constant outputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

Fn = Callable[[torch.Tensor], torch.Tensor]

#: tile sizes tried, in order, when a whole frame runs out of memory
FALLBACK_TILES = (512, 256, 128)


def _tile_size(length: int, tile: int, multiple: int) -> int:
    """The tile size used along an axis of ``length``: ``tile`` rounded down to ``multiple``."""
    multiple = max(1, int(multiple))
    t = max(multiple, (int(tile) // multiple) * multiple)
    return min(length, t)


def _starts(length: int, size: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``size`` covering ``length`` with at least ``overlap`` overlap;
    the last tile is shifted inward so that it ends at the border."""
    if size >= length:
        return [0]
    stride = size - overlap
    n = math.ceil((length - size) / stride) + 1
    return sorted({min(i * stride, length - size) for i in range(n)})


def _ramp(size: int, overlap: int, lead: bool, trail: bool) -> torch.Tensor:
    """1-D blend weights of one tile: zero margin + raised cosine on sides with a neighbour."""
    w = torch.ones(size, dtype=torch.float64)
    if overlap <= 0:
        return w
    margin = overlap // 4
    ramp_len = overlap - 2 * margin
    i = torch.arange(ramp_len, dtype=torch.float64)
    up = 0.5 - 0.5 * torch.cos(math.pi * (i + 0.5) / ramp_len)
    if lead:
        w[:margin] = 0
        w[margin:margin + ramp_len] *= up
    if trail:
        w[size - margin:] = 0
        w[size - margin - ramp_len:size - margin] *= up.flip(0)
    return w


def _axis_plan(length: int, tile: int, overlap: int, multiple: int):
    """[(start, size, weights)] along one axis, and the sum of all weights ([length])."""
    size = _tile_size(length, tile, multiple)
    # keep a positive stride and room for both ramps of a tile
    ov = max(0, min(int(overlap), size // 2))
    starts = _starts(length, size, ov)
    plan = []
    norm = torch.zeros(length, dtype=torch.float64)
    for k, s in enumerate(starts):
        w = _ramp(size, ov, lead=k > 0, trail=k < len(starts) - 1)
        plan.append((s, size, w))
        norm[s:s + size] += w
    if not bool((norm > 0).all()):  # cannot happen with ov <= size // 2; be loud if it does
        raise AssertionError("tiling left pixels with zero blend weight")
    return plan, norm


def tile_grid(h: int, w: int, tile: int, overlap: int, multiple: int = 1) -> list[tuple[int, int, int, int]]:
    """The tiles as (y0, x0, th, tw), in the order ``tiled_call`` runs them."""
    py, _ = _axis_plan(h, tile, overlap, multiple)
    px, _ = _axis_plan(w, tile, overlap, multiple)
    return [(y, x, th, tw) for y, th, _ in py for x, tw, _ in px]


def tiled_call(fn: Fn, x: torch.Tensor, tile: int, overlap: int, multiple: int = 1) -> torch.Tensor:
    """Run ``fn`` on overlapping spatial tiles of ``x`` and blend the outputs.

    x: [B, T, C, H, W] or [B, C, H, W]; fn(crop) -> [B, C, h, w] where h, w are the crop's size.
    Tiles are ``tile`` (rounded down to ``multiple``) on a side, or the whole axis when it is not
    longer than that; ``overlap`` is clamped to half a tile. Returns [B, C, H, W] (float32 at
    least, whatever precision ``fn`` computes in).
    """
    if tile is None or tile <= 0:
        raise ValueError(f"tile must be a positive int, got {tile!r}")
    H, W = x.shape[-2:]
    plan_y, norm_y = _axis_plan(H, tile, overlap, multiple)
    plan_x, norm_x = _axis_plan(W, tile, overlap, multiple)
    if len(plan_y) == 1 and len(plan_x) == 1:
        return fn(x)

    acc: torch.Tensor | None = None
    for y0, th, wy in plan_y:
        for x0, tw, wx in plan_x:
            out = fn(x[..., y0:y0 + th, x0:x0 + tw].contiguous())
            if out.dim() != 4 or tuple(out.shape[-2:]) != (th, tw):
                raise ValueError(
                    f"tiled fn must return [B, C, {th}, {tw}] for a {th}x{tw} crop, got {list(out.shape)}"
                )
            if acc is None:
                dtype = torch.promote_types(out.dtype, torch.float32)
                acc = torch.zeros((*out.shape[:2], H, W), dtype=dtype, device=out.device)
            weight = (wy[:, None] * wx[None, :]).to(acc.device, acc.dtype)
            acc[..., y0:y0 + th, x0:x0 + tw].addcmul_(out.to(acc.dtype), weight)
            del out, weight
    assert acc is not None
    # the tile grid is a product of two 1-D grids, so the weight sum is separable too
    norm = (norm_y[:, None] * norm_x[None, :]).to(acc.device, acc.dtype)
    return acc.div_(norm)


def is_oom(exc: BaseException) -> bool:
    """True for an out-of-memory error of any device: ``torch.OutOfMemoryError`` (CUDA, and the
    CPU allocator in recent torch), an 'out of memory' RuntimeError (CUDA, MPS), the CPU
    allocator's "DefaultCPUAllocator: can't allocate memory" RuntimeError, or a MemoryError
    (numpy, Python)."""
    if isinstance(exc, MemoryError):
        return True
    for name in ("OutOfMemoryError",):
        for mod in (torch, torch.cuda):
            oom_type = getattr(mod, name, None)
            if isinstance(oom_type, type) and isinstance(exc, oom_type):
                return True
    if not isinstance(exc, RuntimeError):
        return False
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text or "cannot allocate memory" in text


def _release(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_tiled_or_whole(
    fn: Fn,
    x: torch.Tensor,
    tile: int | None,
    overlap: int,
    multiple: int = 1,
    device: torch.device | str | None = None,
    warn: Callable[[str], None] = lambda m: None,
    fallback_tiles: Sequence[int] = FALLBACK_TILES,
    *,
    start: int | None = None,
    on_tile: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """``tiled_call`` when ``tile`` is given (the user's --tile: no fallback). Otherwise the whole
    frame -- or tiles of ``start`` when a memory plan or an earlier fallback chose them -- and on
    out-of-memory (CUDA, MPS or the CPU allocator) retry in the smaller of ``fallback_tiles``
    (sizes that would cover the whole frame are skipped), warning via ``warn``; ``on_tile`` hears
    the size that worked after a fallback, so the caller can start there next time. Re-raises the
    last out-of-memory error when every size fails."""
    if tile is not None:
        return tiled_call(fn, x, tile, overlap, multiple)
    H, W = x.shape[-2:]
    try:
        return fn(x) if start is None else tiled_call(fn, x, start, overlap, multiple)
    except (RuntimeError, MemoryError) as e:  # torch.cuda.OutOfMemoryError is a RuntimeError
        if not is_oom(e):
            raise
        last: BaseException = e.with_traceback(None)  # drop the frames holding the big tensors
    # out of the except block, so the traceback (and the tensors its frames hold) is freed
    _release(device)
    what = f"whole {W}x{H} frame" if start is None else f"{start}x{start} tile"
    for t in fallback_tiles:
        if _tile_size(H, t, multiple) >= H and _tile_size(W, t, multiple) >= W:
            continue  # this "tile" would be the whole frame again
        if start is not None and t >= start:
            continue  # not smaller than the size that just failed
        warn(f"out of memory on a {what}; retrying in {t}x{t} tiles (overlap {overlap}); pass --tile to skip this")
        try:
            out = tiled_call(fn, x, t, overlap, multiple)
        except (RuntimeError, MemoryError) as e:
            if not is_oom(e):
                raise
            last = e.with_traceback(None)
        else:
            if on_tile is not None:
                on_tile(t)
            return out
        _release(device)
        what = f"{t}x{t} tile"
    raise last
