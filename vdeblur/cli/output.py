"""Results to stdout (a table, or JSON lines), progress and logs to stderr.

No progress bar with --json or when stderr is not a terminal.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 4) if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    return v


def json_line(obj: dict[str, Any]) -> None:
    """One JSON object on stdout (non-finite floats, such as the PSNR of identical frames, as null)."""
    sys.stdout.write(json.dumps(_clean(obj)) + "\n")
    sys.stdout.flush()


def log(msg: str) -> None:
    print(f"vdeblur: {msg}", file=sys.stderr)


def fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if math.isfinite(v) else "inf"
    return str(v)


def print_table(title: str, columns: list[str], rows: list[list[Any]], to_stderr: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="right" if c not in ("method", "name", "kind", "description") else "left")
    for r in rows:
        t.add_row(*[fmt(x) for x in r])
    Console(file=sys.stderr if to_stderr else sys.stdout, width=120).print(t)


class Progress:
    """A rich progress bar on stderr (frame i/N, fps, ETA), or nothing."""

    def __init__(self, enabled: bool, label: str = "restoring"):
        self.enabled = enabled and sys.stderr.isatty()
        self.label = label
        self._p: Any = None
        self._task: Any = None

    def start(self, total: int | None) -> None:
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as P, TextColumn, TimeRemainingColumn

        self._p = P(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[fps]:.1f} fps"), TimeRemainingColumn(),
            console=Console(file=sys.stderr), transient=True,
        )
        self._p.start()
        self._task = self._p.add_task(self.label, total=total, fps=0.0)

    def advance(self, fps: float) -> None:
        if self._p is not None:
            self._p.update(self._task, advance=1, fps=fps)

    def stop(self) -> None:
        if self._p is not None:
            self._p.stop()
            self._p = None
