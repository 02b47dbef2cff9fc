"""An interrupted run never leaves a half-written OUT and never touches IN."""

import os
import signal
import subprocess
import sys
import time

import pytest

from media import write_video


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_kill_mid_run_leaves_no_output(tmp_path, sig):
    src = tmp_path / "in.mp4"
    write_video(src, 120, (256, 192))
    before = src.read_bytes()
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vdeblur", "run", str(src), "-o", str(out), "--method", "richardson-lucy",
         "--psf", "motion:9:0", "--iterations", "60", "--select", "none", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    # wait until frames are flowing (the first JSON line), then kill
    line = proc.stdout.readline()
    assert line.startswith(b"{"), proc.stderr.read()
    time.sleep(0.2)
    assert proc.poll() is None, "run finished before it could be interrupted"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert not out.exists()
    assert src.read_bytes() == before
    if sig == signal.SIGTERM:
        assert proc.returncode == 130
        # a caught signal also removes the temporary file
        assert sorted(os.listdir(tmp_path)) == ["in.mp4"]
