"""`vdeblur methods`: the registered methods."""

from __future__ import annotations


from vdeblur.cli import common
from vdeblur.cli.output import json_line


def methods(json: bool = common.JSON) -> None:
    """List the restoration methods, one line each: name, kind, temporal, parameters (set with
    --psf / --iterations or --param KEY=VALUE on `vdeblur run`), description."""
    from vdeblur.methods.registry import list_methods

    specs = list_methods()
    for s in specs:
        if json:
            json_line(s.as_dict())
        else:
            params = ",".join(s.params) or "-"
            print(f"{s.name:<18} {s.kind:<12} {'temporal' if s.temporal else 'single-frame':<12} {params:<24} {s.description}")
