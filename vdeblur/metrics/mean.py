"""The mean of per-frame figures, as every summary reports it (no torch, no PyAV: the training
loop on a machine without PyAV uses it too)."""

from __future__ import annotations

import math


def mean_finite(xs: list[float]) -> float | None:
    """Mean over the finite values: a frame identical to its reference (PSNR = inf) is left out,
    or one such frame would make the whole mean infinite; inf when every value is infinite, None
    when there is none.

    >>> mean_finite([30.0, float("inf"), 32.0]), mean_finite([float("inf")]), mean_finite([])
    (31.0, inf, None)
    """
    finite = [x for x in xs if math.isfinite(x)]
    if not finite:
        return math.inf if xs else None
    return math.fsum(finite) / len(finite)
