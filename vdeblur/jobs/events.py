"""What a run reports, and to whom: one Sink per run receives every frame's and every file's
result and the warnings; the CLI's sink draws them (progress, JSON lines, report PNGs). Light to
import: the CLI defines its sink without loading torch or PyAV."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class Sink:
    """Where a run's results go; the CLI's sink draws progress, JSON lines or the report. Every
    call has a do-nothing default."""

    def warn(self, message: str) -> None:
        """A line for the user (stderr in the CLI)."""

    def file_started(self, inp: str, frames: int | None) -> None:
        """``inp``'s frames begin to come (``frames``: how many are expected, if known)."""

    def frame(self, inp: str, r: Any) -> None:
        """One frame of ``inp`` is written (in order)."""

    def file_done(self, res: "FileResult") -> None:
        """``inp`` is finished, or failed (``res.ok``)."""


@dataclass
class FileResult:
    input: str
    output: str
    ok: bool
    exit_code: int = 0
    error: str | None = None
    summary: Any = None  # engine.pipeline.Summary
    segments: int = 1
    resumed: int = 0  # segments found done by --resume
    skipped: bool = False  # --resume found OUT complete already

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"input": self.input, "output": self.output, "ok": self.ok,
                             "exit_code": self.exit_code, "error": self.error,
                             "segments": self.segments, "resumed_segments": self.resumed,
                             "skipped": self.skipped}
        from vdeblur.engine.pipeline import Summary

        summary = (self.summary or Summary()).as_dict()
        d.update(summary if self.summary is not None else dict.fromkeys(summary))  # null: not run
        return d
