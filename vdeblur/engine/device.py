"""Pick the torch device: auto | cpu | cuda | cuda:N | mps."""

from __future__ import annotations

import re

import torch

from vdeblur.errors import UsageError


def resolve_device(name: str = "auto") -> torch.device:
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", name)
    if m:
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: CUDA is not available on this machine (try --device cpu)")
        idx = int(m.group(1) or 0)
        if idx >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
        return torch.device("cuda", idx)
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError("--device mps: Apple MPS is not available on this machine")
        return torch.device("mps")
    raise UsageError(f"bad --device {name!r}: expected auto, cpu, cuda, cuda:N or mps")
