"""A private Ray head for the tests: ``from ray_head import ray_head``.

``ray_head`` (module scope) starts ``ray start --head --block`` as a separate process (its own
session, its own temp dir under a short /tmp path -- Ray's socket paths have a length limit --,
free ports, 2 CPUs, no GPU, a small object store) and yields its address, "127.0.0.1:PORT".

Teardown stops only this instance: ``ray stop`` would stop every Ray instance on the machine,
so the ``--block`` process is sent SIGTERM (it drains and stops the processes it started), and
whatever of its process tree and process group is still alive after that is killed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

START_TIMEOUT = 90.0
STOP_TIMEOUT = 40.0  # SIGTERM drains running tasks for up to 30 s first


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _proc_stat(pid: int) -> tuple[int, int, str] | None:
    """(ppid, pgid, start time) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[2]), fields[19]


def _tree(root: int) -> dict[int, str]:
    """The live processes under ``root`` (by parent or by process group): pid -> start time."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _proc_stat(int(name))
            if st is not None:
                table[int(name)] = st
    found = {pid: st[2] for pid, st in table.items() if st[1] == root}  # the group ray start leads
    if root in table:
        found[root] = table[root][2]
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _, start) in table.items():
            if ppid in found and pid not in found:
                found[pid] = start
                grew = True
    return found


def _kill_left(procs: dict[int, str]) -> None:
    for pid, start in procs.items():
        st = _proc_stat(pid)
        if st is not None and st[2] == start:  # the same process, not a reused pid
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _tail(path: str, n: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


class RayHead:
    def __init__(self) -> None:
        self.temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: /tmp/rhXXXXXXXX
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = os.path.join(self.temp_dir, "ray-start.log")
        self.proc: subprocess.Popen | None = None
        self.start_seconds = 0.0

    def start(self) -> None:
        ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
        cmd = [ray_cli if os.path.exists(ray_cli) else "ray", "start", "--head", "--block",
               f"--port={self.port}", "--num-cpus=2", "--num-gpus=0",
               "--include-dashboard=false", "--disable-usage-stats",
               f"--temp-dir={self.temp_dir}", "--object-store-memory=78643200",
               f"--dashboard-agent-listen-port={_free_port()}"]
        if importlib.util.find_spec("grpc") is not None:  # ray[client]: its server's port, not 10001
            cmd.append(f"--ray-client-server-port={_free_port()}")
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        t0 = time.perf_counter()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        # `ray start` writes the cluster's address here once every head process is up
        ready = os.path.join(self.temp_dir, "ray_current_cluster")
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.proc.returncode}:\n{_tail(self.log)}")
            if time.perf_counter() - t0 > START_TIMEOUT:
                raise RuntimeError(f"ray start did not finish in {START_TIMEOUT:g} s:\n{_tail(self.log)}")
            time.sleep(0.05)
        self.start_seconds = time.perf_counter() - t0

    def stop(self) -> None:
        if self.proc is not None:
            procs = _tree(self.proc.pid)
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    pass
            procs.update(_tree(self.proc.pid))
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(_proc_stat(p) for p in procs if p != self.proc.pid):
                time.sleep(0.1)
            _kill_left(procs)
            if self.proc.poll() is None:
                self.proc.wait(10)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_head():
    """The address ("127.0.0.1:PORT") of a Ray head started for this test module."""
    pytest.importorskip("ray")
    head = RayHead()
    try:
        try:
            head.start()
        except RuntimeError as e:
            pytest.fail(str(e), pytrace=False)
        print(f"ray head {head.address} started in {head.start_seconds:.1f} s")
        yield head.address
    finally:
        head.stop()
