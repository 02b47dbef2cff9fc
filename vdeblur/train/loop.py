"""Train a neural method on a dataset: random crops and flips of frame windows, Adam with a
cosine schedule, autocast + channels_last, checkpoints (safetensors + JSON, never a pickle),
--resume, validation PSNR, and export of an fp16 safetensors file with its weights.toml entry.

Losses: Charbonnier L1 on the restored frame for every method; R2-D4 adds its denoising term,
L_blur + 0.6 L_noise (r2d4-video-denoise-deblur.md Section IV), when the data has ``noisy/``
frames (input = noisy, denoised target = the clean blurred frame). The VGG perceptual terms of the
papers need ImageNet weights that cannot be downloaded here and are not used.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import torch

from vdeblur.errors import InputError


@dataclass
class TrainConfig:
    method: str
    variant: str = "small"
    steps: int = 1000
    batch: int = 8
    crop: int = 128
    lr: float = 2e-4
    precision: str = "fp32"
    device: str = "auto"
    seed: int = 0
    val_every: int = 200
    val_frames: int = 8


class Pairs:
    """All (window of inputs, target[, clean blurred]) samples of a dataset, loaded into memory
    as uint8 (training sets made by `vdeblur synth` are small); windows reflect at sequence ends."""

    def __init__(self, dataset: Any, past: int, future: int):
        self.seqs: list[tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray] | None]] = []
        for seq in dataset.sequences():
            noisy = seq.has_noisy
            frames = list(seq.frames(include_noisy=noisy))
            blur = [f[0] for f in frames]
            sharp = [f[1] for f in frames]
            inputs = [f[2] for f in frames] if noisy else blur
            self.seqs.append((inputs, sharp, blur if noisy else None))
        if not self.seqs:
            raise InputError("the training split has no frames")
        self.past, self.future = past, future
        self.index = [(s, t) for s, (inp, _, _) in enumerate(self.seqs) for t in range(len(inp))]

    def sample(self, rng: np.random.Generator, batch: int, crop: int) -> dict[str, torch.Tensor]:
        from vdeblur.engine.pipeline import reflect

        xs, ys, cs = [], [], []
        for _ in range(batch):
            s, t = self.index[rng.integers(len(self.index))]
            inp, sharp, clean = self.seqs[s]
            n = len(inp)
            h, w = inp[t].shape[:2]
            ch, cw = min(crop, h), min(crop, w)
            y0, x0 = rng.integers(h - ch + 1), rng.integers(w - cw + 1)
            flip_h, flip_v = rng.random() < 0.5, rng.random() < 0.5

            def cut(img: np.ndarray) -> np.ndarray:
                c = img[y0 : y0 + ch, x0 : x0 + cw]
                c = c[:, ::-1] if flip_h else c
                return c[::-1] if flip_v else c

            xs.append(np.stack([cut(inp[reflect(t + k, n - 1)]) for k in range(-self.past, self.future + 1)]))
            ys.append(cut(sharp[t]))
            if clean is not None:
                cs.append(cut(clean[t]))
        out = {"x": _to_tensor(np.stack(xs)), "y": _to_tensor(np.stack(ys))}
        if cs:
            out["clean"] = _to_tensor(np.stack(cs))
        return out


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a)).float() / 255
    return t.movedim(-1, -3)  # [..., H, W, 3] -> [..., 3, H, W]


def charbonnier(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((a - b) ** 2 + eps**2).mean()


def _forward(method: Any, x: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The restored frame and, for r2d4, the denoised intermediate."""
    if name == "r2d4":
        cur = x[:, -1]
        past = x[:, :-1].flip(1)
        denoised, restored = method.net(cur, past, past)
        return restored, denoised
    out, _ = method.restore(x)
    return out, None


