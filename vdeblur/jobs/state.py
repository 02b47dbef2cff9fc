"""What a segmented run keeps on disk, so that ``--resume`` continues it.

The parts, the plan and the per-frame results live in a hidden folder beside the output
(``.NAME.vdeblur-parts``), written atomically one segment at a time; it is removed once OUT
is complete. A run that stops (Ctrl-C, SIGKILL, a crash, a lost cluster) leaves it, and the
same command with ``--resume`` continues from the last finished segment -- when the input and
every setting that changes the output's frames are the same (the plan's fingerprint).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from typing import Any

from vdeblur.errors import OutputError
from vdeblur.jobs.options import RunOptions
from vdeblur.jobs.segments import Plan, Segment

PLAN_VERSION = 4  # 4: whole-file labels (labels.jsonl) beside the plan


def parts_dir(out: str) -> str:
    d, base = os.path.split(os.path.abspath(out))
    return os.path.join(d, f".{base}.vdeblur-parts")


def fingerprint(inp: str, opts: RunOptions, seconds: float, reference: str | None) -> dict[str, Any]:
    """What must not change between a run and its --resume: the input file and every setting
    that changes the output's frames."""
    from vdeblur import __version__

    st = os.stat(inp)
    o = {k: v for k, v in asdict(opts).items() if k not in ("force",)}
    o["method_cfg"] = {k: str(v) for k, v in sorted((opts.method_cfg or {}).items())}
    ref = None
    if reference is not None:
        rs = os.stat(reference)
        ref = [os.path.abspath(reference), rs.st_size, rs.st_mtime_ns]
    return {
        "version": __version__,
        "plan_version": PLAN_VERSION,
        "input": [os.path.abspath(inp), st.st_size, st.st_mtime_ns],
        "reference": ref,
        "segment_seconds": seconds,
        "options": o,
    }


def _digest(d: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def write_json(path: str, obj: Any) -> None:
    """``obj`` as JSON at ``path``, atomically (a reader sees the old file or the whole new one)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Parts:
    """The folder of one output's parts: its plan, its whole-file labels, one part and one
    results file per finished segment."""

    def __init__(self, out: str) -> None:
        self.dir = parts_dir(out)

    def part(self, seg: Segment) -> str:
        return os.path.join(self.dir, f"seg-{seg.number:05d}")

    def done(self, seg: Segment) -> bool:
        """Its results are written (after its part, which a segment that decoded nothing lacks)."""
        return os.path.exists(self.part(seg) + ".json")

    def results(self, seg: Segment) -> dict[str, Any]:
        with open(self.part(seg) + ".json") as fh:
            return json.load(fh)

    @property
    def labels(self) -> str | None:
        """The whole file's labels, which every segment replays (None: the selector streams)."""
        path = os.path.join(self.dir, "labels.jsonl")
        return path if os.path.exists(path) else None

    def resumable(self, fp: dict[str, Any]) -> Plan | None:
        """The plan of the interrupted run with the same fingerprint, if there is one."""
        try:
            with open(os.path.join(self.dir, "plan.json")) as fh:
                old = json.load(fh)
        except (OSError, ValueError):
            return None
        return Plan.from_json(old["plan"]) if old.get("fingerprint") == _digest(fp) else None

    def exists(self) -> bool:
        return os.path.exists(os.path.join(self.dir, "plan.json"))

    def start(self, fp: dict[str, Any], plan: Plan, labels: Any = None) -> None:
        """A new run: a fresh folder with the plan (and the pre-pass's labels, when there are)."""
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        try:
            os.makedirs(self.dir)
        except OSError as e:
            raise OutputError(f"cannot make {self.dir}: {e.strerror or e}") from e
        write_json(os.path.join(self.dir, "plan.json"),
                   {"fingerprint": _digest(fp), "settings": fp, "plan": plan.to_json()})
        if labels is not None:
            self._write_labels(os.path.join(self.dir, "labels.jsonl"), labels)

    @staticmethod
    def _write_labels(path: str, labels: Any) -> None:
        """The pre-pass's labels as ``classify --json`` rows (``run --labels`` reads them), atomically."""
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as fh:
            for i, b in enumerate(labels.blurred):
                fh.write(json.dumps({"frame": i, "blur_score": labels.shown_score(i), "blurred": bool(b)}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
