"""`vdeblur classify IN`: which frames are blurred."""

from __future__ import annotations

import csv
import os
from typing import Optional

import typer

from vdeblur.cli import common
from vdeblur.cli.output import Progress, json_line, print_table


def blurred_runs(labels: list[bool]) -> list[tuple[int, int]]:
    """[(first, last), ...] of the runs of consecutive blurred frames."""
    runs: list[tuple[int, int]] = []
    start = None
    for i, b in enumerate(labels + [False]):
        if b and start is None:
            start = i
        elif not b and start is not None:
            runs.append((start, i - 1))
            start = None
    return runs


def classify_video(path: str, select: str = "laplacian", every: int = 1, threshold: float | None = None,
                   on_decision=None, select_weights: str | None = None, context: bool = True) -> dict:
    """Score and label every frame of ``path``; returns the summary dict.

    ``context``: label with the whole file in view (select/context.py: one decode-only pass, then
    shots and the relative rule; the summary then has ``shots``); False: the streaming selector,
    as for a pipe."""
    from vdeblur.io.reader import Frame, VideoReader
    from vdeblur.select import make_selector, selector_input
    from vdeblur.select.context import has_context, prepass

    if context and has_context(select):
        times: list[float | None] = []
        lab = prepass(path, threshold=threshold, every=every, select=select, weights=select_weights,
                      frame_hook=lambda f: times.append(f.time))
        from vdeblur.select.context import ContextSelector

        sel = ContextSelector(lab, every)
        for i in range(len(lab.blurred)):
            for d in sel.push(i):
                if on_decision is not None:
                    on_decision(d, times[i])
        n = len(lab.blurred)
        return {
            "frames": n,
            "blurred": sum(lab.blurred),
            "blurred_fraction": (sum(lab.blurred) / n) if n else 0.0,
            "runs": [list(r) for r in blurred_runs(lab.blurred)],
            "shots": [{"first": s.first, "last": s.last, "sharp_level": s.level, "ratio": s.ratio,
                       "join": s.join, "thresholds": s.thresholds, "noise_sigma": s.noise_floor} for s in lab.shots],
            "lost": lab.lost,
            "damaged": lab.damaged,
        }
    sel = make_selector(select, threshold=threshold, every=every, weights=select_weights)
    labels: list[bool] = []
    with VideoReader(path, copy_streams=False) as reader:
        times: dict[int, float | None] = {}

        def out(decisions) -> None:
            for d in decisions:
                labels.append(bool(d.blurred))
                if on_decision is not None:
                    on_decision(d, times.pop(d.index))

        for item in reader.items():
            if isinstance(item, Frame):
                times[item.index] = item.time
                out(sel.push(item.index, selector_input(sel, item)))
        out(sel.flush())
        lost = reader.stats.lost(reader.info)
        damaged = reader.stats.damaged(reader.info)
    n = len(labels)
    runs = blurred_runs(labels)
    return {
        "frames": n,
        "blurred": sum(labels),
        "blurred_fraction": (sum(labels) / n) if n else 0.0,
        "runs": [list(r) for r in runs],
        "lost": lost,
        "damaged": damaged,
    }


def classify(
    input: str = typer.Argument(..., help="Input video."),
    select: str = common.SELECT,
    select_every: int = common.SELECT_EVERY,
    threshold: Optional[float] = common.THRESHOLD,
    select_weights: Optional[str] = common.SELECT_WEIGHTS,
    csv_path: Optional[str] = typer.Option(None, "--csv", help="Also write frame,pts,blur_score,blurred to this CSV file (`run --labels` reads it)."),
    report: Optional[str] = typer.Option(None, "--report", help="Plot the blur score and the blurred frames over time into this PNG."),
    json: bool = common.JSON,
) -> None:
    """Per-frame blur score and label, then a summary (blurred fraction, runs of blurred frames).

    With --select laplacian the file is scored first and labelled with the whole video in view,
    shot by shot; --json's summary lists the shots (first/last frame, sharp level, the shot's ratio
    of detail under which a frame is blurred, the higher one under which a frame next to a blurred
    one is blurred too, per-direction thresholds, noise level) and --report
    draws the cuts.

    The labels saved with --json (one JSON line per frame: `classify IN --json > labels.jsonl`) or
    --csv are what `run --labels FILE` reuses: the video is scored once, and the labels can be
    corrected by hand before a run.
    """
    from vdeblur.errors import DamagedInputError, OutputError

    collector = None
    if report is not None:
        from vdeblur.report import ReportCollector, check_report_path

        check_report_path(report)
        collector = ReportCollector()

    rows: list[list] = []
    fh = None
    writer = None
    if csv_path:
        try:
            fh = open(csv_path, "w", newline="")
        except OSError as e:
            raise OutputError(f"cannot write {csv_path}: {e.strerror}") from e
        writer = csv.writer(fh)
        writer.writerow(["frame", "pts", "blur_score", "blurred"])
    progress = Progress(enabled=not json, label="classifying")
    progress.start(None)

    def on_decision(d, t) -> None:
        row = {"frame": d.index, "pts": t, "blur_score": d.score, "blurred": bool(d.blurred)}
        if collector is not None:
            collector.add(row)
        if json:
            json_line(row)
        else:
            rows.append(list(row.values()))
            progress.advance()
        if writer is not None:
            writer.writerow(["" if v is None else v for v in row.values()])

    try:
        summary = classify_video(input, select, select_every, threshold, on_decision, select_weights)
    finally:
        progress.stop()
        if fh is not None:
            fh.close()
    if collector is not None:
        collector.set_shots([(x["first"], x["last"]) for x in summary.get("shots", [])])
        collector.save(report, title=f"vdeblur classify --select {select}: {os.path.basename(input)}")
    if json:
        json_line({"summary": summary})
    else:
        print_table("blur per frame", ["frame", "pts", "blur_score", "blurred"], rows)
        runs = ", ".join(f"{a}-{b}" for a, b in summary["runs"]) or "none"
        print(f"{summary['blurred']}/{summary['frames']} frames blurred ({100 * summary['blurred_fraction']:.1f} %); runs: {runs}")
    if summary["damaged"]:
        raise DamagedInputError(
            f"input is damaged: {summary['lost']} frames could not be decoded and were not classified"
        )
