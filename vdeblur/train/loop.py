"""Train a neural method on a dataset: random crops and flips of frame windows, Adam with a
cosine schedule, autocast + channels_last, checkpoints (safetensors + JSON, never a pickle),
--resume, validation PSNR, and export of an fp16 safetensors file with its weights.toml entry.

Losses: Charbonnier L1 on the restored frame for every method; R2-D4 adds its denoising term,
L_blur + 0.6 L_noise (r2d4-video-denoise-deblur.md Section IV), when the input is noisy: the data
has ``noisy/`` frames, or ``noise`` adds R2-D4's Poisson-Gaussian noise (Eq. 1, a preset drawn per
sample) on the fly; the denoised target is then the clean blurred frame. The VGG perceptual terms
of the papers need ImageNet weights that cannot be downloaded here and are not used.

Data: a dataset of (blurred, sharp) frames (:class:`Pairs`), or photographs
(:class:`vdeblur.data.online.Photos`), from which :class:`vdeblur.data.online.OnlineDegrader` makes
new crops and new degradations on the training device at every step (camera shake, moving
objects, defocus, noise, compression); validation then uses a fixed set of samples made the same
way from the validation photographs.

Schedule: ``steps`` steps, or with ``minutes`` > 0 a wall-clock budget: the cosine schedule runs
over the elapsed time (after a linear warm-up over its first 2 %), so a run fits the time it is
given on any hardware. An exponential moving average (EMA) of the weights (``ema`` decay) is what
validation scores and what is exported. A checkpoint (weights, EMA, Adam's moments in
safetensors; step, elapsed time and config in JSON) is written every ``checkpoint_minutes`` of
wall time (or every ``val_every`` steps), with the EMA weights beside it as an fp16 file and a
weights.toml entry (``CKPT.ema.safetensors``, ``CKPT.ema.toml``) that ``vdeblur bench`` can use
through VDEBLUR_WEIGHTS_TOML while the run goes on. A damaged checkpoint, or one of another
network, is a WeightsError (one line, exit 5) on ``--resume``.

Stage-wise training: ``init`` fills part of the network from a safetensors file
(``PREFIX=FILE``, e.g. ``stage1=atrous.safetensors`` for mlfa, whose stage 1 is the atrous network,
atrous-mlfa Section 3) and ``freeze`` holds parameters under a prefix fixed. Golf follows its paper
(golf-optimizer-deconvolution.md 5.2): ``stage="f"`` trains F alone on x_0 = F(y); ``stage="g"``
freezes F and trains G over N = 5 recurrent applications (Section 6.1), the loss averaged over
x_1..x_5 (each x_i is pulled toward the sharp image, Eq. 3-4); G's last conv starts at zero, so G
starts as the identity.

The fsm selector (:func:`train_fsm`) is trained as a classifier, cross-entropy on Table 3's two
scores (deblurnet-frame-selection.md III-B): on a labelled dataset, whole frames (or crops of
``crop``), label = the input differs from its target, sharp and blurred frames drawn equally
often; on photographs, single frames made on the fly at the selector's analysis scale, labelled by
their blur length over the exposure (ambiguous lengths left out), with the same schedule, EMA and
checkpoints as the restoring nets.
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

from vdeblur.errors import InputError, UsageError, WeightsError


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
    noise: tuple[str, ...] = ()  # presets drawn per sample ("none" = clean), added on the fly
    stage: str = ""  # golf: "f" or "g"
    init: tuple[str, ...] = ()  # "FILE" or "PREFIX=FILE"
    freeze: tuple[str, ...] = ()  # parameter-name prefixes held fixed
    minutes: float = 0.0  # > 0: a wall-clock budget (the schedule runs over time; steps ignored)
    ema: float = 0.999  # decay of the exported weights' moving average (0: no EMA)
    checkpoint_minutes: float = 5.0  # minutes mode: checkpoint and validate this often
    max_blur: float = 24.0  # photos: the longest blur over an exposure, in output pixels


class Pairs:
    """All (window of inputs, target[, clean blurred]) samples of a dataset, loaded into memory
    as uint8 (training sets made by `vdeblur synth` are small); windows reflect at sequence ends."""

    def __init__(self, dataset: Any, past: int, future: int, noise: tuple[str, ...] = ()):
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
        self.noise = _noise_levels(noise)
        self.index = [(s, t) for s, (inp, _, _) in enumerate(self.seqs) for t in range(len(inp))]

    def sample(self, rng: np.random.Generator, batch: int, crop: int) -> dict[str, torch.Tensor]:
        from vdeblur.data.degrade import poisson_gaussian
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

            window = np.stack([cut(inp[reflect(t + k, n - 1)]) for k in range(-self.past, self.future + 1)])
            ys.append(cut(sharp[t]))
            if clean is not None:
                cs.append(cut(clean[t]))
            elif self.noise:  # noise on the fly: the clean blurred frame is the denoising target
                cs.append(window[self.past].copy())
                level = self.noise[rng.integers(len(self.noise))]
                if level is not None:
                    window = np.stack([poisson_gaussian(f, *level, rng) for f in window])
            xs.append(window)
        out = {"x": _to_tensor(np.stack(xs)), "y": _to_tensor(np.stack(ys))}
        if cs:
            out["clean"] = _to_tensor(np.stack(cs))
        return out


def _noise_levels(names: tuple[str, ...]) -> list[tuple[float, float] | None]:
    from vdeblur.data.degrade import NOISE_PRESETS

    out: list[tuple[float, float] | None] = []
    for n in names:
        if n != "none" and n not in NOISE_PRESETS:
            raise UsageError(f"unknown noise preset {n!r}: choose none, {', '.join(NOISE_PRESETS)}")
        out.append(None if n == "none" else NOISE_PRESETS[n])
    return out


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a)).float() / 255
    return t.movedim(-1, -3)  # [..., H, W, 3] -> [..., 3, H, W]


def charbonnier(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((a - b) ** 2 + eps**2).mean()


GOLF_TRAIN_ITERATIONS = 5  # golf-optimizer-deconvolution.md 6.1: N = 5 during training


def _forward(method: Any, x: torch.Tensor, cfg: TrainConfig) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """The restored frame(s) the loss compares with the target and, for r2d4, the denoised
    intermediate."""
    if cfg.method == "r2d4":
        cur = x[:, -1]
        past = x[:, :-1].flip(1)
        denoised, restored = method.net(cur, past, past)
        return [restored], denoised
    if cfg.method == "golf" and cfg.stage == "f":
        return [method.net.f(x[:, 0])], None
    if cfg.method == "golf" and cfg.stage == "g":
        with torch.no_grad():
            est = method.net.f(x[:, 0])
        outs = []
        for _ in range(GOLF_TRAIN_ITERATIONS):
            est = method.net.g(est)
            outs.append(est)
        return outs, None
    out, _ = method.restore(x)
    return [out], None


def _apply_init(net: torch.nn.Module, specs: tuple[str, ...]) -> set[str]:
    """Load ``FILE`` or ``PREFIX=FILE`` (safetensors) into ``net``; every tensor must fit.
    Returns the names of the tensors loaded."""
    from vdeblur.weights.store import load_state_dict

    own = net.state_dict()
    loaded: set[str] = set()
    for spec in specs:
        prefix, _, path = spec.rpartition("=")
        state = {(f"{prefix}." if prefix else "") + k: v for k, v in load_state_dict(path).items()}
        bad = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
        if bad or not state:
            raise UsageError(f"--init {spec}: {len(bad)} of {len(state)} tensors do not fit the network "
                             f"(first: {bad[:1]})")
        net.load_state_dict(state, strict=False)
        loaded |= set(state)
    return loaded


def _trainable(net: torch.nn.Module, cfg: TrainConfig) -> list[torch.nn.Parameter]:
    """The parameters the optimiser updates; the rest (``freeze`` prefixes, golf's other
    network) are held fixed."""
    frozen = list(cfg.freeze)
    if cfg.method == "golf" and cfg.stage == "f":
        frozen.append("g")
    elif cfg.method == "golf" and cfg.stage == "g":
        frozen.append("f")
    names = [n for n, _ in net.named_parameters()]
    under = lambda f, n: n == f or n.startswith(f + ".")  # noqa: E731
    for f in cfg.freeze:
        if not any(under(f, n) for n in names):
            raise UsageError(f"--freeze {f!r} names no parameter of {cfg.method} "
                             f"(top-level parts: {', '.join(sorted({n.split('.')[0] for n in names}))})")
    params = []
    for name, p in net.named_parameters():
        fixed = any(under(f, name) for f in frozen)
        p.requires_grad_(not fixed)
        if not fixed:
            params.append(p)
    if not params:
        raise UsageError("nothing to train: every parameter is frozen")
    return params


def _set_cosine_lr(opt: torch.optim.Optimizer, cfg: TrainConfig, step: int,
                   progress: float | None = None) -> float:
    """Cosine schedule from ``cfg.lr`` at step 0 to 0 at ``cfg.steps`` (or over ``progress``, the
    share of the time budget spent, after a linear warm-up over its first 2 %); returns the rate."""
    if progress is None:
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / max(1, cfg.steps)))
    else:
        p = min(max(progress, 0.0), 1.0)
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * p)) * min(1.0, (p + 1e-3) / 0.02)
    for g in opt.param_groups:
        g["lr"] = lr
    return lr


def _opt_params(opt: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    return [p for g in opt.param_groups for p in g["params"]]


def train_step(method: Any, opt: torch.optim.Optimizer, ema: "EMA | None", b: dict[str, torch.Tensor],
               cfg: TrainConfig, device: torch.device) -> torch.Tensor:
    """One optimiser step on the batch ``b``: the forward pass under autocast, Charbonnier on
    every output (R2-D4 adds 0.6 of its denoising term when ``b`` has the clean frame), Adam,
    then the moving average. Returns the loss."""
    from vdeblur.engine.precision import autocast

    with autocast(device, cfg.precision):
        outs, denoised = _forward(method, b["x"], cfg)
        loss = sum(charbonnier(o.float(), b["y"]) for o in outs) / len(outs)
        if denoised is not None and "clean" in b:
            loss = loss + 0.6 * charbonnier(denoised.float(), b["clean"])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if ema is not None:
        ema.update(method.net)
    return loss


class EMA:
    """Exponential moving average of a network's state (floats averaged, the rest copied); the
    decay ramps up as (1 + n) / (10 + n) so early averages are not dominated by the start."""

    def __init__(self, net: torch.nn.Module, decay: float, state: dict[str, torch.Tensor] | None = None):
        self.decay, self.n = decay, 0
        own = net.state_dict()
        self.state = {k: (state[k] if state is not None and k in state else v).detach().clone().to(v.device)
                      for k, v in own.items()}

    @torch.no_grad()
    def update(self, net: torch.nn.Module) -> None:
        self.n += 1
        d = min(self.decay, (1 + self.n) / (10 + self.n))
        for k, v in net.state_dict().items():
            e = self.state[k]
            if e.is_floating_point():
                e.lerp_(v.detach(), 1 - d)  # exact for a frozen tensor (a + w (b - a) with b == a)
            else:
                e.copy_(v)


def _swap_in(net: torch.nn.Module, ema: EMA | None) -> dict[str, torch.Tensor] | None:
    """Load the EMA weights into ``net``; returns the live weights to put back (or None)."""
    if ema is None or ema.decay <= 0:
        return None
    live = {k: v.detach().clone() for k, v in net.state_dict().items()}
    net.load_state_dict(ema.state)
    return live


def save_checkpoint(path: str, method: Any, opt: torch.optim.Optimizer, step: int, cfg: TrainConfig,
                    ema: EMA | None = None, extra: dict | None = None) -> None:
    """Weights, EMA and Adam's moments in safetensors, step and config in JSON beside it (no
    pickle); with an EMA, also its fp16 export and weights.toml entry (CKPT.ema.safetensors/.toml)."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in method.net.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state.items()})
    for i, p in enumerate(_opt_params(opt)):
        st = opt.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in st:
                tensors[f"opt.{i}.{key}"] = st[key].detach().cpu().contiguous()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    save_file(tensors, tmp)
    os.replace(tmp, path)
    meta = {"step": step, "config": asdict(cfg), **(extra or {})}
    with open(path + ".json.tmp", "w") as fh:
        json.dump(meta, fh)
    os.replace(path + ".json.tmp", path + ".json")
    if ema is not None and ema.decay > 0:
        holder = _Holder(method.net)
        live = _swap_in(method.net, ema)
        try:
            base = path + ".ema.safetensors"
            entry = export(holder, base, name=f"{cfg.method}-{cfg.variant}", method_name=cfg.method,
                           variant=cfg.variant, data="checkpoint", recipe=f"step {step}", good_for="checkpoint")
        finally:
            if live is not None:
                method.net.load_state_dict(live)
        with open(path + ".ema.toml", "w") as fh:
            fh.write(entry.replace('file = "files/', 'file = "'))


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def load_checkpoint(path: str, method: Any, opt: torch.optim.Optimizer,
                    cfg: TrainConfig | None = None) -> tuple[int, dict, dict[str, torch.Tensor] | None]:
    """(step, JSON metadata, EMA state or None) from a checkpoint, loaded into ``method`` and
    ``opt``. A missing, damaged or mismatched checkpoint is one WeightsError line (exit 5)."""
    from safetensors.torch import load_file

    if not os.path.isfile(path):
        raise WeightsError(f"cannot resume: checkpoint {path} does not exist")
    try:
        tensors = load_file(path)
    except Exception as e:  # noqa: BLE001 - SafetensorError and friends: a damaged file
        raise WeightsError(f"cannot resume from {path}: not a readable safetensors checkpoint "
                           f"({_first_line(e)})") from None
    try:
        with open(path + ".json") as fh:
            meta = json.load(fh)
        step = int(meta["step"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"cannot resume from {path}: its {os.path.basename(path)}.json is missing or "
                           f"damaged ({_first_line(e)})") from None
    old = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    if cfg is not None and old and (old.get("method"), old.get("variant")) != (cfg.method, cfg.variant):
        raise WeightsError(f"cannot resume from {path}: it is a checkpoint of {old.get('method')}-"
                           f"{old.get('variant')}, not {cfg.method}-{cfg.variant}")
    own = method.net.state_dict()

    def check(prefix: str) -> dict[str, torch.Tensor]:
        got = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        missing = [k for k in own if k not in got]
        extra = [k for k in got if k not in own]
        shape = [k for k in own if k in got and got[k].shape != own[k].shape]
        if missing or extra or shape:
            first = (missing or extra or shape)[0]
            raise WeightsError(f"cannot resume from {path}: it does not fit {type(method.net).__name__} "
                               f"({len(missing)} tensors missing, {len(extra)} unexpected, {len(shape)} of "
                               f"another shape; first: {first})")
        return got

    method.net.load_state_dict(check("model."))
    ema = check("ema.") if any(k.startswith("ema.") for k in tensors) else None
    for i, p in enumerate(_opt_params(opt)):
        if f"opt.{i}.exp_avg" in tensors:
            m, v = tensors[f"opt.{i}.exp_avg"], tensors.get(f"opt.{i}.exp_avg_sq")
            if v is None or m.shape != p.shape or v.shape != p.shape:
                raise WeightsError(f"cannot resume from {path}: its optimiser state does not fit the "
                                   f"trainable parameters (--freeze or --stage changed?)")
            opt.state[p] = {"step": torch.tensor(float(step)), "exp_avg": m.to(p.device), "exp_avg_sq": v.to(p.device)}
    return step, meta, ema


def _online(cfg: TrainConfig, photos: Any, method: Any, device: torch.device, crop: int,
            seed: int, pool: int = 64, exact: bool = False) -> Any:
    """The on-the-fly pair maker for ``method``'s window; ``exact``: every view at the full 4x
    supersampling (the fixed validation samples)."""
    from vdeblur.data.online import DegradeConfig, OnlineDegrader, PhotoPool

    frames = method.past + method.future + 1
    if cfg.method == "golf":
        frames = 1
    dc = DegradeConfig(crop=crop, frames=frames, current=method.past if frames > 1 else 0,
                       noise=_noise_levels(cfg.noise), max_blur=cfg.max_blur, **({"ss_blur": 0} if exact else {}))
    return OnlineDegrader(PhotoPool(photos.paths, device, size=pool, rng=np.random.default_rng(seed)), dc)


def train(cfg: TrainConfig, train_set: Any, val_set: Any | None, *, checkpoint: str | None = None,
          resume: bool = False, on_step: Callable[[dict], None] = lambda d: None) -> Any:
    """Train ``cfg.method`` from a fresh random init (or the checkpoint); returns the method, with
    the EMA weights when ``cfg.ema`` > 0. ``train_set`` / ``val_set``: datasets, or
    :class:`vdeblur.data.online.Photos` (pairs made on the fly)."""
    from vdeblur.data.online import Photos
    from vdeblur.engine.device import resolve_device
    from vdeblur.engine.precision import check_precision
    from vdeblur.methods.neural import make_untrained

    check_precision(cfg.precision)
    if cfg.stage and not (cfg.method == "golf" and cfg.stage in ("f", "g")):
        raise UsageError(f"--stage {cfg.stage!r}: only golf has stages (f, then g)")
    if not 0 <= cfg.ema < 1:
        raise UsageError(f"--ema {cfg.ema}: need 0 <= decay < 1")
    torch.manual_seed(cfg.seed)
    method, _ = make_untrained(cfg.method, cfg.variant)
    device = resolve_device(cfg.device)
    _apply_init(method.net, cfg.init)
    if cfg.method == "golf" and cfg.stage == "g" and not resume:
        # G starts as the identity (its last conv zeroed), so x_1..x_5 start at F's estimate and the
        # five recurrent steps do not amplify a random residual; a training choice, not the arch.
        with torch.no_grad():
            method.net.g.tail.weight.zero_()
    method = method.to(device, memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(_trainable(method.net, cfg), lr=cfg.lr)
    start, meta, ema_state = 0, {}, None
    if resume and checkpoint:
        start, meta, ema_state = load_checkpoint(checkpoint, method, opt, cfg)
    ema = EMA(method.net, cfg.ema, ema_state) if cfg.ema > 0 else None
    multiple = method.pad_multiple
    crop = max(multiple, cfg.crop - cfg.crop % multiple)
    online = isinstance(train_set, Photos)
    data = _online(cfg, train_set, method, device, crop, cfg.seed + start) if online else \
        Pairs(train_set, method.past, method.future, cfg.noise)
    val_batch = None
    if isinstance(val_set, Photos):  # a fixed set of validation samples, made once
        vd = _online(cfg, val_set, method, device, crop, 1234, pool=len(val_set.paths), exact=True)
        val_batch = vd.sample(np.random.default_rng(1234), max(cfg.val_frames, 32))
    rng = np.random.default_rng(cfg.seed + start)
    history: list[dict] = list(meta.get("val", [])) if isinstance(meta.get("val"), list) else []
    clock = _Clock(cfg, meta, start)
    step = start
    while not clock.done:
        lr = clock.begin(opt, step)
        b = {k: v.to(device) for k, v in data.sample(rng, cfg.batch, crop).items()}
        loss = train_step(method, opt, ema, b, cfg, device)
        step += 1
        info, due = clock.end(step, loss, lr)
        if due:
            live = _swap_in(method.net, ema)
            try:
                if val_batch is not None:
                    info["val_psnr"], info["val_psnr_input"] = validate_batch(method, val_batch, cfg)
                elif val_set is not None:
                    info["val_psnr"], info["val_psnr_input"] = validate(method, val_set, cfg, device)
            finally:
                if live is not None:
                    method.net.load_state_dict(live)
                method.train()
            if "val_psnr" in info:
                history.append({"step": step, "elapsed_s": round(clock.elapsed, 1), "val_psnr": info["val_psnr"],
                                "val_psnr_input": info["val_psnr_input"]})
            if checkpoint:
                save_checkpoint(checkpoint, method, opt, step, cfg, ema,
                                {"elapsed_s": clock.elapsed, "samples_per_s": info["samples_per_s"], "val": history})
        on_step(info)
    if ema is not None:
        method.net.load_state_dict(ema.state)
    return method.eval()


class _Clock:
    """The schedule of a training loop: ``cfg.steps`` steps, or with ``cfg.minutes`` a wall-time
    budget, which a resumed run continues from the checkpoint's elapsed time (``meta``)."""

    def __init__(self, cfg: TrainConfig, meta: dict, start: int):
        self.cfg, self.start = cfg, start
        self.budget = cfg.minutes * 60
        self.elapsed = self.elapsed0 = float(meta.get("elapsed_s", 0.0)) if cfg.minutes > 0 else 0.0
        self.t0 = self.last_ck = time.perf_counter()
        self.done = (start >= cfg.steps) if self.budget <= 0 else self.elapsed0 >= self.budget
        self._per_step = 0.0

    def begin(self, opt: torch.optim.Optimizer, step: int) -> float:
        """Before step ``step`` (from 0): set its learning rate (cosine over the steps or the
        time) and return it."""
        now = time.perf_counter()
        self.elapsed = self.elapsed0 + now - self.t0
        self._per_step = (now - self.t0) / max(1, step - self.start)
        return _set_cosine_lr(opt, self.cfg, step, self.elapsed / self.budget if self.budget > 0 else None)

    def end(self, step: int, loss: torch.Tensor, lr: float) -> tuple[dict, bool]:
        """After step ``step`` (from 1): its log line (loss, lr, throughput, elapsed time) and
        whether a validation / checkpoint is due; sets ``done`` (the step count, or with a budget,
        when the next step would overrun it)."""
        cfg, budget = self.cfg, self.budget
        now = time.perf_counter()
        self.elapsed = self.elapsed0 + now - self.t0
        secs = now - self.t0
        info: dict[str, Any] = {"step": step, "loss": loss.item(), "lr": lr,
                                "s_per_step": secs / (step - self.start),
                                "samples_per_s": cfg.batch * (step - self.start) / max(secs, 1e-9)}
        if budget > 0:
            info["elapsed_s"] = round(self.elapsed, 1)
            # the next would overrun
            self.done = self.elapsed + max(self._per_step, secs / (step - self.start)) >= budget
            due = now - self.last_ck >= cfg.checkpoint_minutes * 60 or self.done
        else:
            self.done = step >= cfg.steps
            due = step % cfg.val_every == 0 or self.done
        if due:
            self.last_ck = now
        return info, due


@torch.no_grad()
def validate_batch(method: Any, batch: dict[str, torch.Tensor], cfg: TrainConfig, chunk: int = 8) -> tuple[float, float]:
    """Mean PSNR (dB, 8-bit rounded) of restored and input current frames over a fixed batch of
    samples (samples whose input equals the target are left out of the input's mean). Needs no
    PyAV (the GPU device has none): the finite mean is taken here, not through engine.pipeline."""
    method.eval()
    x, y = batch["x"], batch["y"]
    cur = x.shape[1] - 1 if cfg.method == "r2d4" else method.past if x.shape[1] > 1 else 0

    def db(a: torch.Tensor, b: torch.Tensor) -> list[float]:
        mse = ((torch.round(a.clamp(0, 1) * 255) - torch.round(b * 255)) ** 2).flatten(1).mean(1)
        return [float("inf") if m == 0 else 10 * math.log10(255**2 / m) for m in mse.tolist()]

    outs, ins = [], []
    for i in range(0, x.shape[0], chunk):
        xb, yb = x[i : i + chunk], y[i : i + chunk]
        restored, _ = _forward(method, xb, cfg)
        outs += db(restored[-1].float(), yb)
        ins += db(xb[:, cur], yb)

    from vdeblur.metrics.mean import mean_finite

    both = mean_finite(outs), mean_finite(ins)
    return tuple(math.nan if m is None else m for m in both)  # type: ignore[return-value]


def validate(method: Any, val_set: Any, cfg: TrainConfig, device: torch.device) -> tuple[float, float]:
    """Mean PSNR of restored and input frames over the first ``val_frames`` validation frames."""
    from vdeblur.engine.pipeline import reflect
    from vdeblur.metrics.mean import mean_finite
    from vdeblur.engine.restorer import Restorer
    from vdeblur.metrics import psnr

    if cfg.method == "golf" and cfg.stage == "f":  # G is not trained yet: score F alone
        from vdeblur.methods.neural import NeuralMethod, single_frame

        method = NeuralMethod(method.net.f, single_frame)
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


#: the fsm photos path: a new batch every FSM_ECHO steps, the others echo one of the latest FSM_ECHO_KEEP
FSM_ECHO, FSM_ECHO_KEEP = 4, 8


def _fsm_shapes(crop: int) -> list[tuple[int, int]]:
    """The photos path's view shapes (h, w) for ``--crop`` C: widths C/2, 3C/4 and C, heights 3/4 of
    them (4:3 views), multiples of 16 (the classifier's x16 down-sampling) and at least 32."""
    out = []
    for f in (0.5, 0.75, 1.0):
        w = max(32, int(crop * f) // 16 * 16)
        out.append((max(32, int(w * 3 / 4) // 16 * 16), w))
    return sorted(set(out))


def _fsm_frames(cfg: TrainConfig, photos: Any, device: torch.device, seed: int, pool: int = 64,
                exact: bool = False) -> Any:
    """The photos path's labelled single frames (:class:`vdeblur.data.online.LabelledFrames`);
    ``exact``: full supersampling for every view (the fixed validation samples)."""
    from vdeblur.data.online import DegradeConfig, LabelledFrames, PhotoPool

    dc = DegradeConfig(ss=2, noise=_noise_levels(cfg.noise), max_blur=cfg.max_blur, p_static=0.25,
                       **({"ss_blur": 0} if exact else {}))
    return LabelledFrames(PhotoPool(photos.paths, device, size=pool, rng=np.random.default_rng(seed)),
                          _fsm_shapes(cfg.crop), dc)


def train_fsm(cfg: TrainConfig, train_set: Any, val_set: Any | None, *, checkpoint: str | None = None,
              resume: bool = False, on_step: Callable[[dict], None] = lambda d: None) -> Any:
    """Train the Frame Selection Module (``DeblurNetFSM``, variant ``cfg.variant``) to tell blurred
    from sharp frames (deblurnet-frame-selection.md III-B: cross-entropy on Table 3's two scores);
    returns an object with ``.net`` (for :func:`export`).

    Data: a labelled dataset (``vdeblur synth --partial``; label = the input differs from its
    target; crops of ``crop``, sharp and blurred drawn equally often; validation accuracy over every
    frame of its test split), or :class:`vdeblur.data.online.Photos`: single frames made on the fly
    (:class:`vdeblur.data.online.LabelledFrames`, views of :func:`_fsm_shapes` at the selector's
    analysis scale, labelled by their blur length: blurred from ``BLURRED_PX``, sharp up to
    ``SHARP_PX``, the ambiguous ones between left out of the loss), validated on a fixed set made
    the same way from the validation photographs (``val_accuracy`` over the unambiguous samples),
    with the EMA of the weights (``cfg.ema``) validated, checkpointed and returned. Photos batches
    are pairs of one view, still and under motion (``LabelledFrames.sample(pairs=True)``), and a
    ranking term ``softplus(z_sharp - z_blurred)`` over the (sharp, blurred) pairs is added to the
    cross-entropy: the classifier alone, on a CPU budget, learned no more than chance from unpaired
    frames (its InstanceNorm takes each feature's scale away), and the per-shot rule of
    select/fsm.py uses the ranking of a shot's frames. A rendered
    batch costs several steps' time on a CPU, so each is used about ``FSM_ECHO`` times (data
    echoing, under random flips and transposes).

    Schedule as :func:`train`: ``steps``, or with ``minutes`` > 0 the cosine over wall time, a
    checkpoint every ``checkpoint_minutes`` and ``--resume``. Photos: at each checkpoint the EMA
    weights are also exported (``CKPT.ema.safetensors``) and the best on validation kept as
    ``CKPT.best.safetensors``."""
    import shutil

    from vdeblur.data.online import Photos
    from vdeblur.engine.device import resolve_device
    from vdeblur.engine.precision import autocast, check_precision
    from vdeblur.methods.archs.deblurnet import FSM_VARIANTS, DeblurNetFSM

    check_precision(cfg.precision)
    if cfg.variant not in FSM_VARIANTS:
        raise UsageError(f"unknown variant {cfg.variant!r}: expected one of {', '.join(FSM_VARIANTS)}")
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    online = isinstance(train_set, Photos)
    holder = _Holder(DeblurNetFSM(**FSM_VARIANTS[cfg.variant]).to(device, memory_format=torch.channels_last))
    opt = torch.optim.Adam(holder.net.parameters(), lr=cfg.lr)
    start, meta, ema_state = load_checkpoint(checkpoint, holder, opt, cfg) if resume and checkpoint else (0, {}, None)
    ema = EMA(holder.net, cfg.ema, ema_state) if online and cfg.ema > 0 else None
    if online:
        data = _fsm_frames(cfg, train_set, device, cfg.seed + start)
        val_batches = []
        if isinstance(val_set, Photos):  # a fixed set of validation samples, made once
            vd = _fsm_frames(cfg, val_set, device, 1234, pool=len(val_set.paths), exact=True)
            vrng = np.random.default_rng(1234)
            per = max(8, -(-max(cfg.val_frames, 96) // len(vd.degraders)))
            val_batches = [vd.sample(vrng, per // 2 * 2, shape=k, pairs=True) for k in range(len(vd.degraders))]
    else:
        frames, labels = _labelled(train_set)
        by_label = [np.flatnonzero(labels == k) for k in (0, 1)]
        if not len(by_label[0]) or not len(by_label[1]):
            raise InputError("training the fsm selector needs both sharp and blurred frames "
                             "(make the data with `vdeblur synth --partial`, or use --dataset photos)")
    rng = np.random.default_rng(cfg.seed + start)

    def synth_batch() -> tuple[torch.Tensor, torch.Tensor]:
        ys = np.arange(cfg.batch) % 2
        rng.shuffle(ys)
        crops = []
        for y in ys:
            img = frames[int(rng.choice(by_label[y]))]
            h, w = img.shape[:2]
            ch, cw = min(cfg.crop, h), min(cfg.crop, w)
            y0, x0 = rng.integers(h - ch + 1), rng.integers(w - cw + 1)
            c = img[y0 : y0 + ch, x0 : x0 + cw]
            c = c[:, ::-1] if rng.random() < 0.5 else c
            crops.append(c[::-1] if rng.random() < 0.5 else c)
        return _to_tensor(np.stack(crops)), torch.from_numpy(ys)

    echo: list[tuple[torch.Tensor, torch.Tensor]] = []  # the latest batches, for data echoing

    def photo_batch() -> tuple[torch.Tensor, torch.Tensor]:
        # data echoing (Choi et al. 2019): rendering a batch costs several times the step, so a new
        # batch is drawn every FSM_ECHO-th step and the others reuse one of the latest FSM_ECHO_KEEP
        # batches under a random flip / transpose (a blur's direction is no cue for its label)
        if not echo or (step - start) % FSM_ECHO == 0:
            b = data.sample(rng, cfg.batch, pairs=True)
            echo.append((b["x"], b["label"]))
            del echo[:-FSM_ECHO_KEEP]
            x, y = echo[-1]
        else:
            x, y = echo[int(rng.integers(len(echo)))]
        if rng.random() < 0.5:
            x = x.flip(-1)
        if rng.random() < 0.5:
            x = x.flip(-2)
        if rng.random() < 0.5:
            x = x.transpose(-1, -2)
        return x, y

    history: list[dict] = list(meta.get("val", [])) if isinstance(meta.get("val"), list) else []
    best = max((_fsm_merit(h) for h in history), default=-1.0)
    clock = _Clock(cfg, meta, start)
    step = start
    while not clock.done:
        lr = clock.begin(opt, step)
        x, target = photo_batch() if online else synth_batch()
        x = x.to(device, memory_format=torch.channels_last)
        target = target.to(device)
        holder.net.train()
        with autocast(device, cfg.precision):
            z = holder.net.scores(x).float()
        known = target >= 0  # ambiguous samples (-1) are left out
        loss = torch.nn.functional.cross_entropy(z, target.clamp(min=0), reduction="none")
        loss = (loss * known).sum() / known.sum().clamp(min=1)
        if online:  # pairs (still view, the same view under motion): the blurred one ranks above
            logit = (z[:, 1] - z[:, 0])[: z.shape[0] // 2 * 2].view(-1, 2)
            tp = target[: z.shape[0] // 2 * 2].view(-1, 2)
            ranked = (tp[:, 0] == 0) & (tp[:, 1] == 1)
            rank = torch.nn.functional.softplus(logit[:, 0] - logit[:, 1])
            loss = loss + (rank * ranked).sum() / ranked.sum().clamp(min=1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update(holder.net)
        step += 1
        info, due = clock.end(step, loss, lr)
        if due:
            live = _swap_in(holder.net, ema)
            try:
                if online and val_batches:
                    info["val_accuracy"], info["val_rank"] = fsm_batch_accuracy(holder.net, val_batches)
                elif not online and val_set is not None:
                    info["val_accuracy"] = fsm_accuracy(holder.net, val_set, device)
            finally:
                if live is not None:
                    holder.net.load_state_dict(live)
            if "val_accuracy" in info:
                history.append({"step": step, "elapsed_s": round(clock.elapsed, 1), "val_accuracy": info["val_accuracy"],
                                **({"val_rank": info["val_rank"]} if "val_rank" in info else {})})
            if checkpoint:
                save_checkpoint(checkpoint, holder, opt, step, cfg, ema,
                                {"elapsed_s": clock.elapsed, "samples_per_s": info["samples_per_s"], "val": history})
                if ema is not None and _fsm_merit(info) > best:
                    best = _fsm_merit(info)
                    shutil.copyfile(checkpoint + ".ema.safetensors", checkpoint + ".best.safetensors")
        on_step(info)
    if ema is not None:
        holder.net.load_state_dict(ema.state)
    holder.net.eval()
    return holder


class _Holder:
    """``.net`` holder, so the checkpoint and export helpers serve the selector too."""

    def __init__(self, net: torch.nn.Module):
        self.net = net


def _labelled(dataset: Any) -> tuple[list[np.ndarray], np.ndarray]:
    """Every input frame of ``dataset`` with its label (1 = blurred: the input differs from its
    target)."""
    frames, labels = [], []
    for seq in dataset.sequences():
        for inp, target in seq.frames():
            frames.append(inp)
            labels.append(int(not np.array_equal(inp, target)))
    if not frames:
        raise InputError("the training split has no frames")
    return frames, np.array(labels)


def fsm_accuracy(net: torch.nn.Module, dataset: Any, device: torch.device) -> float:
    """Share of the frames of ``dataset`` the classifier labels right (whole frames)."""
    net.eval()
    right = total = 0
    with torch.inference_mode():
        for seq in dataset.sequences():
            for inp, target in seq.frames():
                x = _to_tensor(inp[None]).to(device)
                right += int((net(x).item() > 0) == (not np.array_equal(inp, target)))
                total += 1
    return right / max(1, total)


def _fsm_merit(info: dict) -> float:
    """What the best fsm checkpoint is chosen on: validation accuracy plus pair ranking accuracy."""
    return info.get("val_accuracy", -1.0) + info.get("val_rank", 0.0)


@torch.no_grad()
def fsm_batch_accuracy(net: torch.nn.Module, batches: list[dict[str, torch.Tensor]]) -> tuple[float, float]:
    """(share of the unambiguous samples (label >= 0) of ``batches`` the classifier labels right,
    share of the (sharp, blurred) pairs (samples 2i, 2i + 1) whose blurred frame it scores higher)."""
    net.eval()
    right = total = ranked = pairs = 0
    for b in batches:
        known = b["label"] >= 0
        z = net(b["x"])
        pred = (z > 0).long()
        right += int(((pred == b["label"]) & known).sum())
        total += int(known.sum())
        n = len(z) // 2 * 2
        zp, lp = z[:n].view(-1, 2), b["label"][:n].view(-1, 2)
        ok = (lp[:, 0] == 0) & (lp[:, 1] == 1)
        ranked += int(((zp[:, 1] > zp[:, 0]) & ok).sum())
        pairs += int(ok.sum())
    return right / max(1, total), ranked / max(1, pairs)
