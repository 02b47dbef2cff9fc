"""Many inputs in one `vdeblur run`: inputs and directories expanded to (input, output) pairs,
each file restored (in one pass, or in keyframe segments), one result per file.

A short video goes through the one-pass pipeline (restore.py). A video longer than the
segment length, or any video sent to a cluster, is restored in keyframe segments
(segmented.py), which ``--resume`` can continue.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any, Callable

from vdeblur.engine.pipeline import FrameResult, Summary
from vdeblur.errors import InputError, UsageError, VdeblurError
from vdeblur.restore import RunOptions, restore_video

#: file names a directory is searched for (hidden files, such as vdeblur's own partial files, are not)
VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .mts .m2ts .ts .mpg .mpeg .wmv .flv .3gp .ogv .mxf .y4m .nut .dv".split()
)


@dataclass
class FileResult:
    input: str
    output: str
    ok: bool
    exit_code: int = 0
    error: str | None = None
    summary: Summary | None = None
    segments: int = 1
    resumed: int = 0  # segments found done by --resume
    skipped: bool = False  # --resume found OUT complete already

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"input": self.input, "output": self.output, "ok": self.ok,
                             "exit_code": self.exit_code, "error": self.error,
                             "segments": self.segments, "resumed_segments": self.resumed,
                             "skipped": self.skipped}
        summary = (self.summary or Summary()).as_dict()
        d.update(summary if self.summary is not None else dict.fromkeys(summary))  # null: not run
        return d


def is_batch(inputs: list[str]) -> bool:
    """Several inputs, or a directory: the output is then a directory."""
    return len(inputs) > 1 or (len(inputs) == 1 and os.path.isdir(inputs[0]))


def expand_inputs(inputs: list[str], output: str, warn: Callable[[str], None] = lambda m: None) -> list[tuple[str, str]]:
    """(input, output) pairs. One file: ``output`` is the output file. Several inputs or a
    directory: ``output`` is a directory; each file keeps its name (and, from a directory, its
    path below it). Directories are searched recursively for video file names; the output
    directory is not searched (a re-run into ``clips/restored`` does not restore its outputs).
    No output may be one of the inputs (paths resolved, symlinks and hard links included):
    that is a usage error, raised before anything is written."""
    if not inputs:
        raise UsageError("no input given")
    if not is_batch(inputs):
        return [(inputs[0], output)]
    if output == "-":
        raise UsageError("several inputs need -o DIRECTORY, not '-'")
    what = "a directory input" if len(inputs) == 1 else "several inputs"
    if os.path.exists(output) and not os.path.isdir(output):
        raise UsageError(f"{what} need -o DIRECTORY; {output} is a file")
    if not os.path.exists(output) and os.path.splitext(output)[1].lower() in VIDEO_EXTENSIONS:
        raise UsageError(f"{what} need -o DIRECTORY; {output} names a video file")
    out_real = os.path.realpath(output)
    pairs: list[tuple[str, str]] = []
    for inp in inputs:
        if inp == "-":
            raise UsageError("'-' (stdin) cannot be one of several inputs")
        if os.path.isdir(inp):
            found = []
            for root, dirs, files in os.walk(inp):
                keep = []
                for d in sorted(dirs):
                    if d.startswith("."):
                        continue
                    if os.path.realpath(os.path.join(root, d)) == out_real:
                        warn(f"{os.path.join(root, d)} is the output directory: its files are not inputs")
                        continue
                    keep.append(d)
                dirs[:] = keep
                for f in sorted(files):
                    if not f.startswith(".") and os.path.splitext(f)[1].lower() in VIDEO_EXTENSIONS:
                        found.append(os.path.join(root, f))
            if not found:
                raise InputError(f"no video files in {inp} (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
            pairs += [(f, os.path.join(output, os.path.relpath(f, inp))) for f in found]
        else:
            pairs.append((inp, os.path.join(output, os.path.basename(inp))))
    _check_pairs(pairs, output)
    return pairs


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _check_pairs(pairs: list[tuple[str, str]], output: str) -> None:
    """Two inputs written to one output, or an output that is an input of the run: usage errors."""
    by_path = {os.path.realpath(inp): inp for inp, _ in pairs}
    by_id = {k: inp for inp, k in ((i, _file_id(i)) for i, _ in pairs) if k is not None}
    seen: dict[str, str] = {}
    for inp, out in pairs:
        key = os.path.realpath(out)
        if key in seen:
            raise UsageError(f"{seen[key]} and {inp} would both be written to {out}")
        seen[key] = inp
        other = by_path.get(key) or by_id.get(_file_id(out) or (-1, -1))
        if other is not None:
            raise UsageError(f"the output {out} (of {inp}) is the input {other}: choose another -o")


def make_dirs(pairs: list[tuple[str, str]]) -> None:
    from vdeblur.errors import OutputError

    for _, out in pairs:
        d = os.path.dirname(os.path.abspath(out))
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot make the output folder {d}: {e.strerror or e}") from e


@dataclass
class BatchOptions:
    segment: float = 60.0  # seconds; 0: never cut (one pass)
    resume: bool = False
    cluster: str | None = None
    task_cpus: float = 1.0
    task_gpus: float | None = None
    keep_going: bool = False
    reference: str | None = None


def _finished(out: str, b: BatchOptions, force: bool) -> bool:
    """--resume (without --force): an OUT that exists with no segments pending was finished by
    the run being resumed (OUT appears only when complete)."""
    from vdeblur.segmented import parts_dir

    return b.resume and not force and out != "-" and os.path.isfile(out) and not os.path.isdir(parts_dir(out))


def _wants_segments(inp: str, opts: RunOptions, b: BatchOptions) -> bool:
    if opts.io != "pyav" or inp == "-":
        if b.cluster or b.resume:
            raise UsageError("--cluster and --resume need --io pyav and a file input")
        return False
    if b.cluster:
        return True
    if b.segment <= 0:
        return False
    from vdeblur.io.reader import VideoReader

    with VideoReader(inp, copy_streams=False) as r:
        d, rate = r.info.duration, float(r.info.rate or 25)
    if opts.frames is not None:  # a piece (--start, --frames): its length
        d = opts.frames / rate if d is None else min(opts.frames / rate, max(0.0, d - (opts.start or 0)))
    elif d is not None and opts.start:
        d = max(0.0, d - opts.start)
    return d is None or d > b.segment


def run_inputs(
    pairs: list[tuple[str, str]],
    opts: RunOptions,
    b: BatchOptions,
    *,
    on_start: Callable[[str, Any], None] | None = None,
    on_result: Callable[[str, FrameResult], None] | None = None,
    on_file: Callable[[FileResult], None] | None = None,
    warn: Callable[[str], None] = lambda m: None,
) -> list[FileResult]:
    """Restore every pair; one FileResult each, in input order. Without ``keep_going`` the
    first failure is raised (after its FileResult is reported)."""
    from vdeblur.engine.cluster import make_executor
    from vdeblur.segmented import SegmentedJob

    results: list[FileResult] = []

    def report(res: FileResult) -> None:
        results.append(res)
        if on_file is not None:
            on_file(res)

    executor = make_executor(b.cluster, task_cpus=b.task_cpus, task_gpus=b.task_gpus)
    try:
        # with a cluster every file's segments are sent at once, so the cluster is kept busy
        jobs: dict[int, Any] = {}
        early: dict[int, BaseException] = {}
        if b.cluster:
            for i, (inp, out) in enumerate(pairs):
                if _finished(out, b, opts.force):
                    continue
                try:
                    job = SegmentedJob(inp, out, opts, seconds=b.segment or 1e18, resume=b.resume,
                                       reference=b.reference, warn=warn)
                    job.prepare()
                    job.submit(executor)
                    jobs[i] = job
                except VdeblurError as e:
                    early[i] = e
                    if not b.keep_going:
                        break
        for i, (inp, out) in enumerate(pairs):
            res = FileResult(inp, out, ok=False)
            if _finished(out, b, opts.force):
                res.ok = res.skipped = True
                warn(f"{out} is complete already: skipped (--resume)")
                report(res)
                continue
            if b.cluster and i not in jobs and i not in early:
                break  # an earlier file failed without --keep-going

            def cb(r: FrameResult, _inp: str = inp) -> None:
                if on_result is not None:
                    on_result(_inp, r)

            try:
                if i in early:
                    raise early[i]
                job = jobs.get(i)
                if job is None and _wants_segments(inp, opts, b):
                    job = SegmentedJob(inp, out, opts, seconds=b.segment, resume=b.resume,
                                       reference=b.reference, warn=warn)
                    if len(job.prepare().segments) == 1:
                        # one keyframe run: nothing to cut, the one-pass path does it (and the
                        # parts of an older run with other settings are of no use)
                        shutil.rmtree(job.dir, ignore_errors=True)
                        job = None
                    else:
                        job.submit(executor)
                if job is not None:
                    if on_start is not None:
                        on_start(inp, job.plan.frames)
                    res.summary = job.finish(executor, on_result=cb)
                    res.segments, res.resumed = len(job.plan.segments), job.resumed
                else:
                    res.summary = restore_video(
                        inp, out, opts, reference=b.reference, warn=warn, on_result=cb,
                        on_start=(lambda info, _i=inp: on_start(_i, info.expected_frames)) if on_start else None)
                res.ok = True
            except Exception as e:  # noqa: BLE001 - one file's failure is reported, the rest go on
                if not isinstance(e, VdeblurError) and not b.keep_going:
                    raise
                res.summary = getattr(e, "summary", None)  # a damaged input: OUT holds what decoded
                res.exit_code = e.exit_code if isinstance(e, VdeblurError) else 1
                res.error = f"{e.label}: {e}" if isinstance(e, VdeblurError) else f"internal error: {type(e).__name__}: {e}"
                report(res)
                if not b.keep_going:
                    raise
                continue
            report(res)
    finally:
        executor.close()
    return results
