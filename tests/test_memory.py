"""Memory: the out-of-memory fallback on the CPU, the tile size kept once it worked, --max-memory
planning tiles before allocating, and a real allocation failure under an address-space limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import av
import numpy as np
import pytest
import torch

from media import pattern, write_video
from vdeblur.engine.memory import describe_oom, parse_size, plan_tile, probe_bytes_per_pixel
from vdeblur.engine.restorer import Restorer
from vdeblur.engine.tiling import is_oom, run_tiled_or_whole
from vdeblur.errors import OutOfMemoryError, UsageError
from vdeblur.methods.base import Method

CPU_OOM = ("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
           "you tried to allocate 576000000 bytes. Error code 12 (Cannot allocate memory)")


class CpuOomAbove(Method):
    """Copies its frame; raises the CPU allocator's error on crops over ``limit`` pixels."""

    def __init__(self, limit: int, error: type = RuntimeError):
        super().__init__()
        self.limit, self.error, self.calls = limit, error, []

    def restore(self, window, state=None):
        self.calls.append(tuple(window.shape[-2:]))
        if window.shape[-2] * window.shape[-1] > self.limit:
            raise self.error(CPU_OOM)
        return window[:, 0] * 1.0, None


def test_cpu_allocation_failures_are_out_of_memory():
    assert is_oom(RuntimeError(CPU_OOM))
    assert is_oom(torch.OutOfMemoryError("out of memory"))
    assert is_oom(MemoryError())
    assert is_oom(MemoryError("Unable to allocate 7.28 TiB for an array"))  # numpy's
    assert not is_oom(RuntimeError("expected scalar type Float"))
    assert describe_oom(RuntimeError(CPU_OOM)) == "an allocation of 549.3 MiB failed"


def test_cpu_oom_falls_back_to_tiles():
    x = torch.rand(1, 3, 600, 40)
    warnings, worked = [], []

    def fn(c):
        if c.shape[-2] * c.shape[-1] > 512 * 40:
            raise RuntimeError(CPU_OOM)
        return c * 2

    out = run_tiled_or_whole(fn, x, None, 16, 1, "cpu", warn=warnings.append, on_tile=worked.append)
    assert torch.allclose(out, x * 2, atol=1e-6)
    assert len(warnings) == 1 and "512x512" in warnings[0] and worked == [512]


def test_restorer_keeps_the_tile_that_worked():
    """After one fallback, later frames start in the tiles that worked: no whole-frame attempt (and
    no warning) per frame."""
    method, warnings = CpuOomAbove(300 * 300), []
    r = Restorer(method, torch.device("cpu"), warn=warnings.append, tile_overlap=16, max_memory=1 << 40)
    frames = [pattern(i, 600, 600) for i in range(3)]
    for f in frames:
        out, _ = r.restore([[f]])
        assert np.array_equal(out[0], f)
    whole = [c for c in method.calls if c == (600, 600)]
    assert len(whole) == 1  # only the first frame tried the whole frame
    assert len(warnings) == 2  # 512 failed, then 256 worked: said once, for the first frame
    assert all(h <= 256 and w <= 256 for h, w in method.calls[-9:])


def test_restorer_reports_out_of_memory_in_one_line():
    method = CpuOomAbove(0, error=MemoryError)
    r = Restorer(method, torch.device("cpu"), max_memory=1 << 40)
    with pytest.raises(OutOfMemoryError) as e:
        r.restore([[pattern(0, 300, 300)]])
    msg = str(e.value)
    assert "\n" not in msg and "300x300" in msg and "smallest tiles" in msg
    assert e.value.exit_code == 9 and e.value.label == "out of memory"


def test_parse_size():
    assert parse_size("2G") == 2 << 30
    assert parse_size("1.5GiB") == 3 << 29
    assert parse_size("800m") == 800 << 20
    assert parse_size("64KB") == 64 << 10
    assert parse_size("3000000000") == 3_000_000_000
    for bad in ("", "x", "0", "-1G", "2Q", "GiB"):
        with pytest.raises(UsageError, match="--max-memory"):
            parse_size(bad)


def test_plan_tile():
    calls = []

    def probe():
        calls.append(1)
        return 100.0

    assert plan_tile(720, 1280, 1, 1, None, probe) is None  # unknown budget
    assert plan_tile(720, 1280, 1, 1, 64 << 30, probe) is None and calls == []  # fits whatever: no probe
    t = plan_tile(3000, 3000, 1, 1, 600 << 20, probe)
    assert calls == [1] and t is not None and t % 64 == 0 and 64 <= t < 3000
    assert t * t * 100 <= max((600 << 20) - 3000 * 3000 * 54, 150 << 20)
    assert plan_tile(3000, 3000, 1, 1, 1 << 20, probe) == 64  # never below the minimum


