"""Memory budget of a run (``--max-memory``): how much memory there is to use, how much a method
needs per pixel, and the tile size that keeps a frame inside the budget before anything big is
allocated.

* :func:`parse_size` reads ``--max-memory`` values ("2G", "1.5GiB", "800M", "3000000000").
* :func:`available_bytes` is what the process can still get: on CUDA the device's free memory; on
  the CPU the least of MemAvailable (``/proc/meminfo``, or psutil where there is no procfs), what
  the cgroup allows (``memory.max - memory.current``) and what the address-space limit leaves
  (``ulimit -v``: ``RLIMIT_AS`` less the current ``VmSize``). The default budget is
  :data:`DEFAULT_SHARE` of it.
* :func:`probe_bytes_per_pixel` runs a method once on a small crop under a dispatch mode that
  counts the bytes of every tensor an operator returns while it is alive, and takes the peak per
  pixel. Scratch memory inside an operator (oneDNN's channel-blocked copies, im2col columns) is
  not seen, so the CPU figure is multiplied by :data:`CPU_SCRATCH_FACTOR`; the out-of-memory
  fallback of ``tiling.run_tiled_or_whole`` catches what the estimate still misses.
"""

from __future__ import annotations

import math
import os
import re
import resource
import weakref
from typing import TYPE_CHECKING, Any, Callable

from vdeblur.errors import UsageError

#: the share of the available memory a run plans to use when --max-memory is not given
DEFAULT_SHARE = 0.5
#: allowance for the scratch buffers an operator allocates and frees inside itself (CPU)
CPU_SCRATCH_FACTOR = 2.0
#: bytes a pixel of a frame can take in the worst case (a large network, fp32): below
#: ``budget / PESSIMISTIC_BPP`` pixels a frame fits whatever the method, and no probe is run
PESSIMISTIC_BPP = 4096
#: side of the crop a method is probed on
PROBE_SIDE = 128



def describe_oom(exc: BaseException) -> str:
    """A short reason from an out-of-memory error: "an allocation of 549.3 MiB failed" where the
    message says the size, else its first line."""
    text = str(exc)
    m = re.search(r"(?:tried to allocate|Tried to allocate)\s+([0-9.]+)\s*(bytes|[KMGT]i?B)?", text)
    if m:
        unit = (m.group(2) or "bytes").lower()
        scale = {"bytes": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
                 "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}.get(unit, 1)
        return f"an allocation of {format_size(float(m.group(1)) * scale)} failed"
    if isinstance(exc, MemoryError) and not text:
        return "MemoryError"
    return text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__


if TYPE_CHECKING:
    import torch

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str | int | float) -> int:
    """Bytes from "2G", "1.5GiB", "512m", "800MB", "3000000000" (K/M/G/T are powers of 1024)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*", str(text), re.IGNORECASE)
        if m is None or (m.group(3) and m.group(3).lower() == "ib" and not m.group(2)):
            raise UsageError(f"bad --max-memory {text!r}: expected a size such as 2G, 1.5GiB, 800M or a byte count")
        value, unit = float(m.group(1)), m.group(2).lower()
    size = int(value * _UNITS[unit])
    if size <= 0 or not math.isfinite(value):
        raise UsageError(f"bad --max-memory {text!r}: must be more than 0 bytes")
    return size


def format_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def _proc_kb(path: str, key: str) -> int | None:
    """Bytes from a ``Key:   N kB`` line of a /proc file (None where there is none)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _meminfo_available() -> int | None:
    found = _proc_kb("/proc/meminfo", "MemAvailable")
    if found is not None:
        return found
    try:
        import psutil  # optional: not a dependency
    except ImportError:
        return None
    try:
        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - an unknown figure, not an error
        return None


def _cgroup_available() -> int | None:
    """What the cgroup (v2) still allows, when it sets a limit."""
    try:
        with open("/proc/self/cgroup") as f:
            path = next((ln.strip().split("::", 1)[1] for ln in f if ln.startswith("0::")), None)
        if path is None:
            return None
        base = os.path.join("/sys/fs/cgroup", path.lstrip("/"))
        with open(os.path.join(base, "memory.max")) as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open(os.path.join(base, "memory.current")) as f:
            current = int(f.read().strip())
        return max(0, int(limit) - current)
    except (OSError, ValueError, StopIteration, IndexError):
        return None


def _vm_size() -> int | None:
    return _proc_kb("/proc/self/status", "VmSize")


