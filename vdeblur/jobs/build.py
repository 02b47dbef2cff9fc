"""The method, its restorer and the selector, built once per process.

A run of many files, or of many segments (in this process or in one cluster worker), builds the
method once -- its net made and its weights read and sha256-checked once -- and reuses it for
every span with the same settings. Each span gets a fresh selector (selectors keep per-video
state); it is copied from one built prototype, so fsm's weights are read once too.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Any, Callable

from vdeblur.jobs.options import RunOptions, check_options

#: the option fields that change what ``build`` makes (the rest are per file or per encode)
_METHOD_KEYS = ("method", "method_cfg", "device", "precision", "tile", "tile_overlap", "max_memory", "ensemble")
_SELECTOR_KEYS = ("select", "select_every", "threshold", "select_weights")


@dataclass
class Built:
    method: Any
    restorer: Any
    device: Any  # None: frames go from decoder to encoder untouched (identity, no metrics)
    batch: int  # frames per forward pass
    prototype: Any  # the selector of these settings, never run: selector() copies it

    def selector(self) -> Any:
        """A fresh selector for one span."""
        return copy.deepcopy(self.prototype)


_CACHE: dict[str, Built] = {}


def _key(o: RunOptions, need_metrics: bool) -> str:
    """What the built objects depend on: the settings, and which factory and weights list they
    come from (a plugin registered anew, or another VDEBLUR_WEIGHTS_TOML, builds anew)."""
    from vdeblur.methods.registry import get_spec

    d = asdict(o)
    return json.dumps([{k: d[k] for k in _METHOD_KEYS + _SELECTOR_KEYS}, o.batch, need_metrics,
                       id(get_spec(o.method).factory), os.environ.get("VDEBLUR_WEIGHTS_TOML")],
                      sort_keys=True, default=str)


def build(o: RunOptions, *, need_metrics: bool = False, warn: Callable[[str], None] = lambda m: None) -> Built:
    """The method, restorer and selector prototype of ``o`` (usage errors first: nothing is built
    before the options make sense); the same object for the same settings within a process."""
    check_options(o)  # every time: the encoder's and the file's settings are not in the key
    key = _key(o, need_metrics)
    hit = _CACHE.get(key)
    if hit is not None:
        if hasattr(hit.restorer, "warn"):
            hit.restorer.warn = warn
        return hit
    from vdeblur.methods.registry import create
    from vdeblur.select import make_selector

    method = create(o.method, **(o.method_cfg or {}))
    if getattr(method, "is_identity", False) and not need_metrics:
        device = None  # frames go from decoder to encoder: no tensors, no torch import
        restorer: Any = SimpleNamespace(method=method)
    else:
        from vdeblur.engine.device import resolve_device
        from vdeblur.engine.restorer import Restorer

        device = resolve_device(o.device)
        restorer = Restorer(method, device, o.precision, warn=warn, tile=o.tile, tile_overlap=o.tile_overlap,
                            ensemble=o.ensemble, max_memory=o.max_memory)
    selector = make_selector(o.select, threshold=o.threshold, every=o.select_every,
                             weights=o.select_weights, device=device or "cpu")
    batch = o.batch or (4 if device is not None and device.type == "cuda" else 1)
    _CACHE.clear()  # one set of settings at a time: a long-lived process does not keep old nets
    built = _CACHE[key] = Built(method, restorer, device, batch, selector)
    return built
