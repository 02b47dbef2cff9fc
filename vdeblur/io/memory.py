"""Keep freed frame-sized buffers in the process instead of handing them back to the kernel.

Every frame allocates and frees buffers of the frame's size or more: the RGB and its float
copies in the colour conversion (io/colour.py), torch's tensors in the restorer, and the
unfolded columns of a convolution (a 720p frame's 11-tap blur in ``unsharp``: about 120 MB, twice).
glibc's malloc serves blocks over its adaptive threshold (at most 32 MiB) with ``mmap`` and
gives them back on ``free``, and trims its heap when its top is free, so each frame's buffers
start again as fresh pages that the kernel faults in and zeroes: ``unsharp`` on one 720p frame
took 58,000 page faults, 45 ms user and 145 ms system time on one thread, against 0 faults and
44 ms with the settings here (benchmarks/pipeline_cost.py times the whole run both ways).
Blocks up to 1 GiB come from the heap and the heap is trimmed only above 1 GiB free, so the
pages stay mapped and are reused frame after frame. The results are the same bytes. The cost:
memory a run has used at its peak stays with the process (up to 1 GiB a heap) until it exits,
instead of going back to the system between frames; the peak itself is unchanged.

``VDEBLUR_MALLOC=default`` leaves glibc's settings alone. Elsewhere than glibc, nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = 1 << 30

_done: bool | None = None


def keep_frame_buffers() -> bool:
    """Tune glibc's malloc for frame-sized buffers (once per process); True if it was done."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("VDEBLUR_MALLOC", "").lower() == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done
