"""Results to stdout (a table, or JSON lines), progress and logs to stderr.

No progress bar with --json or when stderr is not a terminal.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, Callable


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


def fmt_duration(seconds: float | None) -> str:
    """73.4 -> '1:13', 3725 -> '1:02:05', None -> '-'."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(round(max(seconds, 0.0)))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class RateMeter:
    """Frames per second and time left, steady from the first frames.

    The clock starts when the first frame is done, so the start-up (model load, first decode,
    warm-up) does not drag the rate down. The time per frame is an exponential moving average
    whose weight starts at 1/n (a plain mean of the first frames, so no jump) and settles at
    ``2 / (span + 1)``, which follows a change of pace (restored vs skipped stretches) within
    about ``span`` frames and smooths batches that finish several frames at once.
    """

    def __init__(self, span: int = 30, clock: Callable[[], float] = time.perf_counter):
        self.span = span
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.frames = 0
        self.started = self.clock()
        self._last: float | None = None
        self._n = 0  # intervals seen
        self._spf: float | None = None  # seconds per frame (moving average)

    def tick(self, n: int = 1) -> None:
        """``n`` more frames are done (a batch: its time is shared by its frames)."""
        now = self.clock()
        self.frames += n
        if self._last is None:  # the first frame: the clock starts here
            self._last = now
            return
        per_frame, self._last = (now - self._last) / n, now
        for _ in range(n):
            self._n += 1
            alpha = max(1.0 / self._n, 2.0 / (self.span + 1))
            self._spf = per_frame if self._spf is None else self._spf + alpha * (per_frame - self._spf)

    @property
    def fps(self) -> float | None:
        if self._spf is None:
            return None
        return math.inf if self._spf <= 0 else 1.0 / self._spf

    def eta(self, total: int | None) -> float | None:
        """Seconds left to reach ``total`` frames (None while unknown)."""
        if total is None or self._spf is None:
            return None
        return max(total - self.frames, 0) * self._spf

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started


class Progress:
    """A progress line on stderr with labelled columns: frame i/N, fps, elapsed, ETA (see
    RateMeter), or nothing (with --json, or when stderr is not a terminal); ``done`` says where the
    output went."""

    def __init__(self, enabled: bool, label: str = "restoring", clock: Callable[[], float] = time.perf_counter):
        self.enabled = enabled and sys.stderr.isatty()
        self.label = label
        self.meter = RateMeter(clock=clock)
        self.total: int | None = None
        self._p: Any = None
        self._task: Any = None

    def status(self) -> str:
        """'frame 37/300  4.2 fps  elapsed 0:09  ETA 1:02' (the labelled columns)."""
        m = self.meter
        frame = f"frame {m.frames}/{self.total}" if self.total else f"frame {m.frames}"
        fps = m.fps
        rate = "- fps" if fps is None else ("inf fps" if math.isinf(fps) else f"{fps:.1f} fps" if fps < 100 else f"{fps:.0f} fps")
        parts = [frame, rate, f"elapsed {fmt_duration(m.elapsed)}"]
        if self.total:
            parts.append(f"ETA {fmt_duration(m.eta(self.total))}")
        return "  ".join(parts)

    def start(self, total: int | None) -> None:
        self.total = total if total and total > 0 else None
        self.meter.reset()
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress as P, TextColumn

        self._p = P(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
            console=Console(file=sys.stderr), transient=True,
        )
        self._p.start()
        self._task = self._p.add_task(self.label, total=self.total, status=self.status())

    def advance(self, n: int = 1) -> None:
        """``n`` more frames are done."""
        self.meter.tick(n)
        if self._p is not None:
            self._p.update(self._task, advance=n, status=self.status())

    def stop(self) -> None:
        if self._p is not None:
            self._p.stop()
            self._p = None

    def done(self, output: str, frames: int | None = None, seconds: float | None = None) -> None:
        """One line on stderr at the end: where the output is (and how many frames, how long)."""
        self.stop()
        where = "stdout" if output == "-" else output
        extra = [f"{frames} frames" if frames is not None else "",
                 f"in {fmt_duration(seconds)}" if seconds is not None else ""]
        extra = [e for e in extra if e]
        log(f"wrote {where}" + (f" ({', '.join(extra)})" if extra else ""))
