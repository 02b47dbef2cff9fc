"""`vdeblur methods`: the registered methods, as a table (or JSON lines).

Each neural method's variants are listed with their parameter counts, counted on networks built on
PyTorch's meta device (no memory, no weights read), and whether each variant's weights are
installed (its weights.toml entry's file is present; the file is not hashed here: `vdeblur weights
verify` does that).
"""

from __future__ import annotations

from typing import Any

from vdeblur.cli import common
from vdeblur.cli.output import json_line


def variant_names(name: str) -> tuple[list[str], str | None]:
    """(variants, default variant) of a registered network; ([], None) for any other method."""
    from vdeblur.methods.neural import find_net

    net = find_net(name)
    return (list(net.variants), net.default) if net is not None else ([], None)


def count_params(name: str, variant: str) -> int:
    """Parameters of ``name``'s network in ``variant``, built on the meta device (nothing allocated)."""
    import torch

    from vdeblur.methods.neural import make_untrained

    with torch.device("meta"):
        method, _ = make_untrained(name, variant)
    return sum(p.numel() for p in method.net.parameters())


def _installed(spec: Any) -> bool:
    from vdeblur.errors import WeightsError
    from vdeblur.weights.store import locate

    try:
        locate(spec)  # a packaged file, or a hub file already in the cache (never downloads)
    except WeightsError:
        return False
    return True


def describe(spec: Any) -> dict[str, Any]:
    """``spec.as_dict()`` plus description, variants (name, parameters, default, weights entry,
    installed) and weights_installed (the default variant's; None when the method takes no weights)."""
    from vdeblur.weights.spec import specs_for

    d = dict(spec.as_dict())
    d["description"] = spec.description
    names, default = variant_names(spec.name) if spec.kind == "neural" else ([], None)
    entries = specs_for(spec.name) if spec.weights is not None else []
    variants = []
    for v in names:
        entry = next((e for e in entries if e.variant == v), None)
        variants.append({"name": v, "params": count_params(spec.name, v), "default": v == default,
                         "weights": entry.name if entry else None,
                         "installed": bool(entry) and _installed(entry)})
    d["variants"] = variants
    if spec.weights is None:
        d["weights_installed"] = None
    elif variants:
        d["weights_installed"] = next(v["installed"] for v in variants if v["default"])
    else:
        d["weights_installed"] = any(_installed(e) for e in entries)
    return d


def human(n: int) -> str:
    """12345 -> '12.3k', 47566598 -> '47.6M'."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def _weights_cell(d: dict[str, Any]) -> str:
    if d["weights_installed"] is None:
        return "not needed"
    if d["variants"]:
        have = [v["name"] for v in d["variants"] if v["installed"]]
        lost = [v["name"] for v in d["variants"] if v["weights"] and not v["installed"]]
        cells = (["installed: " + ",".join(have)] if have else []) + (["file missing: " + ",".join(lost)] if lost else [])
        return "; ".join(cells) or "none: --weights FILE"
    return "installed" if d["weights_installed"] else "none: --weights FILE"


def methods(json: bool = common.JSON) -> None:
    """List the restoration methods: name, kind, whether it looks at neighbouring frames, its
    variants with their parameter counts (* the default), whether its weights are installed, its
    parameters (set with --psf / --iterations or --param KEY=VALUE on `vdeblur run`) and a
    description."""
    from vdeblur.methods.registry import list_methods

    rows = [describe(s) for s in list_methods()]
    if json:
        for d in rows:
            json_line(d)
        return
    every = any("every_frame" in d for d in rows)
    header = ["METHOD", "KIND", "FRAMES", *(["RESTORES"] if every else []), "VARIANTS (parameters)",
              "WEIGHTS", "PARAMS", "DESCRIPTION"]
    table = [header]
    for d in rows:
        variants = ", ".join(f"{v['name']}{'*' if v['default'] else ''} {human(v['params'])}" for v in d["variants"])
        table.append([
            d["name"], d["kind"], "temporal" if d["temporal"] else "single-frame",
            *(["every frame" if d.get("every_frame") else "selected"] if every else []),
            variants or "-", _weights_cell(d), ",".join(d["params"]) or "-", d["description"],
        ])
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
