"""Options shared by several commands."""

from __future__ import annotations

from typing import Callable

import typer

# ------------------------------------------------------------------ completion of option values
# Each completer takes what the user typed so far and returns (value, help) pairs; the shells call
# back into `vdeblur` for them (completions/). A completer never fails: on any error it offers nothing.

Candidates = list[tuple[str, str]]


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def _safe(fn: Callable[[], Candidates]) -> Callable[[str], Candidates]:
    def complete(incomplete: str) -> Candidates:
        try:
            return [(v, _short(h)) for v, h in fn() if v.startswith(incomplete)]
        except Exception:  # noqa: BLE001 - a completion must never print a traceback
            return []

    complete.__name__ = fn.__name__
    return complete


@_safe
def complete_method() -> Candidates:
    """The registered methods (built-in and plugins), with their kind."""
    from vdeblur.methods.registry import list_methods

    return [(s.name, f"{s.kind}: {s.description}") for s in list_methods()]


@_safe
def complete_trainable() -> Candidates:
    """What `vdeblur train --method` takes: the neural methods and fsm (the frame selector)."""
    from vdeblur.methods.registry import list_methods

    return [(s.name, s.description) for s in list_methods() if s.kind == "neural"] + [
        ("fsm", "DeblurNet's frame selection module (the trained selector)")]


def _selectors() -> Candidates:
    from importlib.metadata import entry_points

    from vdeblur.select import SELECTORS

    helps = {"laplacian": "variance of the Laplacian, adaptive threshold", "fsm": "trained classifier",
             "none": "restore every frame"}
    plugins = [(ep.name, "plugin") for ep in entry_points(group="vdeblur.selectors") if ep.name not in SELECTORS]
    return [(n, helps.get(n, "")) for n in SELECTORS] + plugins


complete_selector = _safe(_selectors)


@_safe
def complete_device() -> Candidates:
    """auto, cpu, and the accelerators this machine has."""
    import torch

    out = [("auto", "a GPU when there is one, else the CPU"), ("cpu", "the CPU")]
    n = torch.cuda.device_count()
    if n:
        out.append(("cuda", torch.cuda.get_device_name(0)))
        out += [(f"cuda:{i}", torch.cuda.get_device_name(i)) for i in range(n)]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append(("mps", "Apple GPU"))
    return out


@_safe
def complete_dataset() -> Candidates:
    from vdeblur.data.datasets import KINDS

    return [(k, "") for k in KINDS]


@_safe
def complete_train_dataset() -> Candidates:
    """`vdeblur train --dataset`: the dataset kinds, and photos (pairs made on the fly)."""
    from vdeblur.data.datasets import KINDS

    return [(k, "") for k in KINDS] + [("photos", "pairs made on the fly from photographs")]


@_safe
def complete_codec() -> Candidates:
    """The video encoders of this FFmpeg (PyAV)."""
    import av

    out = []
    for name in sorted(av.codecs_available):
        try:
            codec = av.Codec(name, "w")
        except Exception:  # noqa: BLE001 - a decoder only
            continue
        if codec.type == "video":
            out.append((name, codec.long_name))
    return out


def comma_list(complete: Callable[[str], Candidates]) -> Callable[[str], Candidates]:
    """Complete the last item of a comma list (``--methods unsharp,wi`` -> ``unsharp,wiener``)."""

    def complete_list(incomplete: str) -> Candidates:
        head, sep, last = incomplete.rpartition(",")
        done = set(head.split(",")) if sep else set()
        return [(head + sep + v, h) for v, h in complete(last) if v not in done]

    return complete_list


SELECT = typer.Option("laplacian", "--select", autocompletion=complete_selector, help="Frame selector: laplacian, fsm (trained classifier), or none to restore every frame.")
SELECT_WEIGHTS = typer.Option(None, "--select-weights", help="Safetensors weights for --select fsm (default: its weights.toml entry).")
SELECT_EVERY = typer.Option(1, "--select-every", min=1, help="Classify only the middle frame of each group of K frames.")
THRESHOLD = typer.Option(None, "--threshold", min=0.0, help="Absolute threshold instead of the adaptive rule: a blur score (laplacian: blurred below it) or a probability (fsm: blurred above it).")
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
