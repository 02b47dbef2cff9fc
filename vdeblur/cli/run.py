"""`vdeblur run IN -o OUT`: restore a video."""

from __future__ import annotations

import os
import time
from typing import Any, Optional

import typer

from vdeblur.cli import common
from vdeblur.cli.output import Progress, json_line, log, print_table
from vdeblur.errors import EXIT_SOME_FAILED, UsageError
from vdeblur.jobs.events import Sink
from vdeblur.jobs.options import SEGMENT_SECONDS


def run(
    inputs: list[str] = typer.Argument(..., metavar="INPUT", help="Input videos or directories (any FFmpeg-readable file; '-' for stdin with --io ffmpeg). Directories are searched recursively."),
    output: str = typer.Option(..., "-o", "--output", help="Output video ('-' for stdout with --io ffmpeg); with several inputs or a directory, the output directory (names kept)."),
    method: str = typer.Option("lucky", "--method", "-m", autocompletion=common.complete_method, help="Restoration method (see `vdeblur methods`). The default, lucky, restores each frame the selector judges blurred from its sharp neighbours (flow-aligned, kept only where they explain the blurred frame) and leaves a frame with no usable neighbour as it is; it measures best on vdeblur's held-out test of compressed, partly blurred clips. -p fallback=atrous also deblurs what no neighbour covers; r2d4 is for noisy footage; measure on a piece first (--frames 50 --reference SHARP)."),
    psf: Optional[str] = typer.Option(None, "--psf", help="PSF for wiener / richardson-lucy: motion:LENGTH:ANGLE or gaussian:SIGMA (default: estimated per frame)."),
    iterations: Optional[int] = typer.Option(None, "--iterations", min=1, help="Iterations, for iterative methods."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Your own safetensors weights for a neural method (default: its weights.toml entry)."),
    param: list[str] = typer.Option([], "--param", "-p", help="Method hyperparameter KEY=VALUE (repeatable; see `vdeblur methods`)."),
    select: Optional[str] = typer.Option(None, "--select", autocompletion=common.complete_selector, help="Frame selector: laplacian (the default), fsm (trained classifier), or none to restore every frame. A method made for every frame (r2d4, which denoises) restores every frame unless --select is given."),
    select_every: int = common.SELECT_EVERY,
    threshold: Optional[float] = common.THRESHOLD,
    select_weights: Optional[str] = common.SELECT_WEIGHTS,
    labels: Optional[str] = typer.Option(None, "--labels", help="Use the sharp/blurred labels saved by `vdeblur classify --json` (or --csv) instead of the selector."),
    reference: Optional[str] = typer.Option(None, "--reference", help="Sharp reference video: PSNR/SSIM per frame."),
    device: str = typer.Option("auto", "--device", autocompletion=common.complete_device, help="auto, cpu, cuda, cuda:N or mps."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, fp16 or bf16 (autocast)."),
    batch: int = typer.Option(0, "--batch", min=0, help="Frames per batch (0: 4 on a GPU, 1 on the CPU)."),
    tile: Optional[int] = typer.Option(None, "--tile", min=16, help="Restore in overlapping tiles of this size (default: whole frames, or tiles sized to --max-memory; tiles of 512, 256 then 128 when a frame does not fit in memory)."),
    tile_overlap: int = typer.Option(32, "--tile-overlap", min=0, help="Overlap of the tiles in pixels, blended with a smooth window."),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", help="Memory a batch may take, e.g. 4G or 800M: a frame whose method would need more is restored in tiles sized to fit (default: half of the free memory; on a GPU, of its free memory)."),
    ensemble: bool = typer.Option(False, "--ensemble", help="Geometric self-ensemble: average over 8 flips/rotations (8x slower)."),
    codec: str = typer.Option("libx264", "--codec", autocompletion=common.complete_codec, help="Video encoder."),
    crf: Optional[int] = typer.Option(18, "--crf", help="Constant rate factor (quality) of the encoder."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Encoder preset (e.g. ultrafast ... veryslow)."),
    pix_fmt: Optional[str] = typer.Option(None, "--pix-fmt", help="Output pixel format (default: 8-bit equivalent of the input's; yuv420p10le keeps 10 bits)."),
    format: Optional[str] = typer.Option(None, "--format", help="Output container, when the file name does not say (e.g. matroska for '-')."),
    io: str = typer.Option("pyav", "--io", help="I/O backend: pyav, or ffmpeg (an ffmpeg subprocess; allows '-')."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing output."),
    keep_going: bool = typer.Option(False, "--keep-going", "-k", help="With several inputs, go on past a file that fails (exit 7 at the end if any failed)."),
    start: Optional[str] = typer.Option(None, "--start", help="Restore a piece from this time on: seconds (12.5) or [HH:]MM:SS[.ms]. OUT starts at the first frame at or after it, its timestamps less TIME (as ffmpeg -ss gives them), with the audio of the same span."),
    frames: Optional[int] = typer.Option(None, "--frames", help="Restore a piece of N frames (from --start, else from the first frame), with the audio of the same span; --reference is cut the same way. A piece longer than --segment is cut into segments as a whole video is."),
    segment: float = typer.Option(SEGMENT_SECONDS, "--segment", min=0.0, help="Cut videos longer than this many seconds at keyframes and restore the segments one by one (resumable; 0: never cut)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last finished segment (same input and settings)."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="Send files and segments as tasks to the Ray cluster at ADDRESS (host:port, or auto); needs the ray extra of vdeblur and a filesystem the workers share."),
    task_cpus: float = typer.Option(1.0, "--task-cpus", min=0.01, help="CPU cores each cluster task reserves."),
    task_gpus: Optional[float] = typer.Option(None, "--task-gpus", min=0.0, help="GPUs each cluster task reserves (default: 1 when the cluster has GPUs, else 0)."),
    report: Optional[str] = typer.Option(None, "--report", help="Plot blur score, restored/skipped frames, ms per frame and PSNR over time into this PNG (a directory with several inputs)."),
    json: bool = common.JSON,
) -> None:
    """Restore videos: decode, select blurred frames, restore them, re-encode with audio and timing kept."""
    from vdeblur.engine.memory import parse_size
    from vdeblur.jobs import JobOptions, RunOptions, run_jobs
    from vdeblur.jobs.build import build
    from vdeblur.jobs.inputs import expand_inputs, make_dirs, several

    if output == "-" and json:
        raise UsageError("--json writes to stdout, which -o - already uses for the video")
    select = _default_select(method, select)
    cfg = common.parse_params(param)
    cfg.update({k: v for k, v in (("psf", psf), ("iterations", iterations), ("weights", weights)) if v is not None})
    opts = RunOptions(
        method=method, method_cfg=cfg, select=select, select_every=select_every, threshold=threshold,
        select_weights=select_weights, labels=labels,
        device=device, precision=precision, batch=batch, tile=tile, tile_overlap=tile_overlap,
        max_memory=None if max_memory is None else parse_size(max_memory), ensemble=ensemble, codec=codec, crf=crf, preset=preset,
        pix_fmt=pix_fmt, io=io, force=force, format=format, start=parse_time(start, "--start"), frames=frames,
    )
    many = several(inputs)
    pairs = expand_inputs(inputs, output, warn=log)
    if many and reference is not None:
        raise UsageError("--reference takes one input video")
    if many and labels is not None:
        raise UsageError("--labels takes one input video")
    # usage errors and the method's build (once; the run reuses it) before anything is written
    if getattr(build(opts, need_metrics=reference is not None, warn=log).method, "needs_labels", False) \
            and select == "none" and labels is None:
        log(f"{method} restores blurred frames from the frames labelled sharp, and --select none labels "
            "none sharp: every frame gets the fallback")
    reports = _report_paths(report, pairs, output, many)
    if many:
        make_dirs(pairs)
    jopts = JobOptions(segment=segment, resume=resume, cluster=cluster, task_cpus=task_cpus, task_gpus=task_gpus,
                       keep_going=keep_going and many, reference=reference)
    sink = CliSink(method, many, json, reports, keep_going)
    try:
        results = run_jobs(pairs, opts, jopts, sink)
    finally:
        sink.progress.stop()
    failed = [r for r in results if not r.ok]
    if not many:
        summary = results[0].summary
        if summary is None:  # --resume found OUT complete: said on stderr
            if json:
                json_line({"summary": None, "skipped": True})
            return
        if json:
            json_line({"summary": summary.as_dict()})
        else:
            d = summary.as_dict()
            print_table(f"vdeblur run --method {method}", list(d), [list(d.values())], to_stderr=output == "-")
        return
    if not json:
        cols = ["input", "status", "frames", "restored", "fps", "psnr", "segments"]
        rows = [[r.input, "skipped" if r.skipped else "ok" if r.ok else f"failed ({r.exit_code})",
                 *[getattr(r.summary, k) if r.summary else None for k in ("frames", "restored", "fps", "psnr")],
                 r.segments] for r in results]
        print_table(f"vdeblur run --method {method}: {len(results) - len(failed)} of {len(results)} files restored",
                    cols, rows)
    if failed:
        log(f"{len(failed)} of {len(results)} files failed: " + ", ".join(r.input for r in failed))
        raise typer.Exit(EXIT_SOME_FAILED)


class CliSink(Sink):
    """The run's results on the terminal: progress (stderr), JSON lines (stdout), report PNGs."""

    def __init__(self, method: str, many: bool, json: bool, reports: dict[str, str], keep_going: bool) -> None:
        self.method, self.many, self.json, self.reports, self.keep_going = method, many, json, reports, keep_going
        self.progress = Progress(enabled=not json)
        self.collectors: dict[str, Any] = {}
        self.t_start: dict[str, float] = {}

    def warn(self, message: str) -> None:
        log(message)

    def file_started(self, inp: str, frames: int | None) -> None:
        self.progress.stop()
        self.progress.label = os.path.basename(inp) if self.many else "restoring"
        self.progress.start(frames)
        self.t_start[inp] = time.perf_counter()
        if inp in self.reports:
            from vdeblur.report import ReportCollector

            self.collectors[inp] = ReportCollector()

    def frame(self, inp: str, r: Any) -> None:
        if inp in self.collectors:
            self.collectors[inp].add(r.as_dict())
        if self.json:
            if not self.many:
                json_line(r.as_dict())
        else:
            self.progress.advance()

    def file_done(self, res: Any) -> None:
        self.progress.stop()
        if res.ok and not res.skipped and not self.json:  # one line: where the output went
            self.progress.done(res.output, res.summary.frames if res.summary else None,
                               time.perf_counter() - self.t_start[res.input] if res.input in self.t_start else None)
        c = self.collectors.pop(res.input, None)
        if c is not None and (res.ok or len(c)):
            c.save(self.reports[res.input], title=f"vdeblur run --method {self.method}: {os.path.basename(res.input)}")
        if not res.ok and self.many and self.keep_going:
            log(f"{res.input}: {res.error}")
        if self.many and self.json:
            json_line(res.as_dict())


def parse_time(text: str | None, option: str) -> float | None:
    """Seconds from ``12.5``, ``MM:SS[.ms]`` or ``HH:MM:SS[.ms]``; a bad value is a usage error."""
    import math
    import re

    if text is None:
        return None
    m = re.fullmatch(r"\s*(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?|\.\d+)\s*", text)
    bad = UsageError(f"bad {option} {text!r}: expected seconds (12.5) or [HH:]MM:SS[.ms]")
    if not m:
        raise bad
    h, mnt, sec = m.groups()
    if (mnt is not None and float(sec) >= 60) or (h is not None and int(mnt) >= 60):
        raise bad
    value = int(h or 0) * 3600 + int(mnt or 0) * 60 + float(sec)
    if not math.isfinite(value):
        raise bad
    return value


def _default_select(method: str, select: str | None) -> str:
    """--select as given; else none for a method made for every frame (said on stderr), else laplacian."""
    if select is not None:
        return select
    from vdeblur.methods.registry import get_spec

    if get_spec(method).every_frame:
        log(f"{method} is made for every frame: restoring every frame "
            "(--select laplacian restores only the frames judged blurred)")
        return "none"
    return "laplacian"


def _report_paths(report: str | None, pairs: list[tuple[str, str]], output: str, many: bool) -> dict[str, str]:
    """input -> report file. With several inputs ``report`` is a directory: one PNG per output,
    named after the output's path below -o."""
    from vdeblur.report import check_report_path

    if report is None:
        return {}
    if not many:
        check_report_path(report)
        return {pairs[0][0]: report}
    if os.path.exists(report) and not os.path.isdir(report):
        raise UsageError(f"with several inputs --report names a directory; {report} is a file")
    os.makedirs(report, exist_ok=True)
    paths = {}
    for inp, out in pairs:
        rel = os.path.relpath(os.path.abspath(out), os.path.abspath(output))
        paths[inp] = os.path.join(report, rel.replace(os.sep, "_") + ".png")
        check_report_path(paths[inp])
    return paths
