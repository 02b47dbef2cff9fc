"""Per-frame report of one video (`run --report`, `classify --report`): a plot over time.

Rows are kept in compact typed columns; ``save`` draws stacked panels with matplotlib's Agg
canvas (no pyplot, no display) and writes the image atomically. matplotlib is imported only
when a report is checked or saved.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from typing import Any

from vdeblur.errors import OutputError, UsageError

#: above this many rows, each panel is reduced to REDUCE_BINS bins (min/max envelope and mean)
REDUCE_ABOVE = 20_000
REDUCE_BINS = 4_000

_NAN = float("nan")
_MISSING_MESSAGE = "--report needs matplotlib: pip install matplotlib"


def _import_matplotlib() -> tuple[Any, Any]:
    """(Figure, FigureCanvasAgg), or UsageError when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401  (checked first: a None entry in sys.modules must fail here)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise UsageError(_MISSING_MESSAGE) from e
    return Figure, FigureCanvasAgg


def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lower().lstrip(".")


def check_report_path(path: str) -> None:
    """Fail early, before a long run: matplotlib missing or an image type Agg cannot write
    (UsageError); a folder that is missing or not writable, or a folder given as the path
    (OutputError)."""
    Figure, FigureCanvasAgg = _import_matplotlib()
    ext = _extension(path)
    supported = FigureCanvasAgg(Figure()).get_supported_filetypes()
    if ext not in supported:
        kinds = ", ".join("." + k for k in sorted(supported))
        what = f"'.{ext}'" if ext else "no extension"
        raise UsageError(f"--report {path}: {what} is not an image type matplotlib writes (use {kinds})")
    full = os.path.abspath(path)
    folder = os.path.dirname(full)
    if os.path.isdir(full):
        raise OutputError(f"cannot write the report {path}: it is a folder")
    if not os.path.isdir(folder):
        raise OutputError(f"cannot write the report {path}: no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write the report {path}: folder {folder} is not writable")


def _float(value: Any) -> float:
    return _NAN if value is None else float(value)


def _flag(value: Any) -> int:
    """-1 for unknown (None or missing), else 0 or 1."""
    return -1 if value is None else int(bool(value))


class ReportCollector:
    """Accumulates per-frame rows in typed columns (array('d') / array('b')), so a 2-hour
    60 fps video (432k frames) takes about 22 MB. None is stored as NaN or -1."""

    _FLOATS = ("pts", "blur_score", "ms", "psnr", "psnr_input")
    _FLAGS = ("blurred", "restored")

    def __init__(self) -> None:
        self.frame = array("q")
        self.pts = array("d")
        self.blur_score = array("d")
        self.ms = array("d")
        self.psnr = array("d")
        self.psnr_input = array("d")
        self.blurred = array("b")
        self.restored = array("b")
        self.shots: list[tuple[int, int]] = []  # (first, last) frame of each shot, when known

    def set_shots(self, shots: list[tuple[int, int]]) -> None:
        """The shots the selector found (``classify``'s summary): drawn as cuts on every panel."""
        self.shots = [(int(a), int(b)) for a, b in shots]

    def add(self, row: dict) -> None:
        """Append one frame's row; any key may be missing or None (see the module's panels)."""
        frame = row.get("frame")
        self.frame.append(len(self.frame) if frame is None else int(frame))
        for key in self._FLOATS:
            getattr(self, key).append(_float(row.get(key)))
        for key in self._FLAGS:
            getattr(self, key).append(_flag(row.get(key)))

    def __len__(self) -> int:
        return len(self.frame)

    def save(self, path: str, *, title: str) -> None:
        """Draw the panels (see ``_panels``) and write ``path`` atomically; OutputError on failure."""
        _write_atomically(_figure(self, title), path)


# ---------------------------------------------------------------- data


def _np_columns(c: ReportCollector) -> dict[str, Any]:
    import numpy as np

    # copies, not views: a view would pin the arrays (BufferError on a later add) while a figure lives
    cols = {k: np.frombuffer(getattr(c, k), dtype=np.float64).copy() for k in ReportCollector._FLOATS}
    cols.update({k: np.frombuffer(getattr(c, k), dtype=np.int8).copy() for k in ReportCollector._FLAGS})
    cols["frame"] = np.frombuffer(c.frame, dtype=np.int64).copy()
    cols["shots"] = len(c.shots)
    return cols


def _panels(c: ReportCollector) -> list[str]:
    """Names of the panels ``save`` draws, top to bottom: "blur", then "restored" (run) or
    "blurred" (classify), then "ms" and "psnr" when there are values. [] for no rows."""
    if len(c) == 0:
        return []
    import numpy as np

    cols = _np_columns(c)
    panels = ["blur", "restored" if (cols["restored"] >= 0).any() else "blurred"]
    if (np.nan_to_num(cols["ms"], nan=0.0) > 0).any():
        panels.append("ms")
    if (~np.isnan(cols["psnr"])).any() or (~np.isnan(cols["psnr_input"])).any():
        panels.append("psnr")
    return panels


