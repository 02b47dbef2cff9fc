"""io/memory.py: frame-sized buffers are reused, not faulted in afresh for every frame."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CODE = """
import json, resource, numpy as np
from vdeblur.io.memory import keep_frame_buffers
done = keep_frame_buffers()
def frame():  # a 720p float RGB frame, written through (every page touched), then freed
    a = np.empty((720, 1280, 3), np.float32)
    a.fill(1.0)
    return float(a[-1, -1, -1])
frame()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    frame()
print(json.dumps({"done": done, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _run(malloc: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "VDEBLUR_MALLOC" and not k.startswith("MALLOC_")}
    if malloc is not None:
        env["VDEBLUR_MALLOC"] = malloc
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_frame_buffers_are_reused():
    tuned, default = _run(None), _run("default")
    if not tuned["done"]:
        pytest.skip("no glibc mallopt here")
    assert default["done"] is False
    # glibc alone: each frame's buffer is a fresh mapping, faulted in again (4 KiB pages, or
    # 2 MiB ones where transparent huge pages are on: at least one fault a frame either way)
    assert default["faults"] >= 10
    assert tuned["faults"] < 10  # tuned: the same pages, frame after frame
