"""Saved labels as a selector: ``vdeblur classify --json`` (or ``--csv``) writes them, ``run
--labels FILE`` replays them, so a video is scored once and its labels reused (or corrected by
hand) for any method, ``lucky`` included.

The file holds one row per frame: JSON lines ``{"frame": N, "blur_score": S, "blurred": B}``
(other keys and the closing ``{"summary": ...}`` line are ignored), or the CSV that ``classify
--csv`` writes (``frame,pts,blur_score,blurred``).
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np

from vdeblur.errors import InputError, UsageError
from vdeblur.select.laplacian import Decision


def _bool(v: object, where: str) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("true", "1", "yes"):
        return True
    if s in ("false", "0", "no"):
        return False
    raise UsageError(f"{where}: 'blurred' must be true or false, got {v!r}")


def read_labels(path: str) -> dict[int, tuple[float | None, bool]]:
    """frame -> (blur_score, blurred) from a ``classify --json`` or ``--csv`` file; one clear
    UsageError for a file that is missing, unreadable or not such a file."""
    if not os.path.isfile(path):
        raise UsageError(f"--labels {path}: no such file")
    rows: dict[int, tuple[float | None, bool]] = {}
    try:
        with open(path, newline="") as fh:
            head = fh.read(1)
            fh.seek(0)
            if head == "{":
                records = []
                for n, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        records.append((n, json.loads(line)))
                    except json.JSONDecodeError:
                        raise UsageError(f"--labels {path}: line {n} is not JSON") from None
            else:
                reader = csv.DictReader(fh)
                if not reader.fieldnames or not {"frame", "blurred"} <= set(reader.fieldnames):
                    raise UsageError(f"--labels {path}: expected the JSON lines of `vdeblur classify --json` "
                                     "or the CSV of `vdeblur classify --csv` (frame,pts,blur_score,blurred)")
                records = list(enumerate(reader, 2))
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--labels {path}: cannot read it ({e})") from e
    for n, rec in records:
        if not isinstance(rec, dict) or "frame" not in rec:
            continue  # the summary line, or another record
        where = f"--labels {path}, line {n}"
        try:
            frame = int(rec["frame"])
            score = rec.get("blur_score")
            score = None if score in (None, "") else float(score)
        except (TypeError, ValueError):
            raise UsageError(f"{where}: bad frame or blur_score") from None
        if "blurred" not in rec:
            raise UsageError(f"{where}: no 'blurred'")
        if frame in rows:
            raise UsageError(f"{where}: frame {frame} is labelled twice")
        rows[frame] = (score, _bool(rec["blurred"], where))
    if not rows:
        raise UsageError(f"--labels {path}: no frame labels in it")
    return rows


class LabelsSelector:
    """Decides each frame at once from saved labels. ``offset`` maps the engine's frame numbers to
    the file's (a segment numbers its frames from 0); a frame the file does not label is an
    InputError (labels of another video), as is a file that labels more frames than the video has
    (``check_count``, in one pass)."""

    lookahead = 0
    history = 0

    def __init__(self, labels: dict[int, tuple[float | None, bool]], path: str = "labels",
                 offset: int = 0, check_count: bool = True):
        self.labels = labels
        self.path = path
        self.offset = offset
        self.check_count = check_count
        self._pushed = 0

    def needs_score(self, index: int) -> bool:
        return False

    def push(self, index: int, gray: np.ndarray | None = None) -> list[Decision]:
        i = index + self.offset
        if i not in self.labels:
            raise InputError(f"--labels {self.path} has no label for frame {i} (labels of another video?)")
        self._pushed += 1
        score, blurred = self.labels[i]
        return [Decision(index, score, blurred)]

    def flush(self) -> list[Decision]:
        if self.check_count and self._pushed != len(self.labels):
            raise InputError(f"--labels {self.path} labels {len(self.labels)} frames, the video has "
                             f"{self._pushed} (labels of another video?)")
        return []


def labels_selector(path: str) -> LabelsSelector:
    return LabelsSelector(read_labels(path), path)