def save_checkpoint(path: str, method: Any, opt: torch.optim.Optimizer, step: int, cfg: TrainConfig) -> None:
    """Weights and Adam's moments in safetensors, step and config in JSON beside it (no pickle)."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in method.net.state_dict().items()}
    for i, p in enumerate(method.net.parameters()):
        st = opt.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in st:
                tensors[f"opt.{i}.{key}"] = st[key].detach().cpu().contiguous()
    tmp = path + ".tmp"
    save_file(tensors, tmp)
    os.replace(tmp, path)
    with open(path + ".json", "w") as fh:
        json.dump({"step": step, "config": asdict(cfg)}, fh)


def load_checkpoint(path: str, method: Any, opt: torch.optim.Optimizer) -> int:
    from safetensors.torch import load_file

    try:
        tensors = load_file(path)
        meta = json.load(open(path + ".json"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot resume from {path}: {e}") from None
    method.net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    step = int(meta["step"])
    for i, p in enumerate(method.net.parameters()):
        if f"opt.{i}.exp_avg" in tensors:
            opt.state[p] = {"step": torch.tensor(float(step)), "exp_avg": tensors[f"opt.{i}.exp_avg"].to(p.device),
                            "exp_avg_sq": tensors[f"opt.{i}.exp_avg_sq"].to(p.device)}
    return step


def train(cfg: TrainConfig, train_set: Any, val_set: Any | None, *, checkpoint: str | None = None,
          resume: bool = False, on_step: Callable[[dict], None] = lambda d: None) -> Any:
    """Train ``cfg.method`` from a fresh random init (or the checkpoint); returns the method."""
    from vdeblur.engine.device import resolve_device
    from vdeblur.engine.precision import autocast, check_precision
    from vdeblur.methods.neural import make_untrained

    check_precision(cfg.precision)
    torch.manual_seed(cfg.seed)
    method, _ = make_untrained(cfg.method, cfg.variant)
    device = resolve_device(cfg.device)
    method = method.to(device, memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(method.parameters(), lr=cfg.lr)
    start = load_checkpoint(checkpoint, method, opt) if resume and checkpoint else 0
    data = Pairs(train_set, method.past, method.future)
    rng = np.random.default_rng(cfg.seed + start)
    multiple = method.pad_multiple
    crop = max(multiple, cfg.crop - cfg.crop % multiple)
    t0 = time.perf_counter()
    for step in range(start, cfg.steps):
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / max(1, cfg.steps)))  # cosine
        for g in opt.param_groups:
            g["lr"] = lr
        b = {k: v.to(device) for k, v in data.sample(rng, cfg.batch, crop).items()}
        with autocast(device, cfg.precision):
            out, denoised = _forward(method, b["x"], cfg.method)
            loss = charbonnier(out.float(), b["y"])
            if denoised is not None and "clean" in b:
                loss = loss + 0.6 * charbonnier(denoised.float(), b["clean"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        info: dict[str, Any] = {"step": step + 1, "loss": loss.item(), "lr": lr,
                                "s_per_step": (time.perf_counter() - t0) / (step + 1 - start)}
        if val_set is not None and ((step + 1) % cfg.val_every == 0 or step + 1 == cfg.steps):
            info["val_psnr"], info["val_psnr_input"] = validate(method, val_set, cfg, device)
            method.train()
        if checkpoint and ((step + 1) % cfg.val_every == 0 or step + 1 == cfg.steps):
            save_checkpoint(checkpoint, method, opt, step + 1, cfg)
        on_step(info)
    return method.eval()


def validate(method: Any, val_set: Any, cfg: TrainConfig, device: torch.device) -> tuple[float, float]:
    """Mean PSNR of restored and input frames over the first ``val_frames`` validation frames."""
    from vdeblur.engine.pipeline import mean_finite, reflect
    from vdeblur.engine.restorer import Restorer
    from vdeblur.metrics import psnr

    restorer = Restorer(method.eval(), device, cfg.precision)
    data = Pairs(val_set, method.past, method.future)
    outs, ins = [], []
    n = 0
    for inp, sharp, _ in data.seqs:
        for t in range(len(inp)):
            if n >= cfg.val_frames:
                break
            window = [inp[reflect(t + k, len(inp) - 1)] for k in range(-method.past, method.future + 1)]
            out = restorer.restore([window])[0][0]
            outs.append(psnr(out, sharp[t]))
            ins.append(psnr(inp[t], sharp[t]))
            n += 1
    both = mean_finite(outs), mean_finite(ins)
    return tuple(float("nan") if m is None else m for m in both)  # type: ignore[return-value]


def export(method: Any, out: str, *, name: str, method_name: str, variant: str, data: str, recipe: str,
           good_for: str, license: str = "MIT") -> str:
    """Write fp16 safetensors and return its weights.toml entry (sha256 and size filled in)."""
    from vdeblur.weights.store import save_state_dict

    sha, size = save_state_dict(method.net.state_dict(), out, half=True,
                                metadata={"method": method_name, "variant": variant})
    return (
        f'\n[[weights]]\nname = "{name}"\nmethod = "{method_name}"\nvariant = "{variant}"\n'
        f'file = "files/{os.path.basename(out)}"\nsha256 = "{sha}"\nsize = {size}\nlicense = "{license}"\n'
        f'data = "{data}"\nrecipe = "{recipe}"\ngood_for = "{good_for}"\n'
    )
