"""The Frame Selection Module as a selector (deblurnet-frame-selection.md III-B, Table 3).

A trained ``DeblurNetFSM`` classifies each frame (or, with ``every=K``, the middle frame of each
group of K, the batch mode of IV-E.3 / Table 9) as sharp or blurred. Frames are classified at an
analysis scale (shorter side ``analysis_side``, default 360 px, the scale the selector is trained
at) on the engine's device. Needs trained weights: a weights.toml entry for method ``fsm`` or a
safetensors file; without them it refuses, like every neural method.

Whole-file context (issue 14): when the input is a file, :func:`prepass_fsm` scores every frame
first (the fsm's logit on the RGB frame, and the Laplacian pre-pass's features of
``select/context.py``: shots, the relative detail), then labels each shot with the whole clip in
view (:func:`label_fsm`). A classifier's absolute verdict depends on the content (a soft, flat or
noisy shot looks "blurred" to it); within a shot the content is the same, so a frame is judged
against the shot's frames near it: blurred when its logit, less ``LAP_WEIGHT`` x the log of the
Laplacian rule's relative detail over its shot's line (so a frame that lost detail counts more
blurred), is ``MARGIN`` above their level (``LOW_PERCENTILE`` of the logits within
``context.RADIUS``) and its own logit is above ``FLOOR``, or when the logit alone is above
``SURE`` (a shot blurred throughout). A flat shot is left sharp, as by the Laplacian rule, and
runs grow as they do there (``context.join_runs``: a frame next to a blurred one under the
shot's upper line is blurred too). The fsm is trained (train/loop.py ``train_fsm``, photos) to
rank a view's blurred frame above its still one, which is what this rule uses.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vdeblur.select.laplacian import _FLAT, Decision, LaplacianSelector


class FSMSelector:
    wants = "rgb"  # the engine hands this selector RGB frames, not luma

    def __init__(self, net: torch.nn.Module, device: torch.device | str = "cpu", every: int = 1,
                 threshold: float | None = None, analysis_side: int = 360):
        self.net = net.to(device).eval()
        self.device = torch.device(device)
        self.every = every
        self.threshold = 0.5 if threshold is None else threshold
        self.analysis_side = analysis_side
        self.lookahead = (every - 1) // 2
        self._waiting: list[int] = []  # frames of the current group waiting for its middle
        self._label: tuple[float | None, bool] | None = None  # the current group's label
        self._last: np.ndarray | None = None  # the current group's latest frame (for a short last group)

    def needs_score(self, index: int) -> bool:
        return True  # keep the latest frame of the group, in case the stream ends before its middle

    def probability(self, rgb: np.ndarray) -> float:
        return float(1 / (1 + np.exp(-self.logit(rgb))))

    def logit(self, rgb: np.ndarray) -> float:
        """The classifier's log-odds of "blurred" for one RGB frame (at the analysis scale)."""
        peak = 65535.0 if rgb.dtype == np.uint16 else 255.0
        x = torch.from_numpy(rgb.astype(np.float32) / peak).permute(2, 0, 1)[None].to(self.device)
        size = self._analysis_size(*x.shape[-2:])
        if size is not None:
            x = F.interpolate(x, size=size, mode="area")
        with torch.inference_mode():
            return float(self.net(x).item())

    def logit_frame(self, frame: Any) -> float:
        """:meth:`logit` of a decoded ``io.reader.Frame``: a frame larger than the analysis scale
        is converted to RGB at that scale (``io.colour.frame_to_rgb_scaled``: its planes scaled,
        then converted), not at full size and scaled after (a 720p frame's full conversion cost
        as much as the network)."""
        vf = getattr(frame, "av_frame", None)
        if vf is not None and frame.array is None and not frame.high_depth:
            size = self._analysis_size(vf.height, vf.width)
            if size is not None:
                from vdeblur.io.colour import frame_to_rgb_scaled

                return self.logit(frame_to_rgb_scaled(vf, size[1], size[0], frame.colour))
        return self.logit(frame.rgb())

    def _analysis_size(self, h: int, w: int) -> tuple[int, int] | None:
        """(height, width) at the analysis scale (shorter side ``analysis_side``, at least 17 px),
        or None for a frame no larger."""
        s = self.analysis_side / min(h, w)
        return (max(17, round(h * s)), max(17, round(w * s))) if s < 1 else None

    def push(self, index: int, rgb: np.ndarray | None) -> list[Decision]:
        pos = index % self.every
        if pos == 0:
            self._label, self._waiting = None, []
        self._last = rgb
        if self._label is None and pos == (self.every - 1) // 2:
            p = self.probability(rgb)
            self._label = (p, p > self.threshold)
            out = [Decision(i, None, self._label[1]) for i in self._waiting]
            self._waiting = []
            return out + [Decision(index, p, self._label[1])]
        if self._label is not None:
            return [Decision(index, None, self._label[1])]
        self._waiting.append(index)
        return []

    def flush(self) -> list[Decision]:
        if not self._waiting:
            return []
        p = self.probability(self._last)
        out = [Decision(i, p if i == self._waiting[-1] else None, p > self.threshold) for i in self._waiting]
        self._waiting = []
        return out


