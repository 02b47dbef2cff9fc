"""`vdeblur train --method M --data DIR`: train a neural method and export its weights."""

from __future__ import annotations

import os
from typing import List, Optional

import typer

from vdeblur.cli import common
from vdeblur.cli.output import json_line, log


def train(
    method: str = typer.Option(..., "--method", "-m", autocompletion=common.complete_trainable, help="Neural method to train, or fsm (the frame selector)."),
    data: str = typer.Option(..., "--data", help="Dataset root, or with --dataset photos a folder of photographs (train/, val/, test/ as benchmarks/gather_photos.py writes)."),
    dataset: str = typer.Option("synth", "--dataset", autocompletion=common.complete_train_dataset, help="gopro, bsd, reds, dvd, synth, or photos (pairs made on the fly from photographs: camera shake, moving objects, defocus, noise, JPEG)."),
    variant: str = typer.Option("small", "--variant", help="Architecture variant (see `vdeblur methods`)."),
    steps: int = typer.Option(1000, "--steps", min=1, help="Optimiser steps (ignored with --minutes)."),
    minutes: float = typer.Option(0.0, "--minutes", min=0.0, help="Train for this many minutes of wall time: the cosine schedule runs over the time (0: use --steps). With --resume, the time already spent counts."),
    batch: int = typer.Option(8, "--batch", min=1, help="Samples per step."),
    crop: int = typer.Option(128, "--crop", min=8, help="Training crop side in pixels (rounded down to the network's multiple); fsm on --dataset photos: the widest view (4:3 views C/2 to C wide at the selector's analysis scale)."),
    lr: float = typer.Option(2e-4, "--lr", help="Peak learning rate (Adam, cosine schedule)."),
    ema: float = typer.Option(0.999, "--ema", help="Decay of the moving average of the weights that is validated and exported (0: export the raw weights)."),
    max_blur: float = typer.Option(24.0, "--max-blur", min=0.5, help="--dataset photos: the longest blur over an exposure, in pixels of the crop."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, fp16 or bf16 (autocast)."),
    device: str = typer.Option("auto", "--device", autocompletion=common.complete_device, help="auto, cpu, cuda, cuda:N or mps."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initialisation and of the data draws."),
    noise: Optional[str] = typer.Option(None, "--noise", help="Add R2-D4 Poisson-Gaussian noise on the fly, a preset drawn per sample from this comma list (none, low, moderate, severe)."),
    stage: str = typer.Option("", "--stage", help="golf: f (train F alone), then g (F frozen; pass F's weights with --init)."),
    init: Optional[List[str]] = typer.Option(None, "--init", help="Start from a safetensors file: FILE, or PREFIX=FILE for a part (mlfa: stage1=atrous.safetensors). Repeatable."),
    freeze: Optional[List[str]] = typer.Option(None, "--freeze", help="Hold parameters under this name prefix fixed (mlfa: stage1). Repeatable."),
    val_every: int = typer.Option(200, "--val-every", min=1, help="Validate and checkpoint every N steps (without --minutes)."),
    checkpoint_minutes: float = typer.Option(5.0, "--checkpoint-minutes", min=0.0, help="With --minutes: validate and checkpoint every M minutes of wall time, and at the end."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="Checkpoint file (safetensors + .json; the EMA weights beside it as FILE.ema.safetensors with FILE.ema.toml)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from --checkpoint."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Export fp16 safetensors here and print its weights.toml entry."),
    name: Optional[str] = typer.Option(None, "--name", help="weights.toml entry name (default METHOD-VARIANT)."),
    json: bool = common.JSON,
) -> None:
    """Train METHOD on the train split of DATA (validation on its test split, or val/ of photos)."""
    from vdeblur.data.datasets import open_dataset
    from vdeblur.errors import UsageError
    from vdeblur.train.loop import TrainConfig, export, train_fsm
    from vdeblur.train.loop import train as run_train

    if resume and not checkpoint:
        raise UsageError("--resume needs --checkpoint FILE")
    cfg = TrainConfig(method=method, variant=variant, steps=steps, batch=batch, crop=crop, lr=lr,
                      precision=precision, device=device, seed=seed, val_every=val_every,
                      noise=tuple(n.strip() for n in noise.split(",") if n.strip()) if noise else (),
                      stage=stage, init=tuple(init or ()), freeze=tuple(freeze or ()), minutes=minutes,
                      ema=ema, checkpoint_minutes=checkpoint_minutes, max_blur=max_blur)
    if dataset == "photos":
        from vdeblur.data.online import Photos

        train_set = Photos.open(data, "train")
        val_set = Photos.open(data, "val") if os.path.isdir(os.path.join(data, "val")) else None
        if val_set is None:
            log("no val/ folder of photographs: training without validation")
    else:
        train_set = open_dataset(dataset, data, "train")
        try:
            val_set = open_dataset(dataset, data, "test")
        except Exception:  # noqa: BLE001 - validation is optional
            val_set = None
            log("no test split: training without validation")
    total = f"{minutes:g} min" if minutes > 0 else str(steps)

    def on_step(info: dict) -> None:
        if json:
            json_line(info)
        elif info["step"] % max(1, val_every // 4) == 0 or "val_psnr" in info:
            extra = f", val PSNR {info['val_psnr']:.2f} dB (input {info['val_psnr_input']:.2f})" if "val_psnr" in info else ""
            extra += f", val accuracy {info['val_accuracy']:.3f}" if "val_accuracy" in info else ""
            extra += f", pairs ranked {info['val_rank']:.3f}" if "val_rank" in info else ""
            rate = f", {info['samples_per_s']:.1f} samples/s" if "samples_per_s" in info else ""
            at = f" ({info['elapsed_s'] / 60:.1f} of {total})" if "elapsed_s" in info else f"/{total}"
            log(f"step {info['step']}{at}: loss {info['loss']:.4f}, {info['s_per_step']:.2f} s/step{rate}{extra}")

    fit = train_fsm if method == "fsm" else run_train
    m = fit(cfg, train_set, val_set, checkpoint=checkpoint, resume=resume, on_step=on_step)
    if out:
        extra = "".join([f" --noise {noise}" if noise else "", f" --stage {stage}" if stage else "",
                         *(f" --init {i}" for i in cfg.init), *(f" --freeze {f}" for f in cfg.freeze)])
        length = f"--minutes {minutes:g}" if minutes > 0 else f"--steps {steps}"
        kind = f" --dataset {dataset}" if dataset != "synth" else ""
        entry = export(m, out, name=name or f"{method}-{variant}", method_name=method, variant=variant,
                       data=f"{dataset}:{data} (train split)",
                       recipe=f"vdeblur train --method {method} --variant {variant}{kind} {length} --batch {batch} "
                              f"--crop {crop} --lr {lr} --ema {ema} --precision {precision} --seed {seed}{extra}",
                       good_for="see the bench table in README")
        print(entry)
