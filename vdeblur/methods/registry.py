"""The method registry: the API every backend is reached through.

    @register_method("wiener", kind="classical", params={"psf": "..."})
    def wiener(psf: str | None = None) -> Method: ...

    create("wiener", psf="motion:9:0")   # -> Method
    list_methods()                        # -> [MethodSpec, ...]

A method is a factory registered under the name the CLI shows; variants are data (keyword
arguments), not copies of code; registering a name twice is an error.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from vdeblur.errors import UsageError

_REGISTRY: dict[str, "MethodSpec"] = {}
# modules that register the built-in methods, cheapest first: a name is looked up in each in turn,
# so `--method identity` never imports torch; each network registers itself in its archs module
_BUILTIN_MODULES = ["vdeblur.methods.identity", "vdeblur.methods.classical", "vdeblur.methods.lucky",
                    *(f"vdeblur.methods.archs.{m}" for m in ("golf", "srn", "atrous", "deblurnet", "r2d4", "mlfa"))]
_loaded: set[str] = set()
ENTRY_POINT_GROUP = "vdeblur.methods"


@dataclass(frozen=True)
class MethodSpec:
    name: str
    factory: Callable[..., Any]
    kind: str  # "passthrough" | "classical" | "neural"
    description: str = ""
    params: dict[str, str] = field(default_factory=dict)  # option -> help
    temporal: bool = False
    weights: str | None = None
    #: made for every frame (joint denoising, e.g. r2d4): `vdeblur run` restores every frame
    #: unless the user chooses a selector (the blur selector reads noise as detail)
    every_frame: bool = False

    def accepts(self) -> set[str]:
        sig = inspect.signature(self.factory)
        return {p.name for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD}

    def weight_entries(self) -> list[str] | None:
        """Names of this method's weights.toml entries (None for methods that take no weights)."""
        if self.weights is None:
            return None
        from vdeblur.weights.spec import specs_for

        return [s.name for s in specs_for(self.name)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "params": dict(self.params),
            "temporal": self.temporal,
            "weights": self.weight_entries(),
            "every_frame": self.every_frame,
        }


def register_method(
    name: str,
    *,
    kind: str,
    description: str = "",
    params: dict[str, str] | None = None,
    temporal: bool = False,
    weights: str | None = None,
    every_frame: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``factory`` under ``name``. A duplicate name raises ValueError."""

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} is already registered")
        doc = description or (inspect.getdoc(factory) or "").split("\n", 1)[0]
        _REGISTRY[name] = MethodSpec(name, factory, kind, doc, dict(params or {}), temporal, weights, every_frame)
        return factory

    return deco


def _load_builtins(until: str | None = None) -> None:
    """Import the built-in method modules (they register on import), then the plugins, stopping
    once ``until`` is known."""
    import importlib

    for mod in _BUILTIN_MODULES:
        if until is not None and until in _REGISTRY:
            return
        if mod not in _loaded:
            _loaded.add(mod)
            importlib.import_module(mod)
    if until is None or until not in _REGISTRY:
        _load_plugins()


def _load_plugins() -> None:
    """Methods from other packages: entry points in the group ``vdeblur.methods``.

    An entry point names a module (importing it registers its methods with ``register_method``)
    or a factory (registered under the entry point's name, kind "plugin"). A plugin that fails
    to load is reported as a UsageError naming it, not skipped silently.
    """
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        key = f"entry point {ep.name} = {ep.value}"
        if key in _loaded:
            continue
        _loaded.add(key)
        try:
            obj = ep.load()
        except Exception as e:  # noqa: BLE001 - a broken plugin is named, in one line
            raise UsageError(f"method plugin {ep.name!r} ({ep.value}) failed to load: {type(e).__name__}: {e}") from e
        if callable(obj) and not inspect.ismodule(obj) and ep.name not in _REGISTRY:
            register_method(ep.name, kind="plugin")(obj)


def list_methods() -> list[MethodSpec]:
    _load_builtins()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_spec(name: str) -> MethodSpec:
    _load_builtins(until=name)
    try:
        return _REGISTRY[name]
    except KeyError:
        _load_builtins()
        known = ", ".join(sorted(_REGISTRY))
        raise UsageError(f"unknown method {name!r} (known: {known})") from None


def check_config(name: str, cfg: dict[str, Any]) -> MethodSpec:
    """The spec of ``name``, once ``cfg`` names only options its factory takes (nothing is built)."""
    spec = get_spec(name)
    unknown = set(cfg) - spec.accepts()
    if unknown:
        opts = ", ".join(sorted("--" + u.replace("_", "-") for u in unknown))
        raise UsageError(f"method {name!r} does not take {opts}")
    return spec


def create(name: str, **cfg: Any):
    """Build the method ``name`` with configuration ``cfg`` (only options its factory takes)."""
    return check_config(name, cfg).factory(**cfg)
