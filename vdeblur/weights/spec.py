"""weights.toml -> WeightSpec entries."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vdeblur.errors import WeightsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: the packaged list (the repository root's weights.toml is a link to it)
DEFAULT_TOML = Path(__file__).with_name("weights.toml")


def default_toml() -> Path:
    """The packaged list, or the file named by VDEBLUR_WEIGHTS_TOML (a user's own list)."""
    return Path(os.environ.get("VDEBLUR_WEIGHTS_TOML") or DEFAULT_TOML)


REQUIRED = ("name", "method", "variant", "sha256", "size", "license", "data", "recipe", "good_for")


@dataclass(frozen=True)
class WeightSpec:
    name: str
    method: str
    variant: str
    sha256: str
    size: int
    license: str
    data: str
    recipe: str
    good_for: str
    file: str | None = None  # path relative to the folder of weights.toml
    hub: dict[str, str] = field(default_factory=dict)  # repo, filename, revision
    root: Path = DEFAULT_TOML.parent

    @property
    def where(self) -> str:
        if self.file:
            return str(self.root / self.file)
        return f"hub {self.hub['repo']}/{self.hub['filename']}@{self.hub['revision']}"

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in REQUIRED}
        d["file" if self.file else "hub"] = self.file or dict(self.hub)
        return d


def load_specs(path: str | Path | None = None) -> list[WeightSpec]:
    """Parse a weights.toml; a malformed entry is a WeightsError naming it and what is missing."""
    path = Path(path) if path is not None else default_toml()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"weights list not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise WeightsError(f"{path} is not valid TOML: {e}") from None
    specs: list[WeightSpec] = []
    seen: set[str] = set()
    for i, e in enumerate(doc.get("weights", [])):
        name = e.get("name", f"#{i + 1}")
        missing = [k for k in REQUIRED if k not in e]
        if missing:
            raise WeightsError(f"{path}: entry {name!r} lacks {', '.join(missing)}")
        has_file, hub = "file" in e, e.get("hub")
        if has_file == bool(hub):
            raise WeightsError(f"{path}: entry {name!r} needs exactly one of file or hub")
        if hub and not all(k in hub for k in ("repo", "filename", "revision")):
            raise WeightsError(f"{path}: entry {name!r}: hub needs repo, filename and revision")
        if name in seen:
            raise WeightsError(f"{path}: entry {name!r} appears twice")
        seen.add(name)
        specs.append(WeightSpec(
            name=name, method=e["method"], variant=str(e["variant"]), sha256=e["sha256"].lower(),
            size=int(e["size"]), license=e["license"], data=e["data"], recipe=e["recipe"],
            good_for=e["good_for"], file=e.get("file"), hub=dict(hub or {}), root=path.parent,
        ))
    return specs


def find_spec(name: str, path: str | Path | None = None) -> WeightSpec:
    for s in load_specs(path):
        if s.name == name:
            return s
    raise WeightsError(f"no weights entry named {name!r} in {path or default_toml()}")


def specs_for(method: str, path: str | Path | None = None) -> list[WeightSpec]:
    return [s for s in load_specs(path) if s.method == method]
