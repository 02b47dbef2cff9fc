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


def detect_kind(root: str) -> str:
    """The dataset kind a folder's layout says (see vdeblur.data.datasets), or a UsageError."""
    import os

    from vdeblur.errors import InputError, UsageError

    if not os.path.isdir(root):
        raise InputError(f"dataset root {root}: {'not a folder' if os.path.exists(root) else 'does not exist'}")
    names = set(os.listdir(root))
    if "quantitative_datasets" in names:
        return "dvd"
    if any(n.startswith("BSD_") for n in names):
        return "bsd"
    if any(os.path.isdir(os.path.join(root, s, f"{s}_blur")) for s in ("train", "val")):
        return "reds"
    seqs = [os.path.join(root, s, q) for s in ("train", "test") if os.path.isdir(os.path.join(root, s))
            for q in os.listdir(os.path.join(root, s))]
    if any(os.path.isdir(os.path.join(q, "blur_gamma")) for q in seqs):
        return "gopro"
    if any(os.path.isdir(os.path.join(q, "blur")) for q in seqs):
        return "synth"  # ROOT/<split>/<seq>/{blur,sharp}: what `vdeblur synth` writes (GoPro without blur_gamma)
    raise UsageError(f"cannot tell the dataset kind of {root} from its layout: pass --dataset gopro, bsd, reds, dvd or synth")


def check_split(kind: str, root: str, split: str) -> None:
    """A synth or GoPro tree without the split asked for: say in one line how to get one."""
    import os

    from vdeblur.errors import InputError

    if kind.lower() not in ("synth", "gopro") or not os.path.isdir(root):
        return
    here = os.path.join(root, split)
    if os.path.isdir(here) and any(not n.startswith(".") and os.path.isdir(os.path.join(here, n)) for n in os.listdir(here)):
        return
    others = sorted(s for s in ("train", "test") if s != split and os.path.isdir(os.path.join(root, s))
                    and any(not n.startswith(".") for n in os.listdir(os.path.join(root, s))))
    if not others:
        return  # not such a tree at all: open_dataset says what is missing
    raise InputError(
        f"{root} has no {split} sequences (it has {', '.join(others)}): make a dataset with a test split "
        f"(`vdeblur synth SOURCE -o NEW_DIR` holds out --test-fraction of it) or pass --split {others[0]}"
    )


def bench(
    dataset: Optional[str] = typer.Option(None, "--dataset", autocompletion=common.complete_dataset, help="gopro, bsd, reds, dvd or synth (default: told from the folder's layout)."),
    root: str = typer.Option(..., "--root", help="The dataset's root folder."),
    methods: Optional[str] = typer.Option(None, "--methods", autocompletion=common.comma_list(common.complete_method), help="Comma list of NAME or NAME:VARIANT (e.g. r2d4:tiny; default: every method that has what it needs to run, in its default variant; '' for none)."),
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

    dataset = dataset or detect_kind(root)
    check_split(dataset, root, split)
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
        print_table(f"vdeblur bench --dataset {dataset.lower()} ({split}{', noisy input' if noisy else ''})",
                    ["method", "PSNR", "SSIM", "PSNR input", "SSIM input", "ms/frame", "frames"],
                    [[r["method"], r["psnr"], r["ssim"], r["psnr_input"], r["ssim_input"], r["ms_per_frame"],
                      r["frames"]] for r in mrows])
        for r in rows:
            if "selector" in r:
                acc = r["accuracy"]
                print(f"selector {r['selector']}: accuracy {'-' if acc is None else f'{100 * acc:.1f} %'} over {r['frames']} frames")
