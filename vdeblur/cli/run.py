"""`vdeblur run IN -o OUT`: restore a video."""

from __future__ import annotations

from typing import Optional

import typer

from vdeblur.cli import common
from vdeblur.cli.output import Progress, json_line, log, print_table


def run(
    input: str = typer.Argument(..., help="Input video (any FFmpeg-readable file; '-' for stdin with --io ffmpeg)."),
    output: str = typer.Option(..., "-o", "--output", help="Output video ('-' for stdout with --io ffmpeg)."),
    method: str = typer.Option("richardson-lucy", "--method", "-m", help="Restoration method (see `vdeblur methods`)."),
    psf: Optional[str] = typer.Option(None, "--psf", help="PSF for wiener / richardson-lucy: motion:LENGTH:ANGLE or gaussian:SIGMA (default: estimated per frame)."),
    iterations: Optional[int] = typer.Option(None, "--iterations", min=1, help="Iterations, for iterative methods."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Your own safetensors weights for a neural method (default: its weights.toml entry)."),
    param: list[str] = typer.Option([], "--param", "-p", help="Method hyperparameter KEY=VALUE (repeatable; see `vdeblur methods`)."),
    select: str = common.SELECT,
    select_every: int = common.SELECT_EVERY,
    threshold: Optional[float] = common.THRESHOLD,
    select_weights: Optional[str] = common.SELECT_WEIGHTS,
    reference: Optional[str] = typer.Option(None, "--reference", help="Sharp reference video: PSNR/SSIM per frame."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, fp16 or bf16 (autocast)."),
    batch: int = typer.Option(0, "--batch", min=0, help="Frames per batch (0: 4 on a GPU, 1 on the CPU)."),
    tile: Optional[int] = typer.Option(None, "--tile", min=16, help="Restore in overlapping tiles of this size (default: whole frames; tiles of 512 then 256 when a frame does not fit in device memory)."),
    tile_overlap: int = typer.Option(32, "--tile-overlap", min=0, help="Overlap of the tiles in pixels, blended with a smooth window."),
    ensemble: bool = typer.Option(False, "--ensemble", help="Geometric self-ensemble: average over 8 flips/rotations (8x slower)."),
    codec: str = typer.Option("libx264", "--codec", help="Video encoder."),
    crf: Optional[int] = typer.Option(18, "--crf", help="Constant rate factor (quality) of the encoder."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Encoder preset (e.g. ultrafast ... veryslow)."),
    pix_fmt: Optional[str] = typer.Option(None, "--pix-fmt", help="Output pixel format (default: 8-bit equivalent of the input's; yuv420p10le keeps 10 bits)."),
    format: Optional[str] = typer.Option(None, "--format", help="Output container, when the file name does not say (e.g. matroska for '-')."),
    io: str = typer.Option("pyav", "--io", help="I/O backend: pyav, or ffmpeg (an ffmpeg subprocess; allows '-')."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing output."),
    json: bool = common.JSON,
) -> None:
    """Restore a video: decode, select blurred frames, restore them, re-encode with audio and timing kept."""
    from vdeblur.errors import UsageError
    from vdeblur.restore import RunOptions, restore_video

    if output == "-" and json:
        raise UsageError("--json writes to stdout, which -o - already uses for the video")
    cfg = common.parse_params(param)
    cfg.update({k: v for k, v in (("psf", psf), ("iterations", iterations), ("weights", weights)) if v is not None})
    opts = RunOptions(
        method=method, method_cfg=cfg, select=select, select_every=select_every, threshold=threshold,
        select_weights=select_weights,
        device=device, precision=precision, batch=batch, tile=tile, tile_overlap=tile_overlap, ensemble=ensemble, codec=codec, crf=crf, preset=preset,
        pix_fmt=pix_fmt, io=io, force=force, format=format,
    )
    progress = Progress(enabled=not json)
    t_start: list[float] = []

    def on_start(info) -> None:
        progress.start(info.expected_frames)

    def on_result(r) -> None:
        import time

        if json:
            json_line(vars(r))
        else:
            if not t_start:
                t_start.append(time.perf_counter())
            dt = time.perf_counter() - t_start[0]
            progress.advance(r.frame / dt if dt > 0 else 0.0)

    try:
        summary = restore_video(input, output, opts, reference=reference, on_start=on_start,
                                on_result=on_result, warn=log)
    finally:
        progress.stop()
    if json:
        json_line({"summary": summary.as_dict()})
    else:
        d = summary.as_dict()
        print_table(f"vdeblur run --method {method}", list(d), [list(d.values())], to_stderr=output == "-")
