"""A long video restored in keyframe segments: resumable, and spread over a Ray cluster if asked.

    plan (keyframes) -> one task per segment: decode -> select -> restore -> encode a part
                     -> join the parts by copying packets, with the input's audio -> OUT

Each segment is restored on its own, so the same settings give the same frames whether the
segments ran in one process, after an interruption (``--resume``) or on a cluster. A recurrent
or windowed method restarts at a segment border: a few frames before it (``warmup``) are
decoded and restored to warm its state, and the frames after it that its window reads are
decoded; neither is written, so no frame is written twice. The selector also sees the frames
its window reaches (30 back and 15 ahead for the adaptive Laplacian rule, aligned to its
groups of K), so it labels a segment's frames as it would in one pass; those context frames
are scored, not restored.

The parts, the plan and the per-frame results live in a hidden folder beside the output
(``.NAME.vdeblur-parts``), written atomically one segment at a time; it is removed once OUT
is complete. A run that stops (Ctrl-C, SIGKILL, a crash, a lost cluster) leaves it, and the
same command with ``--resume`` continues from the last finished segment.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterator

from vdeblur.engine.pipeline import FrameResult, Summary, SummaryAccumulator
from vdeblur.metrics.reference import ReferenceMetrics
from vdeblur.errors import InputError, InternalError, OutputError, UsageError
from vdeblur.io.segments import Plan, Segment, join_parts, plan_segments
from vdeblur.restore import (
    RunOptions, check_damage, check_output_format, output_pix_fmt, prepare, whole_file_context,
)

#: frames restored before a segment's first one to warm a recurrent method's state
RECURRENT_WARMUP = 5
#: default segment length, seconds of video (a segment ends at the first keyframe after it)
SEGMENT_SECONDS = 60.0
PLAN_VERSION = 4  # 4: whole-file labels (labels.jsonl) beside the plan
PART_FORMATS = ("mp4", "mov", "nut")  # the first that holds the codec; all keep the time base


def parts_dir(out: str) -> str:
    d, base = os.path.split(os.path.abspath(out))
    return os.path.join(d, f".{base}.vdeblur-parts")


def warmup_frames(method: Any) -> int:
    """Frames before a segment the method restores (not written): its past window, or a
    recurrent method's warm-up."""
    return max(int(method.past), RECURRENT_WARMUP if method.recurrent else 0)


def context_frames(method: Any, selector: Any) -> tuple[int, int]:
    """(before, after) a segment: frames decoded so that the method's window and the selector's
    window see what they would see in one pass. Only the method's warm-up is restored."""
    before = max(warmup_frames(method), int(getattr(selector, "history", 0)))
    after = max(int(method.future), int(getattr(selector, "lookahead", 0)))
    return before, after


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


