"""Find, verify and load weights files: safetensors only (never a pickle), sha256 checked first."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from vdeblur.errors import WeightsError
from vdeblur.weights.spec import WeightSpec

if TYPE_CHECKING:
    import torch


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def locate(spec: WeightSpec, *, download: bool = False) -> Path:
    """The local path of ``spec``'s file: in the package, or in the Hugging Face hub cache.

    Hub files are looked up offline unless ``download``; HF_HUB_OFFLINE=1 forbids downloads.
    A missing file is a WeightsError that says what to put where.
    """
    if spec.file:
        p = spec.root / spec.file
        if not p.is_file():
            raise WeightsError(f"weights {spec.name!r}: file missing: {p}")
        return p
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:  # pragma: no cover - a core dependency
        raise WeightsError("huggingface-hub is not installed: pip install huggingface-hub") from None
    repo, filename, rev = spec.hub["repo"], spec.hub["filename"], spec.hub["revision"]
    offline = not download or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    try:
        return Path(hf_hub_download(repo, filename, revision=rev, local_files_only=offline))
    except Exception as e:  # noqa: BLE001 - every hub failure becomes one line
        target = Path(HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "snapshots" / rev / filename
        hint = "run `vdeblur weights fetch " + spec.name + "` with network, or " if offline else ""
        raise WeightsError(
            f"weights {spec.name!r}: {repo}/{filename}@{rev} is not available ({type(e).__name__}); "
            f"{hint}put the file at {target}"
        ) from None


def verify(spec: WeightSpec, path: str | Path) -> None:
    """Size and sha256 of ``path`` must match ``spec``."""
    size = os.path.getsize(path)
    if size != spec.size:
        raise WeightsError(f"weights {spec.name!r}: {path} is {size} bytes, expected {spec.size}")
    digest = sha256_file(path)
    if digest != spec.sha256:
        raise WeightsError(f"weights {spec.name!r}: sha256 mismatch for {path} ({digest[:12]}..., expected {spec.sha256[:12]}...)")


def load_state_dict(path: str | Path, spec: WeightSpec | None = None) -> dict[str, "torch.Tensor"]:
    """Read a safetensors file (after checking it against ``spec`` when given). Nothing is unpickled."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if spec is not None:
        verify(spec, path)
    if not os.path.isfile(path):
        raise WeightsError(f"weights file not found: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path} is not a readable safetensors file: {e}") from None


def load_weights(spec: WeightSpec) -> dict[str, "torch.Tensor"]:
    return load_state_dict(locate(spec), spec)


def save_state_dict(state: dict[str, "torch.Tensor"], path: str | Path, *, half: bool = True,
                    metadata: dict[str, str] | None = None) -> tuple[str, int]:
    """Write a state dict as safetensors (fp16 floats when ``half``); returns (sha256, size)."""
    from safetensors.torch import save_file

    tensors = {
        k: (v.detach().half() if half and v.is_floating_point() else v.detach()).contiguous().cpu()
        for k, v in state.items()
    }
    save_file(tensors, str(path), metadata=metadata or {})
    return sha256_file(path), os.path.getsize(path)
