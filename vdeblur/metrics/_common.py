"""Shared input handling for the metrics: numpy or torch frames -> float tensors [C, H, W]."""

from __future__ import annotations

from typing import Union

import numpy as np
import torch

Frame = Union[np.ndarray, torch.Tensor]
Device = Union[str, torch.device, None]

_INT_RANGE = {torch.uint8: 255.0, torch.uint16: 65535.0}


def as_tensor(img: Frame, device: Device) -> torch.Tensor:
    """A frame as a torch tensor on ``device`` (default: where it already is; CPU for numpy)."""
    if isinstance(img, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(img))
    elif isinstance(img, torch.Tensor):
        t = img.detach()
    else:
        raise TypeError(f"expected a numpy array or a torch tensor, got {type(img).__name__}")
    return t if device is None else t.to(device)


def default_range(t: torch.Tensor) -> float:
    """255 for uint8, 65535 for uint16; other dtypes (float: [0, 1]? [0, 255]?) must say."""
    if t.dtype in _INT_RANGE:
        return _INT_RANGE[t.dtype]
    raise ValueError(f"no default data_range for {t.dtype} frames; pass data_range "
                     "(e.g. 1.0 for float frames in [0, 1], 1023 for 10-bit values)")


def prepare(
    a: Frame, b: Frame, data_range: float | None, device: Device, channel_axis: int
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Both frames as tensors [C, H, W] (still in their dtype) and the data range."""
    ta = as_tensor(a, device)
    tb = as_tensor(b, ta.device if device is None else device)
    if ta.shape != tb.shape:
        raise ValueError(f"frames differ in shape: {tuple(ta.shape)} vs {tuple(tb.shape)}")
    if data_range is None:
        if ta.dtype != tb.dtype:
            raise ValueError(f"frames differ in dtype ({ta.dtype} vs {tb.dtype}); pass data_range")
        data_range = default_range(ta)
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    if ta.dim() == 2:
        ta, tb = ta[None], tb[None]
    elif ta.dim() == 3:
        ta, tb = ta.movedim(channel_axis, 0), tb.movedim(channel_axis, 0)
    else:
        raise ValueError(f"expected a frame H x W x C (or H x W), got shape {tuple(ta.shape)}")
    return ta, tb, float(data_range)
