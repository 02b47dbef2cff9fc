"""weights.toml -> WeightSpec entries."""

from __future__ import annotations

import os
import re
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


def _read_list(path: Path) -> dict[str, Any]:
    """The parsed TOML of ``path``; any reason it cannot be read is one WeightsError line."""
    if path.is_dir():
        raise WeightsError(f"weights list {path} is a folder, not a TOML file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WeightsError(f"weights list not found: {path}") from None
    except UnicodeDecodeError:
        raise WeightsError(f"weights list {path} is not a text (UTF-8 TOML) file") from None
    except OSError as e:
        raise WeightsError(f"cannot read weights list {path}: {e.strerror or e}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise WeightsError(f"{path} is not valid TOML: {e}") from None


def _kind(v: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(v), type(v).__name__)


def _check_entry(path: Path, i: int, e: Any) -> WeightSpec:
    """One [[weights]] entry, every field checked for presence and type."""
    if not isinstance(e, dict):
        raise WeightsError(f"{path}: weights entry #{i + 1} is {_kind(e)}, not a table ([[weights]])")
    name = e.get("name")
    label = f"entry {name!r}" if isinstance(name, str) and name else f"entry #{i + 1}"
    missing = [k for k in REQUIRED if k not in e]
    if missing:
        raise WeightsError(f"{path}: {label} lacks {', '.join(missing)}")

    def bad(key: str, want: str) -> WeightsError:
        return WeightsError(f"{path}: {label}: {key} = {e[key]!r} is {_kind(e[key])}, expected {want}")

    for k in ("name", "method", "variant", "license", "data", "recipe", "good_for"):
        if not isinstance(e[k], str) or not e[k].strip():
            raise bad(k, "a non-empty string")
    if not isinstance(e["sha256"], str) or not re.fullmatch(r"[0-9a-fA-F]{64}", e["sha256"]):
        raise bad("sha256", "64 hexadecimal digits")
    if isinstance(e["size"], bool) or not isinstance(e["size"], int) or e["size"] < 0:
        raise bad("size", "a whole number of bytes")
    has_file, hub = "file" in e, e.get("hub")
    if has_file == ("hub" in e):
        raise WeightsError(f"{path}: {label} needs exactly one of file or hub")
    if has_file and (not isinstance(e["file"], str) or not e["file"].strip()):
        raise bad("file", "a path (a string)")
    if "hub" in e:
        if not isinstance(hub, dict) or not all(isinstance(hub.get(k), str) and hub[k]
                                                for k in ("repo", "filename", "revision")):
            raise WeightsError(f"{path}: {label}: hub needs repo, filename and revision (strings)")
    return WeightSpec(
        name=name, method=e["method"], variant=e["variant"], sha256=e["sha256"].lower(),
        size=e["size"], license=e["license"], data=e["data"], recipe=e["recipe"],
        good_for=e["good_for"], file=e.get("file"), hub={k: hub[k] for k in ("repo", "filename", "revision")} if hub else {},
        root=path.parent,
    )


def load_specs(path: str | Path | None = None) -> list[WeightSpec]:
    """Parse a weights.toml; a malformed list or entry is a WeightsError naming the entry and field."""
    path = Path(path) if path is not None else default_toml()
    doc = _read_list(path)
    entries = doc.get("weights", [])
    if not isinstance(entries, list):
        raise WeightsError(f"{path}: weights is {_kind(entries)}; expected [[weights]] tables")
    specs: list[WeightSpec] = []
    seen: set[str] = set()
    for i, e in enumerate(entries):
        spec = _check_entry(path, i, e)
        if spec.name in seen:
            raise WeightsError(f"{path}: entry {spec.name!r} appears twice")
        seen.add(spec.name)
        specs.append(spec)
    return specs


def find_spec(name: str, path: str | Path | None = None) -> WeightSpec:
    for s in load_specs(path):
        if s.name == name:
            return s
    raise WeightsError(f"no weights entry named {name!r} in {path or default_toml()}")


def specs_for(method: str, path: str | Path | None = None) -> list[WeightSpec]:
    return [s for s in load_specs(path) if s.method == method]