#: :class:`FSMStreamSelector`'s rule, chosen on the columns benchmarks/select_dev.py keeps of its
#: development clips (validation and training photographs, synth_clip; the window, shots and clean
#: detail modelled on them). The selector itself, streamed (benchmarks/select_accuracy.py --mode
#: stream, 160 clips of the validation photographs and 24 training ones): mean accuracy 0.961,
#: 41 clips under 95 % (the Laplacian streaming rule 0.955 and 47; the fsm's absolute verdict
#: 0.79 on the model's columns)
STREAM_MARGIN, STREAM_PERCENTILE, STREAM_LAP_WEIGHT = 0.0, 50.0, 2.0


class FSMStreamSelector(LaplacianSelector):
    """``--select fsm`` on a stream (a pipe, a piece): the Laplacian streaming rule's window
    (``laplacian.RADIUS`` frames ahead, twice that back), shots and clean detail, with the fsm's
    logit judged as :func:`label_fsm` judges it on a file: blurred when the logit, less
    ``STREAM_LAP_WEIGHT`` x log(clean detail / the window's sharp level / the ratio), is above
    the ``STREAM_PERCENTILE`` of the window's logits (the same shot's) by ``STREAM_MARGIN``; a
    flat window is sharp. The classifier's absolute verdict (``FSMSelector``, which
    ``--threshold`` still gives) called three quarters of the blurred frames of the hard clips
    sharp. ``every=K``: the middles of groups, as the Laplacian selector's batch mode. Decisions
    show the fsm's probability."""

    wants = "rgb"

    def __init__(self, fsm: FSMSelector, every: int = 1, total: int | None = None):
        super().__init__(every=every, total=total)
        self.fsm = fsm
        self._logits: dict[int, float] = {}

    def push(self, index: int, rgb: np.ndarray | None = None) -> list[Decision]:
        gray = None
        if rgb is not None and self.needs_score(index):
            self._logits[index] = self.fsm.logit(rgb)
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        return self._shown(super().push(index, gray))

    def flush(self) -> list[Decision]:
        return self._shown(super().flush())

    def _shown(self, decisions: list[Decision]) -> list[Decision]:
        """The decisions with the fsm's probability for score; logits the window has left dropped."""
        out = [Decision(d.index, None if d.score is None else float(1 / (1 + np.exp(-self._logits[d.index]))),
                        d.blurred) for d in decisions]
        oldest = self._scores[0][0] if self._scores else self._pushed + 1
        for i in [i for i in self._logits if i < oldest and i < self._next]:
            del self._logits[i]
        return out

    def _blurred(self, row: tuple, window: list[tuple]) -> bool:
        level = self._level(window)
        if level <= _FLAT:
            return False
        ref = float(np.percentile([self._logits[x[0]] for x in window], STREAM_PERCENTILE))
        rel = max(row[2], 1e-3) / max(level, 1e-3)
        return self._logits[row[0]] - ref - STREAM_LAP_WEIGHT * math.log(rel / self.ratio) > STREAM_MARGIN


def load_fsm(weights: str | None, device: Any, every: int, threshold: float | None,
             variant: str = "small") -> FSMSelector:
    """The FSM selector with its trained weights (weights.toml entry 'fsm', or ``weights``)."""
    from vdeblur.methods.archs.deblurnet import FSM_VARIANTS, DeblurNetFSM
    from vdeblur.methods.neural import load_into

    net = DeblurNetFSM(**FSM_VARIANTS[variant])
    load_into(net, "fsm", variant, weights)
    return FSMSelector(net, device, every=every, threshold=threshold)