def _address_space_left() -> int | None:
    """What ``ulimit -v`` (RLIMIT_AS) still leaves this process, when it is set."""
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    except (OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    used = _vm_size()
    return None if used is None else max(0, soft - used)


def available_bytes(device: torch.device | str | None) -> int | None:
    """Bytes the process can still allocate on ``device``; None when unknown (e.g. MPS)."""
    import torch

    device = torch.device(device or "cpu")
    if device.type == "cuda":
        try:
            free, _total = torch.cuda.mem_get_info(device)
        except (RuntimeError, AssertionError, ValueError):
            return None
        return int(free)
    if device.type != "cpu":
        return None
    known = [v for v in (_meminfo_available(), _cgroup_available(), _address_space_left()) if v is not None]
    return min(known) if known else None


def default_budget(device: torch.device | str | None) -> int | None:
    """:data:`DEFAULT_SHARE` of :func:`available_bytes`; None when that is unknown."""
    free = available_bytes(device)
    return None if free is None else int(free * DEFAULT_SHARE)


def _peak_tracker() -> Any:
    """A dispatch mode that counts the bytes of the storages operators return while they are
    alive, and keeps the peak (``.peak``)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class _PeakTracker(TorchDispatchMode):
        """Counts the bytes of the storages operators return while they are alive; keeps the peak."""

        def __init__(self) -> None:
            super().__init__()
            self.live: dict[tuple[str, int], list[int]] = {}  # (device, storage ptr) -> [bytes, refs]
            self.now = 0
            self.peak = 0

        def hold(self, t: torch.Tensor) -> None:
            """Count ``t`` (the probe's input) as alive throughout."""
            st = t.untyped_storage()
            self.live[(str(t.device), st.data_ptr())] = [st.nbytes(), 1 << 30]
            self.now += st.nbytes()
            self.peak = max(self.peak, self.now)

        def _release(self, key: tuple[str, int]) -> None:
            entry = self.live.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] <= 0:
                self.now -= entry[0]
                del self.live[key]

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            for t in tree_leaves(out):
                if not isinstance(t, torch.Tensor) or t.device.type == "meta":
                    continue
                try:
                    st = t.untyped_storage()
                    key = (str(t.device), st.data_ptr())
                    nbytes = st.nbytes()
                except (RuntimeError, NotImplementedError):
                    continue
                if key in self.live:
                    self.live[key][1] += 1
                else:
                    self.live[key] = [nbytes, 1]
                    self.now += nbytes
                    self.peak = max(self.peak, self.now)
                weakref.finalize(t, self._release, key)
            return out

    return _PeakTracker()


def probe_bytes_per_pixel(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, side: int = PROBE_SIDE,
                          multiple: int = 1) -> float:
    """Peak bytes per pixel of ``fn`` on a ``side`` x ``side`` crop of ``x`` ([..., H, W]), per
    batch item: the peak of the tensors alive during the call (the crop itself included), times
    :data:`CPU_SCRATCH_FACTOR` on the CPU."""
    m = max(1, int(multiple))
    h = min(x.shape[-2], max(m, side // m * m))
    w = min(x.shape[-1], max(m, side // m * m))
    crop = x[..., :h, :w].contiguous()
    import torch

    tracker = _peak_tracker()
    tracker.hold(crop)
    with torch.inference_mode(), tracker:
        out = fn(crop)
        del out
    batch = x.shape[0] if x.dim() >= 4 else 1
    peak = tracker.peak
    factor = CPU_SCRATCH_FACTOR if x.device.type == "cpu" else 1.0
    return factor * peak / (h * w * batch)


def engine_bytes_per_pixel(window: int, batch: int) -> float:
    """Whole-frame bytes a pixel costs outside the method while a batch is restored in tiles: the
    decoded windows, their stacked and padded integer copies (int32 for 16-bit frames), the
    float32 blend accumulator and the output's integer copies. (A tile's float copy is counted
    in the method's probe.)"""
    return batch * (window * (2 + 4 + 4) * 3 + (4 + 2 + 2) * 3)


def plan_tile(h: int, w: int, batch: int, window: int, budget: int | None,
              probe: Callable[[], float], granule: int = 64, min_tile: int = 64) -> int | None:
    """A tile size that keeps restoring a batch of h x w frames under ``budget`` bytes, or None
    when whole frames fit (or the budget is unknown). ``probe()`` gives the method's bytes per
    pixel per batch item; it is called only when a frame could possibly not fit."""
    if budget is None:
        return None
    pixels = h * w
    if pixels * batch * (PESSIMISTIC_BPP + engine_bytes_per_pixel(window, 1)) <= budget:
        return None  # fits whatever the method: no probe
    # the whole-frame buffers are needed however the frame is tiled: the method's tiles get what
    # they leave, and at least a quarter of the budget
    left = max(budget - pixels * engine_bytes_per_pixel(window, batch), budget // 4)
    per_pixel = probe() * batch
    if per_pixel <= 0 or pixels * per_pixel <= left:
        return None
    side = int(math.sqrt(max(left, 0) / per_pixel))
    return max(min_tile, side // granule * granule)
