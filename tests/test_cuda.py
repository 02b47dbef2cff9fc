"""The GPU path, on a CUDA device (skipped without one): every method on CUDA against the CPU,
fp16 and bf16 autocast with the fp32 fallback, tiles, and the out-of-memory fallback.

Self-contained (no PyAV, no conftest fixtures), so ``benchmarks/device_check.sh`` runs it with
``--noconftest`` on a machine that has torch but no PyAV. Each comparison prints its error, so the
log of a device run carries the figures, not only pass or fail.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

from vdeblur.engine.device import resolve_device
from vdeblur.engine.precision import run_with_fallback
from vdeblur.engine.restorer import Restorer
from vdeblur.engine.tiling import run_tiled_or_whole
from vdeblur.errors import WeightsError
from vdeblur.methods.base import FrameMethod
from vdeblur.methods.registry import create, list_methods

HAS_CUDA = torch.cuda.is_available()
#: VDEBLUR_CUDA_TESTS_ON_CPU=1 runs the tests that need no real card with "cuda" = the CPU: a
#: rehearsal of this file's own code before a device call (each device minute is scarce)
ON_CPU = os.environ.get("VDEBLUR_CUDA_TESTS_ON_CPU") == "1" and not HAS_CUDA
pytestmark = pytest.mark.skipif(not (HAS_CUDA or ON_CPU), reason="no CUDA device")
needs_card = pytest.mark.skipif(not HAS_CUDA, reason="needs a real CUDA device")

CUDA = torch.device("cuda") if HAS_CUDA else torch.device("cpu")
METHODS = sorted(s.name for s in list_methods() if s.name != "lucky")  # lucky restores from labels


@pytest.fixture(autouse=True)
def exact_fp32():
    """No TF32 in 'fp32' comparisons (Ampere and later would use it for convs and matmuls)."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def scene(n: int, h: int, w: int, seed: int = 0) -> list[np.ndarray]:
    """n uint8 frames of a smooth moving pattern with edges and a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for t in range(n):
        base = 0.5 + 0.3 * np.sin((xx + 2 * t) / 7.0)[..., None] * np.cos(yy / 9.0)[..., None]
        img = np.concatenate([base, base * 0.8 + 0.1, 1 - base], -1)
        img[h // 3 : h // 2, w // 4 + t : w // 2 + t] = 0.9
        img = img + rng.normal(0, 0.02, img.shape)
        out.append((img.clip(0, 1) * 255).round().astype(np.uint8))
    return out


def build(name: str):
    """The method with its shipped weights, else (no weights yet) freshly initialised."""
    try:
        return create(name)
    except WeightsError:
        from vdeblur.methods.neural import make_untrained

        torch.manual_seed(0)
        return make_untrained(name)[0]


def run(method, device: torch.device, precision: str, clip: list[np.ndarray]) -> list[np.ndarray]:
    """The frames as the engine restores them (windows clamped at the ends, state carried)."""
    r = Restorer(method, device, precision)
    n, out, state = len(clip), [], None
    for t in range(n):
        win = [clip[min(max(t + k, 0), n - 1)] for k in range(-method.past, method.future + 1)]
        frames, state = r.restore([win], state)
        out.append(frames[0])
    return out


def err(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[float, float]:
    d = np.abs(np.stack(a).astype(np.int32) - np.stack(b).astype(np.int32))
    return float(d.mean()), float(d.max())


@needs_card
def test_auto_picks_cuda():
    assert resolve_device("auto").type == "cuda"
    print("device:", torch.cuda.get_device_name(0))


@pytest.mark.parametrize("name", METHODS)
def test_method_on_cuda_matches_cpu(name):
    clip = scene(4, 72, 100, seed=1)  # not a multiple of any pad
    ref = run(build(name), torch.device("cpu"), "fp32", clip)
    got = run(build(name), CUDA, "fp32", clip)
    mean, mx = err(got, ref)
    print(f"{name} fp32 cuda vs cpu: mean {mean:.3f}, max {mx:.0f} (of 255)")
    assert mean <= 0.1 and mx <= 2, (name, mean, mx)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("name", METHODS)
def test_half_precision_on_cuda_is_close_to_fp32(name, precision):
    clip = scene(4, 72, 100, seed=2)
    ref = run(build(name), CUDA, "fp32", clip)
    got = run(build(name), CUDA, precision, clip)
    mean, mx = err(got, ref)
    print(f"{name} {precision} vs fp32 on cuda: mean {mean:.3f}, max {mx:.0f} (of 255)")
    # bf16 keeps 8 bits of mantissa: a few levels of 255 are expected, not tens
    assert mean <= (1.0 if precision == "fp16" else 3.0), (name, precision, mean, mx)


class Overflow(nn.Module):
    """A conv whose fp16 output overflows (65504 is fp16's largest), then scaled back."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1, bias=False)
        nn.init.constant_(self.conv.weight, 4e4)

    def forward(self, x):
        return self.conv(x) / 1.2e5


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_autocast_overflow_falls_back_to_fp32(precision):
    method = FrameMethod(Overflow()).to(CUDA)
    x = torch.rand(1, 1, 3, 32, 48, device=CUDA)
    warned = []
    out = run_with_fallback(lambda: method(x)[0], CUDA, precision, warned.append)
    with torch.inference_mode():
        want = method(x)[0]
    assert torch.isfinite(out).all()
    tol = 1e-4 if precision == "fp16" else 2e-2  # fp16: redone in fp32; bf16: its own rounding
    torch.testing.assert_close(out, want, atol=tol, rtol=tol)
    if precision == "fp16":  # bf16 has fp32's range: no overflow, no fallback
        assert warned and "fp32" in warned[0]
    print(precision, "warnings:", warned)


@pytest.mark.parametrize("name", ["golf", "atrous", "unsharp"])
def test_tiles_on_cuda_equal_the_whole_frame(name):
    clip = scene(1, 200, 264, seed=3)
    method = build(name)
    whole = Restorer(method, CUDA).restore([clip])[0][0]
    tiled = Restorer(build(name), CUDA, tile=96, tile_overlap=32).restore([clip])[0][0]
    mean, mx = err([tiled], [whole])
    print(f"{name} tiles 96/32 vs whole: mean {mean:.3f}, max {mx:.0f}")
    assert mean <= 1.0, (name, mean, mx)


@needs_card
def test_real_out_of_memory_falls_back_to_tiles():
    """A whole frame that asks the CUDA allocator for more than the card has: the allocator's own
    OutOfMemoryError, caught, and the frame done in tiles."""
    net = nn.Conv2d(3, 3, 3, padding=1).to(CUDA)
    x = torch.rand(1, 3, 600, 800, device=CUDA)
    total = torch.cuda.get_device_properties(0).total_memory

    def fn(t):
        if t.shape[-1] > 600:  # the whole frame: demands twice the card's memory
            torch.empty(2 * total, dtype=torch.uint8, device=CUDA)
        return net(t)

    warned = []
    with torch.inference_mode():
        out = run_tiled_or_whole(fn, x, None, 32, 1, CUDA, warned.append)
        want = net(x)
    print("oom fallback:", warned)
    assert warned and "out of memory" in warned[0]
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)


@needs_card
@pytest.mark.slow
def test_memory_cap_makes_a_4k_frame_tile():
    """Under a 1 GiB per-process cap a 4K golf frame does not fit whole: the restorer still gives
    the frame (tiled, by its memory plan or after an out-of-memory error: the log says which)."""
    method = build("golf")
    clip = scene(1, 2160, 3840, seed=4)
    total = torch.cuda.get_device_properties(0).total_memory
    warned = []
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(min(1.0, 2**30 / total))
    try:
        out = Restorer(method, CUDA, warn=warned.append).restore([clip])[0][0]
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    print("4K under a 1 GiB cap:", warned)
    assert out.shape == (2160, 3840, 3)
