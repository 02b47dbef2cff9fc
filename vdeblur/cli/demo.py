"""`vdeblur demo`: the main job on an embedded default, with no files and no network."""

from __future__ import annotations

import os
import tempfile
from typing import Optional

import typer

from vdeblur.cli import common
from vdeblur.cli.output import fmt, json_line, log, print_table


def demo(
    method: str = typer.Option("lucky", "--method", "-m", autocompletion=common.complete_method, help="Method to demonstrate (default: lucky, as `vdeblur run`)."),
    frames: int = typer.Option(36, "--frames", min=2, help="Length of the synthetic clip."),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic clip."),
    keep: Optional[str] = typer.Option(None, "--keep", help="Keep blurred.mkv, sharp.mkv and restored.mp4 in this folder."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    json: bool = common.JSON,
) -> None:
    """Synthesize a shaky, partially blurred clip, restore it against its sharp reference, print the gain."""
    from vdeblur.data.synth import synth_clip
    from vdeblur.errors import OutputError
    from vdeblur.io.writer import write_rgb_video
    from vdeblur.jobs import RunOptions, Sink, run_file

    clip = synth_clip(n_frames=frames, seed=seed)
    with tempfile.TemporaryDirectory(prefix="vdeblur-demo-") as tmp:
        folder = keep or tmp
        if keep:
            try:
                os.makedirs(keep, exist_ok=True)
            except OSError as e:
                raise OutputError(f"cannot create {keep}: {e.strerror}") from e
        blurred = os.path.join(folder, "blurred.mkv")
        sharp = os.path.join(folder, "sharp.mkv")
        restored = os.path.join(folder, "restored.mp4")
        write_rgb_video(blurred, clip.blurred)
        write_rgb_video(sharp, clip.sharp)
        if not json:
            log(f"synthetic clip: {frames} frames {clip.sharp[0].shape[1]}x{clip.sharp[0].shape[0]}, "
                f"{sum(clip.labels)} blurred; restoring with {method}")
        rows: list[list] = []

        class DemoSink(Sink):
            def warn(self, message: str) -> None:
                log(message)

            def frame(self, inp: str, r) -> None:
                row = [r.frame, clip.labels[r.frame], r.blurred, r.restored, r.psnr_input, r.psnr, r.ssim_input, r.ssim, r.ms]
                if json:
                    json_line({**r.as_dict(), "truly_blurred": clip.labels[r.frame]})
                rows.append(row)

        opts = RunOptions(method=method, device=device, force=True)
        s = run_file(blurred, restored, opts, reference=sharp, sink=DemoSink())
    correct = sum(1 for r in rows if r[1] == r[2])
    restored_rows = [r for r in rows if r[3]]
    gain_restored = (
        sum(r[5] - r[4] for r in restored_rows) / len(restored_rows) if restored_rows else 0.0
    )
    result = {
        **s.as_dict(),
        "psnr_gain": (s.psnr - s.psnr_input) if s.psnr is not None else None,
        "psnr_gain_restored_frames": gain_restored,
        "selector_accuracy": correct / len(rows) if rows else None,
        "method": method,
    }
    if json:
        json_line({"summary": result})
        return
    print_table(
        f"vdeblur demo --method {method}",
        ["frame", "blurred (truth)", "blurred (detected)", "restored", "PSNR in", "PSNR out", "SSIM in", "SSIM out", "ms"],
        rows,
    )
    print(
        f"mean PSNR {fmt(s.psnr_input)} -> {fmt(s.psnr)} dB (gain {fmt(result['psnr_gain'])} dB; frames identical to "
        f"the reference are left out of the means), {fmt(gain_restored)} dB on the {len(restored_rows)} restored "
        f"frames; SSIM {fmt(s.ssim_input, 4)} -> {fmt(s.ssim, 4)}; selector accuracy {100 * result['selector_accuracy']:.0f} %"
    )
