"""Runs: inputs become jobs, a job's plan is one span or several keyframe segments, each span is
restored once by ``span.restore_span`` (reader -> selector -> engine -> writer), in this process
or on a cluster's workers, and the results go to one ``Sink``.

    inputs.py     files and directories -> (input, output) pairs
    options.py    RunOptions, JobOptions and the checks that open nothing
    build.py      the method, restorer and selector, built once per process
    span.py       one span restored: the one place a frame's way is wired
    segments.py   keyframe plans, a segment's or a piece's frames, the lossless join
    state.py      the parts folder that --resume continues from
    executors.py  where segments run: this process, or a Ray cluster
    events.py     Sink (where results go) and FileResult
    runner.py     Job, run_jobs, run_file
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "FileResult": "events", "Sink": "events", "JobOptions": "options", "RunOptions": "options",
    "Job": "runner", "run_file": "runner", "run_jobs": "runner",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # lazy: importing vdeblur.jobs.events must not load torch or PyAV
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"vdeblur.jobs.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'vdeblur.jobs' has no attribute {name!r}")