#: The per-shot rule of :func:`label_fsm` (logits, i.e. log-odds of "blurred"), chosen with
#: benchmarks/select_dev.py --sweep-fsm on the clips context.py's rule was chosen on (168 from
#: validation and training photographs, 128 from 33 test photographs that README's table does not
#: use, synth_clip; fewest clips under 95 %, then accuracy): fsm-small of weights.toml, margin
#: 0.4, LAP_WEIGHT 5 and the logits' median gave clips under 95 % 13 and 13, accuracy 0.988 and
#: 0.978, synth_clip 0.999 (the rule before, margin 0.25, LAP_WEIGHT 2, the 25th percentile, with
#: the Laplacian rule before: 16 and 16, 0.986 and 0.975, synth_clip 0.994). With the Laplacian
#: rule's coded types and each shot's own line (context.py), swept again on the same clips encoded
#: again (no false positive on their all-sharp clips as a condition): margin 0, LAP_WEIGHT 8 and
#: the logits' median give 8 and 12 clips under 95 %, accuracy 0.991 and 0.981, synth_clip 0.998,
#: where margin 0.4 and LAP_WEIGHT 5 gave 9 and 14. On a file the Laplacian rule's relative detail
#: weighs most; the fsm's logit moves the frames near the line. FLOOR and SURE are off: neither
#: helped. The Laplacian rule's hysteresis (context.join_runs), on the same clips: clips under 95 %
#: 8 -> 9 and 12 -> 10, the same photographs' clips at 640x360 13 -> 11 and 19 -> 15, synth_clip
#: 0 -> 1 (its worst 0.896), no false positive on the all-sharp clips.
MARGIN, FLOOR, SURE, LOW_PERCENTILE = 0.0, -math.inf, math.inf, 50.0
#: weight of the Laplacian pre-pass's relative detail, log(relative / the shot's line), taken off
#: the fsm's logit difference (0: the fsm alone)
LAP_WEIGHT = 8.0


def label_fsm(logits: np.ndarray, context: Any, *, margin: float = MARGIN, floor: float = FLOOR,
              sure: float = SURE, percentile: float = LOW_PERCENTILE, radius: int | None = None,
              lap_weight: float = LAP_WEIGHT, threshold: float | None = None, join: bool = True) -> Any:
    """Labels of a whole clip from its fsm logits and the Laplacian pre-pass's
    ``context.Labels`` (its shots; module docstring for the rule). ``threshold`` (a probability):
    the absolute rule instead, ``logit > log(t / (1 - t))`` frame by frame. ``join``: runs grow
    by the Laplacian rule's hysteresis (``context.join_runs``, each shot's ``join`` line). Returns
    a ``context.Labels`` whose scores are the fsm's probabilities."""
    from vdeblur.select.context import FLAT_SHOT, RADIUS, Labels, join_runs

    z = np.asarray(logits, np.float64)
    n = len(z)
    radius = RADIUS if radius is None else radius
    blurred = np.zeros(n, bool)
    if threshold is not None:
        t = min(max(float(threshold), 1e-6), 1 - 1e-6)
        blurred = z > np.log(t / (1 - t))
    else:
        relative = np.asarray(context.relative, np.float64)
        rel = np.log(np.maximum(relative, 1e-3))
        for s in context.shots:
            if s.level <= FLAT_SHOT:  # a flat shot: nothing to deblur (as the Laplacian rule)
                continue
            a, b = s.first, s.last + 1
            rel[a:b] -= math.log(s.ratio)
            for i in range(a, b):
                near = z[max(a, i - radius):min(b, i + radius + 1)]
                ref = float(np.percentile(near, percentile))
                d = z[i] - ref - lap_weight * rel[i]
                blurred[i] = z[i] > sure or (z[i] > floor and d > margin)
            if join:  # the Laplacian rule's hysteresis (context.join_runs)
                join_runs(blurred, relative, a, b, s.join)
    probs = (1 / (1 + np.exp(-z))).tolist()
    return Labels(blurred.tolist(), probs, list(context.shots), list(context.relative))


def fsm_columns(path: str, selector: FSMSelector, *, frame_hook=None, high_depth: bool = False,
                items=None) -> tuple:
    """One decode pass of ``path`` (or of a piece: ``context.scan``): (fsm logits, the
    Laplacian pre-pass's ``context.Labels``)."""
    from array import array

    from vdeblur.select.context import scan

    logits = array("d")

    def score(item: Any) -> None:
        logits.append(selector.logit_frame(item))
        if frame_hook is not None:
            frame_hook(item)

    ctx = scan(path, frame_hook=score, high_depth=high_depth, items=items)
    return np.frombuffer(logits, np.float64).copy(), ctx


def prepass_fsm(path: str, *, threshold: float | None = None, every: int = 1, frame_hook=None,
                high_depth: bool = False, weights: str | None = None, variant: str = "small",
                device: Any = "cpu", items=None) -> Any:
    """``context.prepass`` for ``--select fsm``: every frame scored (fsm logit and the Laplacian
    features), then labelled shot by shot (:func:`label_fsm`); ``every=K``: each group of K takes
    its middle frame's label (Table 9's batch mode)."""
    from vdeblur.select.context import spread_every

    sel = load_fsm(weights, device, 1, None, variant)
    z, ctx = fsm_columns(path, sel, frame_hook=frame_hook, high_depth=high_depth, items=items)
    labels = label_fsm(z, ctx, threshold=threshold)
    labels.lost, labels.damaged = ctx.lost, ctx.damaged
    return spread_every(labels, every)
