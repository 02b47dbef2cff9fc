"""`vdeblur weights list | verify [NAME] | fetch NAME`."""

from __future__ import annotations

from typing import Optional

import typer

from vdeblur.cli import common
from vdeblur.cli.errors import handles_errors
from vdeblur.cli.output import json_line, log

app = typer.Typer(help="The weights files listed in weights.toml.", no_args_is_help=True)


@app.command("list")
@handles_errors
def list_(json: bool = common.JSON) -> None:
    """One line per weights entry: name, method, variant, size, where."""
    from vdeblur.weights.spec import load_specs

    specs = load_specs()
    for s in specs:
        if json:
            json_line(s.as_dict())
        else:
            print(f"{s.name:<24} {s.method:<12} {s.variant:<10} {s.size / 1e6:8.2f} MB  {s.where}  {s.good_for}")
    if not specs and not json:
        log("weights.toml lists no weights yet")


@app.command("verify")
@handles_errors
def verify(name: Optional[str] = typer.Argument(None, help="Entry to check (default: all)."),
           json: bool = common.JSON) -> None:
    """Check that each file is present and matches its size and sha256."""
    from vdeblur.errors import WeightsError
    from vdeblur.weights.spec import find_spec, load_specs
    from vdeblur.weights.store import locate
    from vdeblur.weights.store import verify as check

    specs = [find_spec(name)] if name else load_specs()
    bad = []
    for s in specs:
        try:
            check(s, locate(s))
            ok, why = True, None
        except WeightsError as e:
            ok, why = False, str(e)
            bad.append(e)
        if json:
            json_line({"name": s.name, "ok": ok, "error": why})
        else:
            print(f"{s.name:<24} {'ok' if ok else 'FAILED: ' + str(why)}")
    if bad:
        raise WeightsError(f"{len(bad)} of {len(specs)} weights entries failed verification")


@app.command("fetch")
@handles_errors
def fetch(name: str = typer.Argument(..., help="Entry to download into the hub cache.")) -> None:
    """Download a hub-hosted entry into the Hugging Face cache and verify it."""
    from vdeblur.weights.spec import find_spec
    from vdeblur.weights.store import locate
    from vdeblur.weights.store import verify as check

    spec = find_spec(name)
    path = locate(spec, download=True)
    check(spec, path)
    print(path)
