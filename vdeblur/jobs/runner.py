"""A run: inputs become jobs; a job's plan is one span or several keyframe segments.

    inputs -> (input, output) pairs -> one Job each -> plan: one span, or keyframe segments
           -> each span restored (jobs/span.py) in this process or on the cluster's workers
           -> several spans joined by copying packets, with the input's audio -> OUT

A short video, a pipe, or ``--segment 0`` is one span, written to OUT directly. A longer
video, or any video sent to a cluster, is cut into keyframe segments that are restored on their
own (so the same settings give the same frames whether they ran in one process, after an
interruption or on a cluster), kept beside OUT until joined (jobs/state.py), and resumable.
Results go to one ``Sink``: per frame, per file, and warnings.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any

from vdeblur.engine.pipeline import FrameResult, Summary, SummaryAccumulator
from vdeblur.errors import InputError, UsageError, VdeblurError
from vdeblur.jobs.build import build
from vdeblur.jobs.options import (
    JobOptions, RunOptions, check_damage, check_file, check_output_format, is_piece, whole_file_context,
)
from vdeblur.jobs.segments import Plan, join_parts, plan_segments
from vdeblur.jobs.span import Span, context_frames, piece_of, restore_span, run_segment
from vdeblur.jobs.events import FileResult, Sink
from vdeblur.jobs.state import Parts, fingerprint


class Job:
    """One input restored into one output: ``plan()``, then ``submit(executor)``, then ``finish(executor)``."""

    def __init__(self, inp: str, out: str, opts: RunOptions, jopts: JobOptions, sink: Sink) -> None:
        self.inp, self.out, self.opts, self.jopts, self.sink = inp, out, opts, jopts, sink
        self.parts = Parts(out)
        self.plan_: Plan | None = None  # None: one span, written to OUT directly
        self.resumed = 0  # segments found finished
        self._handles: dict[int, Any] = {}
        self._t0 = 0.0
        self.submitted = False

    @property
    def finished(self) -> bool:
        """--resume (without --force): an OUT that exists with no segments pending was finished by
        the run being resumed (OUT appears only when complete)."""
        return (self.jopts.resume and not self.opts.force and self.out != "-" and os.path.isfile(self.out)
                and not os.path.isdir(self.parts.dir))

    def plan(self, *, segmented: bool | None = None) -> None:
        """Check the pair, build the method (once per process) and choose the spans: keyframe
        segments when ``segmented`` (default: when the video is longer than --segment), unless
        the video has one keyframe run; with --resume, the interrupted run's plan."""
        o, j = self.opts, self.jopts
        built = build(o, need_metrics=j.reference is not None, warn=self.sink.warn)
        check_file(o, self.inp, self.out)
        if o.io != "pyav" or self.inp == "-":
            if j.cluster or j.resume:
                raise UsageError("--cluster and --resume need --io pyav and a file input")
            return
        if not (self._long() if segmented is None else segmented):
            return
        seconds = j.segment or 1e18
        check_output_format(self.out, o.format)
        fp = fingerprint(self.inp, o, seconds, j.reference)
        old = self.parts.resumable(fp) if j.resume else None
        if old is not None:
            self.plan_ = old
            self.resumed = sum(self.parts.done(s) for s in old.segments)
            self.sink.warn(f"resuming {self.out}: {self.resumed} of {len(old.segments)} segments are done")
            return
        if j.resume:
            self.sink.warn(f"nothing to resume for {self.out}" + (
                " (the interrupted run had other settings or another input); starting over" if self.parts.exists() else ""))
        before, _ = context_frames(built.method, built.prototype)
        plan = plan_segments(self.inp, seconds, before, align=int(getattr(built.prototype, "every", 1)),
                             start=o.start, frames=o.frames)
        if len(plan.segments) == 1 and not j.cluster:
            # one keyframe run: nothing to cut, one span does it (and the parts of an older run
            # with other settings are of no use)
            self.parts.remove()
            return
        labels = None
        if whole_file_context(o, self.inp):  # the plan knows the whole file: one pass's labels
            from vdeblur.select.context import prepass

            labels = prepass(self.inp, threshold=o.threshold, every=o.select_every, select=o.select,
                             weights=o.select_weights, items=piece_of(o))
        self.parts.start(fp, plan, labels)
        self.plan_ = plan

    def _long(self) -> bool:
        """Longer than --segment (or of unknown length), counting only the piece when there is one."""
        o, j = self.opts, self.jopts
        if j.cluster:
            return True
        if j.segment <= 0:
            return False
        from vdeblur.io.reader import VideoReader

        with VideoReader(self.inp, copy_streams=False) as r:
            d, rate = r.info.duration, float(r.info.rate or 25)
        if o.frames is not None:  # a piece (--start, --frames): its length
            d = o.frames / rate if d is None else min(o.frames / rate, max(0.0, d - (o.start or 0)))
        elif d is not None and o.start:
            d = max(0.0, d - o.start)
        return d is None or d > j.segment

    @property
    def segments(self) -> int:
        return len(self.plan_.segments) if self.plan_ is not None else 1

    def submit(self, executor: Any) -> None:
        """Start the segments that are not done (the executor may run them now or when asked)."""
        self._t0 = time.perf_counter()
        self.submitted = True
        if self.plan_ is None:
            return
        opts = self.opts
        if self.parts.labels is not None:  # each segment replays the whole file's (or piece's) labels
            opts = replace(opts, labels=self.parts.labels, labels_piece=is_piece(opts))
        for seg in self.plan_.segments:
            if not self.parts.done(seg):
                self._handles[seg.number] = executor.submit(
                    run_segment, self.inp, self.parts.part(seg), seg, opts, self.jopts.reference)

    def finish(self, executor: Any) -> Summary:
        """Restore the one span, or wait for the segments in order, report their frames and join
        the parts into OUT."""
        sink, inp = self.sink, self.inp
        if self.plan_ is None:
            res = restore_span(inp, Span(self.out), self.opts, reference=self.jopts.reference, warn=sink.warn,
                               on_start=lambda info: sink.file_started(inp, info.expected_frames),
                               on_frame=lambda r: sink.frame(inp, r))
            return res.summary
        plan = self.plan_
        sink.file_started(inp, plan.frames)
        from vdeblur.io.reader import ReadStats

        acc = SummaryAccumulator()
        lost = rotation = 0
        stats = ReadStats()
        try:
            for seg in plan.segments:
                h = self._handles.pop(seg.number, None)
                res = executor.result(h) if h is not None else self.parts.results(seg)
                lost += res["lost"]
                stats.decode_errors += res.get("decode_errors", 0)
                stats.demux_error = stats.demux_error or res.get("demux_error")
                if seg.number == 0:
                    rotation = res["rotation"]
                for row in res["rows"]:
                    r = FrameResult.from_dict(row)
                    acc.add(r)
                    sink.frame(inp, r)
            parts = [p for p in (self.parts.part(s) for s in plan.segments) if os.path.exists(p)]
            if not parts:
                raise InputError(f"no frame of {inp} could be decoded")
            info = join_parts(parts, inp, self.out, rotation=rotation, expected=plan.frames - lost,
                              format=self.opts.format, shift=plan.shift, end=plan.end)
        except BaseException:
            done = sum(self.parts.done(s) for s in plan.segments)
            if done:
                sink.warn(f"{done} of {len(plan.segments)} segments of {self.out} are kept in {self.parts.dir}: "
                          "run the same command with --resume to continue")
            raise
        self.parts.remove()
        s = acc.summary(time.perf_counter() - self._t0)
        # as one span: frames the demuxer never gave (the plan lacks them) count too
        stats.decoded = s.frames
        if plan.shift is not None or plan.end is not None:  # a piece: the count is the plan's
            info = replace(info, frames=plan.frames, duration=None)
        check_damage(self.out, stats, info, s, lost)
        return s


