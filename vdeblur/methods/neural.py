"""The papers' networks as vdeblur methods: architecture + what it needs from the engine + weights.

Each architecture module registers its own method(s) at its bottom, with :func:`register_net`
(as timm's ``register_model`` does): its CLI name, the network class (or a builder), its variants
dict (data, not code), the step that feeds it windows and what it needs from the engine::

    register_net("golf", build=Golf, variants=GOLF_VARIANTS, default="small", doc="...")

The method takes ``variant`` (a key of the variants dict) and ``weights`` (a safetensors file of
the user's). Without ``weights`` the entry for (method, variant) in weights.toml is used; a method
with neither refuses to run with a WeightsError: random weights are never passed off as
restoration. :func:`find_net` / :func:`make_untrained` reach a registered network by name (its
module imported through the registry, on lookup).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from vdeblur.errors import UsageError, WeightsError
from vdeblur.methods.base import Method
from vdeblur.methods.registry import get_spec, list_methods, register_method

#: (net, window, state) -> (restored, state)
Step = Callable[..., tuple[torch.Tensor, Any]]


class NeuralMethod(Method):
    """An architecture wrapped as a Method; ``step`` maps (net, window, state) -> (out, state)."""

    def __init__(self, net: nn.Module, step: Step, *, past: int = 0,
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


def autocast_key(device: torch.device) -> tuple:
    """The autocast state on ``device`` (enabled, dtype): part of the key of a step's cache."""
    try:
        return (torch.is_autocast_enabled(device.type), torch.get_autocast_dtype(device.type))
    except (AttributeError, TypeError, RuntimeError):  # torch < 2.4: only the CUDA/CPU queries
        if device.type == "cpu":
            return (torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype())
        return (torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype())


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




@dataclass(frozen=True)
class Net:
    """A registered network: how to build it in each variant and feed it windows."""

    name: str
    build: Callable[..., nn.Module]  # a class or builder, called with a variant's keyword arguments
    variants: dict[str, dict]  # variant -> keyword arguments of ``build``
    default: str  # default variant
    #: (net, window, state) -> (out, state); a class is instantiated once per method (a step with
    #: a cache, e.g. mlfa's)
    step: Step | type = single_frame
    past: int = 0
    future: int = 0
    recurrent: bool = False

    def make(self, variant: str | None = None) -> tuple[NeuralMethod, str]:
        """The method with freshly initialised weights in ``variant`` (default: the default one)."""
        variant = variant or self.default
        if variant not in self.variants:
            raise UsageError(f"unknown variant {variant!r}: expected one of {', '.join(self.variants)}")
        step = self.step() if isinstance(self.step, type) else self.step
        net = self.build(**self.variants[variant])
        return NeuralMethod(net, step, past=self.past, future=self.future, recurrent=self.recurrent), variant


_NETS: dict[str, Net] = {}  # filled by register_net only
_PARAMS = {"variant": "architecture variant (see the module's variants)", "weights": "safetensors file"}


def register_net(name: str, *, build: Callable[..., nn.Module], variants: dict[str, dict], default: str,
                 doc: str, step: Step | type = single_frame, past: int = 0, future: int = 0,
                 recurrent: bool = False, every_frame: bool = False) -> Net:
    """Register the neural method ``name`` (built on :func:`register_method`, kind "neural"):
    ``build(**variants[variant])`` filled with trained weights, fed windows of ``past`` + 1 +
    ``future`` frames by ``step``. ``every_frame``: made for every frame (joint denoising, r2d4).
    ``doc``'s first line is the method's description. A duplicate name raises ValueError."""
    net = Net(name, build, variants, default, step, past, future, recurrent)

    def factory(variant: str | None = None, weights: str | None = None) -> Method:
        method, var = net.make(variant)
        load_into(method.net, name, var, weights)
        return method

    factory.__doc__ = doc
    factory.__name__ = factory.__qualname__ = name.replace("-", "_")
    register_method(name, kind="neural", params=_PARAMS, temporal=bool(past or future),
                    weights="weights.toml", every_frame=every_frame)(factory)
    _NETS[name] = net
    return net


def find_net(name: str) -> Net | None:
    """The network registered as method ``name`` (its module imported on lookup), None for a
    method that is not a registered network or an unknown name."""
    try:
        get_spec(name)
    except UsageError:
        return None
    return _NETS.get(name)


def make_untrained(name: str, variant: str | None = None) -> tuple[NeuralMethod, str]:
    """A neural method with freshly initialised weights, for training (and tests) only: the
    registered factories never return one."""
    net = find_net(name)
    if net is None:
        list_methods()  # every built-in module imported: every network registered
        raise UsageError(f"not a neural method: {name!r} (neural: {', '.join(_NETS)})")
    return net.make(variant)
