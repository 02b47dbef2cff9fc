"""`vdeblur bench --dataset KIND --root DIR`: quality and speed of methods on a dataset."""

from __future__ import annotations

from typing import Optional

import typer

from vdeblur.cli import common
from vdeblur.cli.output import json_line, log, print_table


def default_methods() -> list[str]:
    """Every method that can run: classical ones, and neural ones with a weights.toml entry."""
    from vdeblur.methods.registry import list_methods

    return [s.name for s in list_methods()
            if s.kind in ("classical", "plugin") or (s.kind == "neural" and s.weight_entries())]


def bench(
    dataset: str = typer.Option(..., "--dataset", autocompletion=common.complete_dataset, help="gopro, bsd, reds, dvd or synth."),
    root: str = typer.Option(..., "--root", help="The dataset's root folder."),
    methods: Optional[str] = typer.Option(None, "--methods", autocompletion=common.comma_list(common.complete_method), help="Comma list (default: every method that has what it needs to run; '' for none)."),
    selectors: str = typer.Option("laplacian", "--selectors", autocompletion=common.comma_list(common.complete_selector), help="Comma list of selectors to score ('' for none)."),
    split: str = typer.Option("test", "--split", help="Split to read."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="At most N frames per method."),
    device: str = typer.Option("auto", "--device", autocompletion=common.complete_device, help="auto, cpu, cuda, cuda:N or mps."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, fp16 or bf16."),
    noisy: bool = typer.Option(False, "--noisy", help="synth data: restore the noisy/ frames (joint denoising and deblurring) instead of blur/."),
    json: bool = common.JSON,
) -> None:
    """Per method: mean PSNR/SSIM and ms per frame, beside the input's own PSNR/SSIM; selectors' accuracy."""
    from vdeblur.bench.runner import run_bench
    from vdeblur.data.datasets import open_dataset

    ds = open_dataset(dataset, root, split)
    names = [m for m in (default_methods() if methods is None else methods.split(",")) if m.strip()]
    sels = [s for s in selectors.split(",") if s]
    rows: list[dict] = []

    def on_row(row: dict) -> None:
        rows.append(row)
        if json:
            json_line(row)
        else:
            log(f"{row.get('method') or row.get('selector')}: done")

    run_bench(ds, names, sels, on_row=on_row, device=device, precision=precision, limit=limit, noisy=noisy)
    if not json:
        mrows = [r for r in rows if "method" in r]
        print_table(f"vdeblur bench --dataset {dataset} ({split}{', noisy input' if noisy else ''})",
                    ["method", "PSNR", "SSIM", "PSNR input", "SSIM input", "ms/frame", "frames"],
                    [[r["method"], r["psnr"], r["ssim"], r["psnr_input"], r["ssim_input"], r["ms_per_frame"],
                      r["frames"]] for r in mrows])
        for r in rows:
            if "selector" in r:
                acc = r["accuracy"]
                print(f"selector {r['selector']}: accuracy {'-' if acc is None else f'{100 * acc:.1f} %'} over {r['frames']} frames")
