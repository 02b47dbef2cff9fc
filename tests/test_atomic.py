"""An interrupted run never leaves a half-written OUT and never touches IN."""

import os
import signal
import subprocess
import sys
import time

import pytest

from media import write_video


@pytest.mark.slow
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
    else:
        # SIGKILL leaves the hidden partial; the next run to the same output removes it (its
        # process is gone) and writes OUT
        partials = [n for n in os.listdir(tmp_path) if n.endswith(".vdeblur-partial.mp4")]
        assert len(partials) == 1 and str(proc.pid) in partials[0]
        r = subprocess.run([sys.executable, "-m", "vdeblur", "run", str(src), "-o", str(out), "-m", "identity",
                            "--select", "none", "--json"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert sorted(os.listdir(tmp_path)) == ["in.mp4", "out.mp4"]
        assert "partial file(s) of an interrupted run" in r.stderr


def test_stale_partials_only_of_dead_runs_are_removed(tmp_path):
    from vdeblur.io.writer import _host_tag, remove_stale_partials

    out = tmp_path / "clip.v2.mp4"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = _host_tag()
        names = {
            "dead": f".clip.v2.{host}-{dead.pid}-abc_12.vdeblur-partial.mp4",
            "live": f".clip.v2.{host}-{live.pid}-def34.vdeblur-partial.mp4",
            "mine": f".clip.v2.{host}-{os.getpid()}-ghi56.vdeblur-partial.mp4",
            "other_host": f".clip.v2.{host}x-{dead.pid}-jkl78.vdeblur-partial.mp4",
            "other_output": f".clip.{host}-{dead.pid}-mno90.vdeblur-partial.mp4",
            "other_ext": f".clip.v2.{host}-{dead.pid}-pqr12.vdeblur-partial.mkv",
            "old_style": ".clip.v2.x1y2z3.vdeblur-partial.mp4",
        }
        for n in names.values():
            (tmp_path / n).write_bytes(b"x")
        removed = remove_stale_partials(str(out))
        assert [os.path.basename(p) for p in removed] == [names["dead"]]
        assert sorted(os.listdir(tmp_path)) == sorted(n for k, n in names.items() if k != "dead")
    finally:
        live.kill()
        live.wait()


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_output_mode_follows_the_umask(cli, tmp_path, mask):
    src = tmp_path / "in.mp4"
    write_video(src, 3, (64, 48))
    out = tmp_path / "out.mkv"
    old = os.umask(mask)
    try:
        r = cli("run", src, "-o", out, "-m", "identity", "--select", "none")
        assert r.exit_code == 0, r.output
        assert os.stat(out).st_mode & 0o777 == 0o666 & ~mask
        # overwriting keeps the existing file's own mode, as a plain write does
        os.chmod(out, 0o640)
        r = cli("run", src, "-o", out, "-m", "identity", "--select", "none", "--force")
        assert r.exit_code == 0, r.output
        assert os.stat(out).st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