def _uses_time(cols: dict[str, Any]) -> bool:
    import numpy as np

    return bool(len(cols["pts"])) and bool(np.isfinite(cols["pts"]).all())


class _Binned:
    """Per-bin x (mean), and min / mean / max of a column, NaN ignored (NaN for an all-NaN bin)."""

    def __init__(self, n: int, bins: int) -> None:
        import numpy as np

        self.starts = np.unique(np.linspace(0, n, bins + 1).astype(np.int64)[:-1])
        self.sizes = np.diff(np.append(self.starts, n))

    def mean(self, v: Any) -> Any:
        import numpy as np

        finite = np.isfinite(v)
        total = np.add.reduceat(np.where(finite, v, 0.0), self.starts)
        count = np.add.reduceat(finite.astype(np.int64), self.starts)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def envelope(self, v: Any) -> tuple[Any, Any]:
        import numpy as np

        clean = np.where(np.isfinite(v), v, np.nan)
        return np.fmin.reduceat(clean, self.starts), np.fmax.reduceat(clean, self.starts)


def _finite_mean(v: Any) -> float | None:
    import numpy as np

    f = v[np.isfinite(v)]
    return float(f.mean()) if len(f) else None


def _summary(cols: dict[str, Any]) -> str:
    import numpy as np

    n = len(cols["frame"])
    parts = [f"{n} frame{'' if n == 1 else 's'}", f"{int((cols['blurred'] == 1).sum())} blurred"]
    if cols.get("shots"):
        parts.append(f"{cols['shots']} shots")
    if (cols["restored"] >= 0).any():
        parts.append(f"{int((cols['restored'] == 1).sum())} restored")
    ms = cols["ms"]
    ms = ms[np.isfinite(ms) & (ms > 0)]
    if len(ms):
        parts.append(f"mean {ms.mean():.1f} ms/frame")
    for key, label in (("psnr", "PSNR"), ("psnr_input", "input PSNR")):
        m = _finite_mean(cols[key])
        if m is not None:
            parts.append(f"mean {label} {m:.2f} dB")
        elif np.isinf(cols[key]).any():
            parts.append(f"{label} inf (identical)")
    return ", ".join(parts)


# ---------------------------------------------------------------- drawing


def _figure(c: ReportCollector, title: str) -> Any:
    """The report as a Figure on its own Agg canvas (one axes per panel of ``_panels``)."""
    Figure, FigureCanvasAgg = _import_matplotlib()
    fig = Figure(figsize=(12, 1.0 + 2.2 * max(1, len(_panels(c)))), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    _draw(fig, c, title)
    return fig


def _draw(fig: Any, c: ReportCollector, title: str) -> None:
    import numpy as np

    panels = _panels(c)
    if not panels:
        fig.suptitle(title)
        fig.text(0.5, 0.5, "no frames", ha="center", va="center", fontsize=20, color="0.4")
        return
    cols = _np_columns(c)
    n = len(c)
    x = cols["pts"] if _uses_time(cols) else cols["frame"].astype(np.float64)
    binned = _Binned(n, REDUCE_BINS) if n > REDUCE_ABOVE else None
    xb = binned.mean(x) if binned else x
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    fig.suptitle(f"{title}\n{_summary(cols)}" + (f"  [{n} frames in {len(xb)} bins]" if binned else ""),
                 fontsize=10)
    cuts = [a for a, _ in c.shots[1:] if 0 <= a < n]
    for ax, name in zip(axes, panels):
        for k, a in enumerate(cuts):  # shot boundaries: a cut before frame a
            ax.axvline(x[a], color="0.3", linestyle="--", linewidth=0.8, label="shot cut" if k == 0 else None)
        if name == "blur":
            _draw_blur(ax, cols, xb, binned)
        elif name in ("restored", "blurred"):
            _draw_strip(ax, cols[name], xb, binned, name)
        elif name == "ms":
            _draw_line(ax, np.where(cols["ms"] > 0, cols["ms"], np.nan), xb, binned,
                       "ms / frame", "C2")
        else:
            _draw_psnr(ax, cols, xb, binned)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("time (s)" if _uses_time(cols) else "frame")
    fig.align_ylabels(axes)


def _edges(xb: Any) -> Any:
    """Bin edges around sample positions: midpoints, ends extended by half a step."""
    import numpy as np

    if len(xb) == 1:
        return np.array([xb[0] - 0.5, xb[0] + 0.5])
    mid = (xb[1:] + xb[:-1]) / 2
    return np.concatenate(([xb[0] - (mid[0] - xb[0])], mid, [xb[-1] + (xb[-1] - mid[-1])]))


def _flags_as_float(flags: Any) -> Any:
    import numpy as np

    return np.where(flags >= 0, (flags == 1).astype(np.float64), np.nan)


def _shade_blurred(ax: Any, cols: dict[str, Any], xb: Any, binned: _Binned | None) -> bool:
    """Shade the x spans of blurred frames (in one collection); True when any was shaded."""
    import numpy as np

    blurred = _flags_as_float(cols["blurred"])
    mark = (binned.mean(blurred) if binned else blurred) > 0
    mark = np.nan_to_num(mark, nan=0.0).astype(bool)
    if not mark.any():
        return False
    # a step polygon in axes-fraction y: fill_between with this transform leaves y limits alone
    xs, ys = np.repeat(_edges(xb), 2)[1:-1], np.repeat(mark.astype(np.float64), 2)
    ax.fill_between(xs, 0, ys, color="C3", alpha=0.18, linewidth=0, transform=ax.get_xaxis_transform(),
                    label="blurred (any in bin)" if binned else "blurred")
    return True


def _draw_blur(ax: Any, cols: dict[str, Any], xb: Any, binned: _Binned | None) -> None:
    import numpy as np

    score = cols["blur_score"]
    shaded = _shade_blurred(ax, cols, xb, binned)
    if np.isfinite(score).any():
        _draw_line(ax, score, xb, binned, "blur score", "C0")
    else:
        ax.text(0.5, 0.5, "no blur scores", transform=ax.transAxes, ha="center", va="center", color="0.4")
        ax.set_ylabel("blur score")
    if shaded or ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8)