def run_jobs(pairs: list[tuple[str, str]], opts: RunOptions, jopts: JobOptions, sink: Sink | None = None) -> list[FileResult]:
    """Restore every (input, output) pair; one FileResult each, in input order, also given to
    ``sink.file_done``. Without ``keep_going`` the first failure is raised (after its FileResult
    is reported). With a cluster every file's segments are sent at once, so the cluster is kept busy."""
    from vdeblur.jobs.executors import make_executor

    sink = sink or Sink()
    results: list[FileResult] = []

    def record(res: FileResult) -> None:
        results.append(res)
        sink.file_done(res)

    executor = make_executor(jopts.cluster, task_cpus=jopts.task_cpus, task_gpus=jopts.task_gpus)
    try:
        jobs = [Job(inp, out, opts, jopts, sink) for inp, out in pairs]
        early: dict[int, BaseException] = {}
        if jopts.cluster:
            for i, job in enumerate(jobs):
                if job.finished:
                    continue
                try:
                    job.plan(segmented=True)
                    job.submit(executor)
                except VdeblurError as e:
                    early[i] = e
                    if not jopts.keep_going:
                        break
        for i, job in enumerate(jobs):
            res = FileResult(job.inp, job.out, ok=False)
            if job.finished:
                res.ok = res.skipped = True
                sink.warn(f"{job.out} is complete already: skipped (--resume)")
                record(res)
                continue
            if jopts.cluster and not job.submitted and i not in early:
                break  # an earlier file failed without --keep-going
            try:
                if i in early:
                    raise early[i]
                if not jopts.cluster:
                    job.plan()
                    job.submit(executor)
                res.summary = job.finish(executor)
                res.segments, res.resumed = job.segments, job.resumed
                res.ok = True
            except Exception as e:  # noqa: BLE001 - one file's failure is reported, the rest go on
                if not isinstance(e, VdeblurError) and not jopts.keep_going:
                    raise
                res.summary = getattr(e, "summary", None)  # a damaged input: OUT holds what decoded
                res.exit_code = e.exit_code if isinstance(e, VdeblurError) else 1
                res.error = f"{e.label}: {e}" if isinstance(e, VdeblurError) else f"internal error: {type(e).__name__}: {e}"
                record(res)
                if not jopts.keep_going:
                    raise
                continue
            record(res)
    finally:
        executor.close()
    return results


def run_file(inp: str, out: str, opts: RunOptions | None = None, *, reference: str | None = None,
             segment: float = 0.0, sink: Sink | None = None) -> Summary:
    """Restore one video into ``out`` (one span unless ``segment`` seconds are given); the
    library's one-call form of ``vdeblur run IN -o OUT``. Raises VdeblurError kinds; never
    leaves a partial ``out``."""
    res = run_jobs([(inp, out)], opts or RunOptions(), JobOptions(segment=segment, reference=reference), sink)
    return res[0].summary  # type: ignore[return-value]
