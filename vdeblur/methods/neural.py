"""The papers' networks as vdeblur methods: architecture + what it needs from the engine + weights.

Each method is registered under its CLI name with ``variant`` (a key of the architecture's
variants dict: data, not code) and ``weights`` (a safetensors file of the user's). Without
``weights`` the entry for (method, variant) in weights.toml is used; a method with neither
refuses to run with a WeightsError: random weights are never passed off as restoration.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from vdeblur.errors import UsageError, WeightsError
from vdeblur.methods.base import Method
from vdeblur.methods.registry import register_method


@dataclass(frozen=True)
class Arch:
    """How to build one architecture and feed it windows."""

    module: str  # vdeblur.methods.archs.<module>
    cls: str
    variants: str  # name of the variants dict in the module
    default: str  # default variant
    past: int = 0
    future: int = 0
    recurrent: bool = False

    def load(self) -> tuple[type, dict[str, dict]]:
        m = importlib.import_module(f"vdeblur.methods.archs.{self.module}")
        return getattr(m, self.cls), getattr(m, self.variants)


class NeuralMethod(Method):
    """An architecture wrapped as a Method; ``step`` maps (net, window, state) -> (out, state)."""

    def __init__(self, net: nn.Module, step: Callable[..., tuple[torch.Tensor, Any]], *, past: int = 0,
                 future: int = 0, recurrent: bool = False):
        super().__init__()
        self.net = net
        self.step = step
        self.past, self.future, self.recurrent = past, future, recurrent
        self.pad_multiple = int(getattr(net, "pad_multiple", 1))

    def restore(self, window: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return self.step(self.net, window, state)


def single_frame(net: nn.Module, window: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
    return net(window[:, 0]), None


@dataclass
class R2D4State:
    """What r2d4 carries from frame to frame: the restored past (most recent first) and the past
    features it already computed, with the autocast/dtype/shape they were computed under."""

    restored: torch.Tensor  # [B, N, 3, H, W]
    features: torch.Tensor | None = None  # [B, N-1, C, H/2, W/2]: past slots 0..N-2 of the last step
    key: tuple = ()


def r2d4_step(net: nn.Module, window: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
    """Window [t-2, t-1, t] (corrupted); state: the two previous restored frames (most recent first).
    After a reset (start of the video, or a frame passed through) the corrupted past stands in
    for the restored past (r2d4-video-denoise-deblur.md, Section IV: N = 2 previous frames).

    The past frames' features are kept in the state: at step t+1, past slot n+1 holds exactly the
    pair (corrupted, restored) that slot n held at step t, so only slot 0 (frame t) goes through the
    extractor (a third of r2d4's work). Kept only without gradients, and for the same autocast,
    dtype and frame size; a plain tensor state (the restored frames alone) is accepted too."""
    cur = window[:, -1]
    past_corrupted = window[:, :-1].flip(1)  # index 0 = t-1, the most recent
    key = (window.dtype, tuple(window.shape), _autocast_key(window.device))
    kept = None
    if state is None:
        past_restored = past_corrupted
    elif isinstance(state, R2D4State):
        past_restored = state.restored
        kept = state.features if state.key == key else None
    else:
        past_restored = state
    reuse = not torch.is_grad_enabled() and past_corrupted.shape[1] > 1
    if reuse and kept is not None:
        fresh = net.past_features(past_corrupted[:, :1], past_restored[:, :1])
        features = torch.cat([fresh, kept], 1)
    else:
        features = net.past_features(past_corrupted, past_restored)
    _denoised, restored = net(cur, past_corrupted, past_restored, past_features=features)
    new_restored = torch.cat([restored[:, None], past_restored[:, :-1]], 1).detach()
    return restored, R2D4State(new_restored, features[:, :-1].detach() if reuse else None, key)


class TwoStage(nn.Module):
    """Atrous stage 1 on each of t-1, t, t+1, then MLFA stage 2 (atrous-mlfa ... Section 3)."""

    def __init__(self, stage1: dict, stage2: dict):
        super().__init__()
        from vdeblur.methods.archs.atrous import AtrousNet
        from vdeblur.methods.archs.mlfa import MLFA

        self.stage1, self.stage2 = AtrousNet(**stage1), MLFA(**stage2)
        self.pad_multiple = max(self.stage1.pad_multiple, self.stage2.pad_multiple)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t = frames.shape[:2]
        pre = self.stage1(frames.flatten(0, 1)).unflatten(0, (b, t))
        return self.stage2(pre)


def two_stage_step(net: nn.Module, window: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
    return net(window), None


def _autocast_key(device: torch.device) -> tuple:
    try:
        return (torch.is_autocast_enabled(device.type), torch.get_autocast_dtype(device.type))
    except (AttributeError, TypeError, RuntimeError):  # torch < 2.4: only the CUDA/CPU queries
        if device.type == "cpu":
            return (torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype())
        return (torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype())


class CachedTwoStageStep:
    """``two_stage_step`` that runs stage 1 once per frame, not once per window slot.

    Frame t sits in three sliding windows (as t+1, t and t-1), so plain ``net(window)`` runs the
    atrous stage 1 three times on it. This step keeps stage 1's outputs for the frames of its last
    call and looks each new frame up by content (a strided fingerprint, then exact equality with a
    kept copy): the windows are new tensors each call, so object identity cannot be the key. It is
    bounded (at most the B*T frames of one call, inputs and outputs), and keyed too by device,
    dtype, autocast state and the stage-1 weights' versions (an optimiser step or a weight load
    invalidates it). With gradients on or the net in training mode it is bypassed.
    Equal frames within one call are also run once.
    """

    def __init__(self) -> None:
        self._entries: list[tuple[tuple, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.stage1_frames = 0  # frames stage 1 has run on (for tests and benchmarks)

    @staticmethod
    def _fingerprint(frame: torch.Tensor) -> torch.Tensor:
        return frame[:, ::37, ::41]

    def __call__(self, net: nn.Module, window: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        if torch.is_grad_enabled() or net.training:
            self._entries = []
            self.stage1_frames += window.shape[0] * window.shape[1]
            return net(window), None
        b, t = window.shape[:2]
        frames = window.flatten(0, 1)
        key = (window.device, window.dtype, tuple(window.shape[2:]), _autocast_key(window.device),
               tuple(p._version for p in net.stage1.parameters()))
        known = [(fp, f, out) for k, fp, f, out in self._entries if k == key]
        same = lambda i, fp, f: torch.equal(fp, fps[i]) and torch.equal(f, frames[i])  # noqa: E731
        fps = [self._fingerprint(frames[i]) for i in range(b * t)]
        slots: list[Any] = []  # per frame: a kept stage-1 output, or its position in ``todo``
        todo: list[int] = []
        for i in range(b * t):
            slot = next((out for fp, f, out in known if same(i, fp, f)), None)
            if slot is None:  # an equal frame earlier in this call
                slot = next((slots[j] for j in range(i)
                             if isinstance(slots[j], int) and same(i, fps[j], frames[j])), None)
            if slot is None:
                slot = len(todo)
                todo.append(i)
            slots.append(slot)
        if todo:
            pre = net.stage1(frames[todo])
            self.stage1_frames += len(todo)
        outs = [pre[s] if isinstance(s, int) else s for s in slots]
        self._entries, seen = [], set()
        for i, slot in enumerate(slots):
            tag = slot if isinstance(slot, int) else ("kept", id(slot))
            if tag not in seen:
                seen.add(tag)
                self._entries.append((key, fps[i].clone(), frames[i].clone(), outs[i]))
        return net.stage2(torch.stack(outs).unflatten(0, (b, t))), None


def load_into(net: nn.Module, method: str, variant: str, weights: str | None) -> nn.Module:
    """Fill ``net`` from the user's file, or from weights.toml's entry; refuse when there is none."""
    from vdeblur.weights.spec import specs_for
    from vdeblur.weights.store import load_state_dict, load_weights

    if weights is not None:
        state, origin = load_state_dict(weights), weights
    else:
        entries = [s for s in specs_for(method) if s.variant == variant]
        if not entries:
            raise WeightsError(
                f"method {method!r} (variant {variant!r}) has no trained weights yet: pass --weights FILE "
                f"(a safetensors file, e.g. from `vdeblur train`); random weights are not restoration"
            )
        state, origin = load_weights(entries[0]), entries[0].name
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    own = net.state_dict()
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if wrong:
        raise WeightsError(f"weights {origin} do not fit {method}/{variant}: {wrong[0]} is "
                           f"{list(state[wrong[0]].shape)}, the network wants {list(own[wrong[0]].shape)} "
                           f"(another variant? pass --param variant=...)")
    result = net.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        miss, extra = result.missing_keys[:3], result.unexpected_keys[:3]
        raise WeightsError(
            f"weights {origin} do not fit {method}/{variant}: missing {miss}..., unexpected {extra}..."
        )
    return net


def build_net(arch: Arch, variant: str | None) -> tuple[nn.Module, str]:
    cls, variants = arch.load()
    variant = variant or arch.default
    if variant not in variants:
        raise UsageError(f"unknown variant {variant!r}: expected one of {', '.join(variants)}")
    return cls(**variants[variant]), variant


ARCHS: dict[str, tuple[Arch, Callable[..., tuple[torch.Tensor, Any]], str]] = {
    "golf": (Arch("golf", "Golf", "GOLF_VARIANTS", "small"), single_frame,
             "Golf Optimizer: F then G applied recurrently (Luo et al., A Deep Optimization Approach for Image Deconvolution, 3-5)"),
    "srn": (Arch("srn", "SRN", "SRN_VARIANTS", "small"), single_frame,
            "Scale-recurrent network, 3 scales, ConvLSTM (An analysis of Scale Recurrent Network for video deblurring, 3.2)"),
    "atrous": (Arch("atrous", "AtrousNet", "ATROUS_VARIANTS", "small"), single_frame,
               "Atrous residual network, stage 1 (Brehm et al., Dual-Stage Multi-Level Feature Aggregation, 3)"),
    "deblurnet": (Arch("deblurnet", "DeblurNetFDM", "DEBLURNET_VARIANTS", "small"), single_frame,
                  "DeblurNet frame deblurring module (Nahli et al., Towards Frames Selection for Fast Video Deblurring, III-A)"),
    "r2d4": (Arch("r2d4", "R2D4", "R2D4_VARIANTS", "small", past=2, recurrent=True), r2d4_step,
             "R2-D4 joint video denoising and deblurring, recurrent (Katsaros et al., Concurrent Video Denoising and Deblurring, IV)"),
}

_PARAMS = {"variant": "architecture variant (see the module's variants)", "weights": "safetensors file"}
#: methods made for every frame (joint denoising): `vdeblur run` restores every frame by default
EVERY_FRAME = {"r2d4"}


def _register(name: str, arch: Arch, step: Callable[..., Any], doc: str) -> None:
    def factory(variant: str | None = None, weights: str | None = None) -> Method:
        method, var = make_untrained(name, variant)
        load_into(method.net, name, var, weights)
        return method

    factory.__doc__ = doc
    register_method(name, kind="neural", params=_PARAMS, temporal=bool(arch.past or arch.future),
                    weights="weights.toml", every_frame=name in EVERY_FRAME)(factory)


for _name, (_arch, _step, _doc) in ARCHS.items():
    _register(_name, _arch, _step, _doc)


MLFA_VARIANTS = {"small": ("small", "small"), "paper": ("paper", "paper")}


def make_untrained(name: str, variant: str | None = None) -> tuple[NeuralMethod, str]:
    """A neural method with freshly initialised weights, for training (and tests) only: the
    registered factories never return one."""
    if name == "mlfa":
        from vdeblur.methods.archs.atrous import ATROUS_VARIANTS
        from vdeblur.methods.archs.mlfa import MLFA_VARIANTS as M

        variant = variant or "small"
        if variant not in MLFA_VARIANTS:
            raise UsageError(f"unknown variant {variant!r}: expected one of {', '.join(MLFA_VARIANTS)}")
        s1, s2 = MLFA_VARIANTS[variant]
        net = TwoStage(ATROUS_VARIANTS[s1], M[s2])
        return NeuralMethod(net, CachedTwoStageStep(), past=1, future=1), variant
    if name not in ARCHS:
        raise UsageError(f"not a neural method: {name!r} (neural: {', '.join([*ARCHS, 'mlfa'])})")
    arch, step, _ = ARCHS[name]
    net, variant = build_net(arch, variant)
    return NeuralMethod(net, step, past=arch.past, future=arch.future, recurrent=arch.recurrent), variant


@register_method("mlfa", kind="neural", params=_PARAMS, temporal=True, weights="weights.toml")
def mlfa(variant: str | None = None, weights: str | None = None) -> Method:
    """Atrous stage 1 + multi-level feature aggregation over t-1, t, t+1 (Brehm et al., 3)."""
    method, variant = make_untrained("mlfa", variant)
    load_into(method.net, "mlfa", variant, weights)
    return method
