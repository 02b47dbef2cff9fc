"""`vdeblur train --method M --data DIR`: train a neural method and export its weights."""

from __future__ import annotations

from typing import List, Optional

import typer

from vdeblur.cli import common
from vdeblur.cli.output import json_line, log


def train(
    method: str = typer.Option(..., "--method", "-m", help="Neural method to train, or fsm (the frame selector)."),
    data: str = typer.Option(..., "--data", help="Dataset root."),
    dataset: str = typer.Option("synth", "--dataset", help="gopro, bsd, reds, dvd or synth."),
    variant: str = typer.Option("small", "--variant", help="Architecture variant."),
    steps: int = typer.Option(1000, "--steps", min=1),
    batch: int = typer.Option(8, "--batch", min=1),
    crop: int = typer.Option(128, "--crop", min=8),
    lr: float = typer.Option(2e-4, "--lr"),
    precision: str = typer.Option("fp32", "--precision", help="fp32, fp16 or bf16 (autocast)."),
    device: str = typer.Option("auto", "--device"),
    seed: int = typer.Option(0, "--seed"),
    noise: Optional[str] = typer.Option(None, "--noise", help="Add R2-D4 Poisson-Gaussian noise on the fly, a preset drawn per sample from this comma list (none, low, moderate, severe)."),
    stage: str = typer.Option("", "--stage", help="golf: f (train F alone), then g (F frozen; pass F's weights with --init)."),
    init: Optional[List[str]] = typer.Option(None, "--init", help="Start from a safetensors file: FILE, or PREFIX=FILE for a part (mlfa: stage1=atrous.safetensors). Repeatable."),
    freeze: Optional[List[str]] = typer.Option(None, "--freeze", help="Hold parameters under this name prefix fixed (mlfa: stage1). Repeatable."),
    val_every: int = typer.Option(200, "--val-every", min=1, help="Validate and checkpoint every N steps."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="Checkpoint file (safetensors + .json)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from --checkpoint."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Export fp16 safetensors here and print its weights.toml entry."),
    name: Optional[str] = typer.Option(None, "--name", help="weights.toml entry name (default METHOD-VARIANT)."),
    json: bool = common.JSON,
) -> None:
    """Train METHOD on the train split of DATA (validation on its test split)."""
    from vdeblur.data.datasets import open_dataset
    from vdeblur.errors import UsageError
    from vdeblur.train.loop import TrainConfig, export, train_fsm
    from vdeblur.train.loop import train as run_train

    if resume and not checkpoint:
        raise UsageError("--resume needs --checkpoint FILE")
    cfg = TrainConfig(method=method, variant=variant, steps=steps, batch=batch, crop=crop, lr=lr,
                      precision=precision, device=device, seed=seed, val_every=val_every,
                      noise=tuple(n.strip() for n in noise.split(",") if n.strip()) if noise else (),
                      stage=stage, init=tuple(init or ()), freeze=tuple(freeze or ()))
    train_set = open_dataset(dataset, data, "train")
    try:
        val_set = open_dataset(dataset, data, "test")
    except Exception:  # noqa: BLE001 - validation is optional
        val_set = None
        log("no test split: training without validation")

    def on_step(info: dict) -> None:
        if json:
            json_line(info)
        elif info["step"] % max(1, val_every // 4) == 0 or "val_psnr" in info:
            extra = f", val PSNR {info['val_psnr']:.2f} dB (input {info['val_psnr_input']:.2f})" if "val_psnr" in info else ""
            extra += f", val accuracy {info['val_accuracy']:.3f}" if "val_accuracy" in info else ""
            log(f"step {info['step']}/{steps}: loss {info['loss']:.4f}, {info['s_per_step']:.2f} s/step{extra}")

    fit = train_fsm if method == "fsm" else run_train
    m = fit(cfg, train_set, val_set, checkpoint=checkpoint, resume=resume, on_step=on_step)
    if out:
        extra = "".join([f" --noise {noise}" if noise else "", f" --stage {stage}" if stage else "",
                         *(f" --init {i}" for i in cfg.init), *(f" --freeze {f}" for f in cfg.freeze)])
        entry = export(m, out, name=name or f"{method}-{variant}", method_name=method, variant=variant,
                       data=f"{dataset}:{data} (train split)",
                       recipe=f"vdeblur train --method {method} --variant {variant} --steps {steps} --batch {batch} "
                              f"--crop {crop} --lr {lr} --precision {precision} --seed {seed}{extra}",
                       good_for="see the bench table in README")
        print(entry)