def _write_json(path: str, obj: Any) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write_labels(path: str, labels: Any) -> None:
    """The pre-pass's labels as ``classify --json`` rows (``run --labels`` reads them), atomically."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        for i, b in enumerate(labels.blurred):
            fh.write(json.dumps({"frame": i, "blur_score": labels.shown_score(i), "blurred": bool(b)}) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _part_name(seg: Segment) -> str:
    return f"seg-{seg.number:05d}"


# -- one segment: the task ---------------------------------------------------------------------
def restore_segment(inp: str, part: str, seg: Segment, opts: RunOptions, reference: str | None = None) -> dict:
    """Restore one segment of ``inp`` into the part file ``part`` (+ ``part``.json with its
    per-frame results). Runs in-process or as a Ray task; returns the results."""
    from vdeblur.engine.pipeline import Engine
    from vdeblur.io.reader import VideoReader
    from vdeblur.io.segments import segment_frames
    from vdeblur.io.writer import VideoWriter, is_high_depth
    from vdeblur.restore import _reference_frames, open_reference

    t0 = time.perf_counter()
    setup = prepare(opts, inp, part, need_metrics=reference is not None, check_out=False)
    m = setup.method
    if opts.labels:  # saved labels number the whole video's frames; a segment numbers its own from 0
        setup.selector.offset, setup.selector.check_count = seg.first - seg.warm, False
    reader = VideoReader(inp, copy_streams=False)
    ref_reader = None
    rows: list[dict] = []
    written: dict[int, int] = {}  # local index -> index in the whole video, for written frames
    try:
        info = reader.info
        pix_fmt = output_pix_fmt(opts, info)
        reader.high_depth = is_high_depth(pix_fmt)
        ref_iter = metrics = None
        if reference is not None:
            ref_reader = open_reference(reference, info, reader.high_depth)
            ref_iter = itertools.islice(_reference_frames(ref_reader), seg.first - seg.warm, None)
            metrics = ReferenceMetrics(setup.device)

        _, after = context_frames(m, setup.selector)
        if not seg.tail:  # the end of a piece: nothing after it is read, as in one pass of it
            after = 0
        shift = None
        if opts.start:  # a piece: row times less its start, as OUT's (piece_items)
            from vdeblur.io.segments import to_seconds

            v = reader.video
            lo = (v.start_time * v.time_base if v.start_time is not None else 0) + to_seconds(opts.start)
            shift = float(round(lo / info.time_base) * info.time_base)
        # restored: the method's own warm-up and the segment; the rest of the context is only seen
        first_restored, end_restored = max(0, seg.warm - warmup_frames(m)), seg.warm + seg.frames

        def items() -> Iterator[Any]:
            n = 0
            for f, keep in segment_frames(reader, seg, after=after):
                if keep:
                    written[f.index] = seg.first - seg.base + n
                    n += 1
                if shift is not None:
                    f.offset = shift
                yield f

        def on_result(r: FrameResult) -> None:
            g = written.get(r.frame)
            if g is not None:
                r.frame = g
                rows.append(vars(r))

        def write_frame(frame: Any, out: Any) -> None:
            if frame.index in written:
                writer.write_frame(frame, out)

        engine = Engine(setup.restorer, setup.selector, batch_size=setup.batch, reference=ref_iter,
                        metrics=metrics, on_result=on_result,
                        restorable=lambda i: first_restored <= i < end_restored)
        writer = None
        for k, fmt in enumerate(PART_FORMATS):
            try:
                writer = VideoWriter(part, info, codec=opts.codec, crf=opts.crf, preset=opts.preset,
                                     pix_fmt=pix_fmt, format=fmt)
                writer.open()
                break
            except OutputError:
                if k == len(PART_FORMATS) - 1:
                    raise
        assert writer is not None
        with writer:
            engine.run(items(), write_frame, lambda p: None)
            if writer.frames_written > seg.frames:
                raise InternalError(f"segment {seg.number} wrote {writer.frames_written} frames, "
                                    f"its plan holds {seg.frames}")
            if writer.frames_written:
                writer.commit()
            else:  # nothing of it decoded (a damaged stretch): no part; the join counts it lost
                writer.abort()
    finally:
        reader.close()
        if ref_reader is not None:
            ref_reader.close()
    result = {
        "segment": seg.number,
        "rows": rows,
        "frames": len(rows),
        "lost": seg.frames - len(rows),
        "decode_errors": reader.stats.decode_errors,
        "demux_error": reader.stats.demux_error,
        "rotation": info.rotation,
        "seconds": time.perf_counter() - t0,
    }
    _write_json(part + ".json", result)
    return result


# -- one video: plan, tasks, join ----------------------------------------------------------------
@dataclass
class SegmentedJob:
    """One input restored in segments. ``prepare()``, then ``submit(executor)``, then ``finish()``."""

    inp: str
    out: str
    opts: RunOptions
    seconds: float = SEGMENT_SECONDS
    resume: bool = False
    reference: str | None = None
    warn: Callable[[str], None] = lambda m: None
    plan: Plan | None = None
    resumed: int = 0  # segments found finished
    _handles: dict[int, Any] = field(default_factory=dict)
    _fingerprint: dict[str, Any] | None = None  # set when a new plan must be written by submit()
    _labels: Any = None  # the pre-pass's whole-file labels, written by submit() beside the plan
    _t0: float = 0.0

    @property
    def dir(self) -> str:
        return parts_dir(self.out)

    def part(self, seg: Segment) -> str:
        return os.path.join(self.dir, _part_name(seg))

    def prepare(self) -> Plan:
        setup = prepare(self.opts, self.inp, self.out, need_metrics=self.reference is not None, warn=self.warn)
        if self.opts.io != "pyav":
            raise UsageError("segments (--segment, --resume, --cluster) need --io pyav")
        check_output_format(self.out, self.opts.format)
        fp = fingerprint(self.inp, self.opts, self.seconds, self.reference)
        plan_file = os.path.join(self.dir, "plan.json")
        old = None
        if os.path.exists(plan_file):
            try:
                with open(plan_file) as fh:
                    old = json.load(fh)
            except (OSError, ValueError):
                old = None
        if self.resume and old is not None and old.get("fingerprint") == _digest(fp):
            self.plan = Plan.from_json(old["plan"])
            self.resumed = sum(self.done(s) for s in self.plan.segments)
            self.warn(f"resuming {self.out}: {self.resumed} of {len(self.plan.segments)} segments are done")
            return self.plan
        if self.resume:
            self.warn(f"nothing to resume for {self.out}"
                      + (" (the interrupted run had other settings or another input); starting over" if old else ""))
        self._fingerprint = fp
        if whole_file_context(self.opts, self.inp):  # the plan knows the whole file: one pass's labels
            from vdeblur.select.context import prepass

            self._labels = prepass(self.inp, threshold=self.opts.threshold, every=self.opts.select_every)
        before, _ = context_frames(setup.method, setup.selector)
        self.plan = plan_segments(self.inp, self.seconds, before, align=int(getattr(setup.selector, "every", 1)),
                                  start=self.opts.start, frames=self.opts.frames)
        return self.plan

    def done(self, seg: Segment) -> bool:
        """Its results are written (after its part, which a segment that decoded nothing lacks)."""
        return os.path.exists(self.part(seg) + ".json")

    def submit(self, executor: Any) -> None:
        """Start the segments that are not done (the executor may run them now or when asked)."""
        assert self.plan is not None
        self._t0 = time.perf_counter()
        if self._fingerprint is not None:  # a new run: a fresh folder and plan
            if os.path.isdir(self.dir):
                shutil.rmtree(self.dir)
            try:
                os.makedirs(self.dir)
            except OSError as e:
                raise OutputError(f"cannot make {self.dir}: {e.strerror or e}") from e
            _write_json(os.path.join(self.dir, "plan.json"), {
                "fingerprint": _digest(self._fingerprint), "settings": self._fingerprint, "plan": self.plan.to_json()})
            self._fingerprint = None
            if self._labels is not None:
                _write_labels(os.path.join(self.dir, "labels.jsonl"), self._labels)
        opts = self.opts
        if os.path.exists(os.path.join(self.dir, "labels.jsonl")):  # each segment replays the whole file's labels
            opts = replace(self.opts, labels=os.path.join(self.dir, "labels.jsonl"))
        for seg in self.plan.segments:
            if not self.done(seg):
                self._handles[seg.number] = executor.submit(
                    restore_segment, self.inp, self.part(seg), seg, opts, self.reference)

    def finish(self, executor: Any, on_result: Callable[[FrameResult], None] | None = None) -> Summary:
        """Wait for the segments in order, report their frames, join the parts into OUT."""
        assert self.plan is not None
        from vdeblur.io.reader import ReadStats

        acc = SummaryAccumulator()
        lost = 0
        rotation = 0
        stats = ReadStats()
        try:
            for seg in self.plan.segments:
                h = self._handles.pop(seg.number, None)
                if h is not None:
                    res = executor.result(h)
                else:
                    with open(self.part(seg) + ".json") as fh:
                        res = json.load(fh)
                lost += res["lost"]
                stats.decode_errors += res.get("decode_errors", 0)
                stats.demux_error = stats.demux_error or res.get("demux_error")
                if seg.number == 0:
                    rotation = res["rotation"]
                for row in res["rows"]:
                    r = FrameResult(**row)
                    acc.add(r)
                    if on_result is not None:
                        on_result(r)
            info = self._join(rotation, self.plan.frames - lost)
        except BaseException:
            done = sum(self.done(s) for s in self.plan.segments)
            if done:
                self.warn(f"{done} of {len(self.plan.segments)} segments of {self.out} are kept in {self.dir}: "
                          "run the same command with --resume to continue")
            raise
        shutil.rmtree(self.dir, ignore_errors=True)
        s = acc.summary(time.perf_counter() - self._t0)
        # as the one-pass path: frames the demuxer never gave (the plan lacks them) count too
        stats.decoded = s.frames
        if self.plan.shift is not None or self.plan.end is not None:  # a piece: the count is the plan's
            info = replace(info, frames=self.plan.frames, duration=None)
        check_damage(self.out, stats, info, s, lost)
        return s

    def _join(self, rotation: int, expected: int) -> Any:
        parts = [p for p in (self.part(s) for s in self.plan.segments) if os.path.exists(p)]
        if not parts:
            raise InputError(f"no frame of {self.inp} could be decoded")
        return join_parts(parts, self.inp, self.out, rotation=rotation, expected=expected,
                          format=self.opts.format, shift=self.plan.shift, end=self.plan.end)