def test_probe_counts_the_peak_of_live_tensors():
    x = torch.rand(1, 1, 3, 64, 64)

    def fn(c):  # three float copies of the crop alive at once at most
        a = c[:, 0] * 2
        b = a + 1
        del a
        return b * 3

    bpp = probe_bytes_per_pixel(fn, x, side=64)
    # the crop and 2 float copies alive at once (12 B/px each), doubled on the CPU for scratch
    assert bpp == pytest.approx(2 * 36)


def _frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_max_memory_tiles_and_matches_untiled(tmp_path, cli):
    """A tiny --max-memory makes the run tile a 160x120 clip (said on stderr); the frames equal
    the untiled run's within one level (lossless ffv1 both times)."""
    src = tmp_path / "in.mkv"
    write_video(src, 3, (160, 120), codec="ffv1", pix_fmt="yuv444p")
    common = ["--method", "unsharp", "--select", "none", "--codec", "ffv1", "--pix-fmt", "yuv444p", "--device", "cpu"]
    r1 = cli("run", src, "-o", tmp_path / "whole.mkv", *common)
    assert r1.exit_code == 0, r1.output
    assert "tiles (overlap" not in r1.output
    r2 = cli("run", src, "-o", tmp_path / "tiled.mkv", *common, "--max-memory", "1M")
    assert r2.exit_code == 0, r2.output
    assert "restoring in 64x64 tiles" in r2.output and "--max-memory" in r2.output
    assert r2.output.count("tiles (overlap") == 1  # planned once for the clip's frame size
    whole, tiled = _frames(tmp_path / "whole.mkv"), _frames(tmp_path / "tiled.mkv")
    assert len(whole) == len(tiled) == 3
    for a, b in zip(whole, tiled):
        assert np.abs(a.astype(int) - b).max() <= 1


def test_bad_max_memory_is_a_usage_error(tmp_path, cli):
    src = tmp_path / "in.mp4"
    write_video(src, 2, (64, 48))
    r = cli("run", src, "-o", tmp_path / "o.mp4", "--max-memory", "lots")
    assert r.exit_code == 2 and "--max-memory" in r.output
    assert not (tmp_path / "o.mp4").exists()


RLIMIT_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from vdeblur.engine.memory import available_bytes
    from vdeblur.engine.restorer import Restorer
    from vdeblur.methods.registry import create

    side, budget = int(sys.argv[1]), sys.argv[2]
    frame = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    warnings = []
    r = Restorer(create("unsharp"), torch.device("cpu"), warn=warnings.append, tile_overlap=32,
                 max_memory=None if budget == "default" else int(budget))
    small = frame[:200, :200].copy()
    r.restore([[small]])  # imports, thread pools, first allocations: before the limit
    vm = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:")][0]
    try:
        resource.setrlimit(resource.RLIMIT_AS, (vm + 400 * 2**20, resource.RLIM_INFINITY))
    except (ValueError, OSError) as e:
        print(json.dumps({"skip": str(e)})); sys.exit(0)
    outs = [r.restore([[frame]])[0][0] for _ in range(2)]
    print(json.dumps({"warnings": warnings, "same": bool(np.array_equal(outs[0], outs[1])),
                      "tiles": {f"{k[0]}x{k[1]}": v for k, v in r._tiles.items()},
                      "mean": float(outs[0].mean()), "input_mean": float(frame.mean())}))
""")


def _under_rlimit(side: int, budget: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-c", RLIMIT_SCRIPT, str(side), budget], capture_output=True,
                       text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    if "skip" in res:
        pytest.skip(f"RLIMIT_AS cannot be set here: {res['skip']}")
    return res


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")
def test_real_cpu_allocation_failure_falls_back_once():
    """A 2000x2000 frame under an address-space limit that the whole frame does not fit in (the
    budget set huge, so nothing is planned): the CPU allocator fails, the frame is restored in
    tiles, and the second frame starts in those tiles without failing again."""
    res = _under_rlimit(2000, str(1 << 40))
    assert len(res["warnings"]) >= 1 and "out of memory on a whole 2000x2000 frame" in res["warnings"][0]
    n = len(res["warnings"])
    assert all("retrying" in w for w in res["warnings"]) and n <= 3
    assert sum("whole 2000x2000" in w for w in res["warnings"]) == 1  # the 2nd frame started in tiles
    assert res["same"] and res["tiles"]["2000x2000"] in (512, 256, 128)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")
def test_default_budget_reads_the_address_space_limit():
    """With no --max-memory the budget is a share of what the address-space limit leaves: tiles
    are planned before allocating, so nothing fails."""
    res = _under_rlimit(2000, "default")
    assert res["warnings"] and all("out of memory" not in w for w in res["warnings"])
    assert "free memory" in res["warnings"][0] and "tiles" in res["warnings"][0]
    assert res["same"]
