"""Options shared by several commands."""

from __future__ import annotations

import typer

SELECT = typer.Option("laplacian", "--select", help="Frame selector: laplacian, fsm (trained classifier), or none to restore every frame.")
SELECT_WEIGHTS = typer.Option(None, "--select-weights", help="Safetensors weights for --select fsm (default: its weights.toml entry).")
SELECT_EVERY = typer.Option(1, "--select-every", min=1, help="Classify only the middle frame of each group of K frames.")
THRESHOLD = typer.Option(None, "--threshold", min=0.0, help="Absolute blur-score threshold (default: adaptive).")
JSON = typer.Option(False, "--json", help="JSON lines on stdout; no progress bar.")


def parse_params(items: list[str]) -> dict[str, object]:
    """``["snr=30", "psf=motion:9:0"]`` -> ``{"snr": 30, "psf": "motion:9:0"}`` (numbers parsed)."""
    from vdeblur.errors import UsageError

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"bad --param {item!r}: expected KEY=VALUE")
        parsed: object = value
        for conv in (int, float):
            try:
                parsed = conv(value)
                break
            except ValueError:
                continue
        out[key.strip().replace("-", "_")] = parsed
    return out
