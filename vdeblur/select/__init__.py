"""Sharp/blurred frame selection: restore only the frames that need it.

Nahli et al., "Towards Frames Selection for Fast Video Deblurring", sec. III-B/III-C: a naturally
blurred video is only partially blurred, so a cheap classifier picks the blurred frames and only
those go through the (expensive) deblurring; sec. IV-E.3 / Table 9 adds a batch mode that
classifies only the middle frame of each batch of 15 frames. Here the classifier is the variance
of the Laplacian against an adaptive, per-video threshold (``LaplacianSelector``), streaming;
when the input is a whole file, ``context.prepass`` scores every frame first and labels it with
the whole clip in view, shot by shot (``context.ContextSelector`` replays those labels).
"""

from __future__ import annotations

from numbers import Integral, Real

from vdeblur.errors import UsageError
from vdeblur.select.laplacian import (
    Decision, LaplacianSelector, NoSelector, Selector, blur_score, value_range,
)

__all__ = ["Decision", "LaplacianSelector", "NoSelector", "SELECTORS", "Selector", "blur_score",
           "make_selector", "selector_input", "value_range"]

SELECTORS = ("laplacian", "fsm", "none")


def make_selector(
    name: str, threshold: float | None = None, every: int = 1, *, total: int | None = None,
    weights: str | None = None, variant: str | None = None, device: object = "cpu",
) -> Selector:
    """The selector called ``name`` ("laplacian", "fsm" or "none").

    ``fsm``: DeblurNet's trained Frame Selection Module (select/fsm.py), judged against a window
    of the stream as the Laplacian rule is (``FSMStreamSelector``); with ``threshold`` (a
    probability) frame by frame instead; ``weights`` a safetensors file (default: weights.toml's).

    ``threshold``: absolute blur_score below which a frame is blurred (default: adaptive).
    ``every``: classify only the middle frame of each group of ``every`` frames (Table 9 uses 15).
    ``total``: the frame count when known, so a short last group is scored at its own middle.
    Raises UsageError on an unknown name, ``every < 1`` or a negative threshold.
    """
    if isinstance(every, bool) or not isinstance(every, Integral) or every < 1:
        raise UsageError(f"frame selection every K frames needs an integer K >= 1, got {every!r}")
    if threshold is not None and not (isinstance(threshold, Real) and threshold >= 0):
        raise UsageError(f"blur threshold must be a number >= 0, got {threshold!r}")
    key = name.strip().lower()
    if key == "laplacian":
        thr = None if threshold is None else float(threshold)
        return LaplacianSelector(threshold=thr, every=int(every), total=total)
    if key == "none":
        return NoSelector()
    if key == "fsm":
        from vdeblur.select.fsm import FSMStreamSelector, load_fsm

        fsm = load_fsm(weights, device, int(every), threshold, variant or "small")
        return fsm if threshold is not None else FSMStreamSelector(fsm, int(every), total)
    plugins = _plugins()
    if key in plugins:
        return plugins[key](threshold=threshold, every=int(every))
    known = ", ".join(list(SELECTORS) + sorted(plugins))
    raise UsageError(f"unknown frame selector {name!r} (choose from: {known})")


def _plugins() -> dict[str, object]:
    """Selectors from other packages: entry points in the group ``vdeblur.selectors``, each a
    factory ``(threshold, every) -> selector`` with needs_score / push / flush / lookahead."""
    from importlib.metadata import entry_points

    found = {}
    for ep in entry_points(group="vdeblur.selectors"):
        try:
            found[ep.name.lower()] = ep.load()
        except Exception as e:  # noqa: BLE001 - a broken plugin is named, in one line
            raise UsageError(f"selector plugin {ep.name!r} ({ep.value}) failed to load: {e}") from e
    return found


def selector_input(sel: Selector, frame: object) -> object:
    """What ``sel.push`` takes for ``frame``: None when unscored, RGB for selectors that say
    ``wants = "rgb"`` (fsm), else the luma plane."""
    if not sel.needs_score(frame.index):
        return None
    return frame.rgb() if getattr(sel, "wants", "luma") == "rgb" else frame.luma()