def _draw_line(ax: Any, v: Any, xb: Any, binned: _Binned | None, label: str, color: str) -> None:
    import numpy as np

    v = np.where(np.isfinite(v), v, np.nan)
    if binned:
        lo, hi = binned.envelope(v)
        ax.fill_between(xb, lo, hi, color=color, alpha=0.25, linewidth=0, label="min-max")
        ax.plot(xb, binned.mean(v), color=color, linewidth=0.8, label="mean")
    else:
        ax.plot(xb, v, color=color, linewidth=0.8, marker="." if len(v) <= 300 else None, markersize=3)
    ax.set_ylabel(label)


def _draw_strip(ax: Any, flags: Any, xb: Any, binned: _Binned | None, name: str) -> None:
    import numpy as np

    v = _flags_as_float(flags)
    if binned:
        v = binned.mean(v)
    color = "C1" if name == "restored" else "C3"
    v = np.nan_to_num(v, nan=0.0)
    edges = _edges(xb)
    ax.stairs(v, edges, fill=True, color=color, alpha=0.35, linewidth=0)
    ax.stairs(v, edges, color=color, linewidth=0.8)
    ax.set_ylim(-0.05, 1.05)
    if binned:
        ax.set_yticks([0, 0.5, 1])
        ax.set_ylabel(f"{name}\n(share per bin)")
    else:
        ax.set_yticks([0, 1])
        ax.set_yticklabels(["skipped", "restored"] if name == "restored" else ["sharp", "blurred"])
        ax.set_ylabel(name)


def _draw_psnr(ax: Any, cols: dict[str, Any], xb: Any, binned: _Binned | None) -> None:
    """Output and input PSNR vs the reference; inf (identical frames) is dropped and counted."""
    import numpy as np

    drawn = False
    for key, label, color in (("psnr", "output", "C2"), ("psnr_input", "input", "0.5")):
        v = cols[key]
        if np.isnan(v).all():
            continue
        inf = int(np.isinf(v).sum())
        if inf:
            label += f" ({inf} identical, not drawn)"
        v = np.where(np.isfinite(v), v, np.nan)
        if np.isnan(v).all():
            ax.plot([], [], color=color, label=label)
            continue
        if binned:
            lo, hi = binned.envelope(v)
            ax.fill_between(xb, lo, hi, color=color, alpha=0.2, linewidth=0)
            v = binned.mean(v)
        ax.plot(xb, v, color=color, linewidth=0.8, label=label)
        drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "all frames identical to the reference (PSNR inf)", transform=ax.transAxes,
                ha="center", va="center", color="0.4")
    ax.set_ylabel("PSNR (dB)")
    ax.legend(loc="lower right", fontsize=8)


# ---------------------------------------------------------------- writing


def _umask() -> int:
    """The process umask, read without changing it (Linux); 0o022 elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _write_atomically(fig: Any, path: str) -> None:
    full = os.path.abspath(path)
    folder, base = os.path.split(full)
    stem, ext = os.path.splitext(base)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".partial{ext}", dir=folder)
    except OSError as e:
        raise OutputError(f"cannot write the report {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format=_extension(path))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, full)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, Exception):
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
            raise OutputError(f"cannot write the report {path}: {reason}") from e
        raise


__all__ = ["ReportCollector", "check_report_path", "REDUCE_ABOVE", "REDUCE_BINS"]
