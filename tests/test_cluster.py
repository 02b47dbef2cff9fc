"""vdeblur.jobs.executors: the in-process executor, and the Ray one against a private Ray head."""

import operator
import time

import pytest
from ray_head import ray_head  # noqa: F401 - a fixture

from vdeblur.io.probe import check_input_path  # a library call that raises InputError
from vdeblur.jobs.executors import LocalExecutor, RayExecutor, make_executor
from vdeblur.errors import ClusterError, InputError, UsageError

# ---------------------------------------------------------------------------------------------
# in-process


def test_local_results_in_order_and_lazily():
    ran = []

    def work(i, *, scale=1):
        ran.append(i)
        return i * scale

    with make_executor(None) as ex:
        assert isinstance(ex, LocalExecutor)
        handles = [ex.submit(work, i, scale=10) for i in range(5)]
        assert ran == []  # nothing runs before its result is asked for
        assert [ex.result(h) for h in reversed(handles)] == [40, 30, 20, 10, 0]
        assert ran == [4, 3, 2, 1, 0]
        assert ex.result(handles[0]) == 0 and ran == [4, 3, 2, 1, 0]  # not run twice


def test_local_reraises_the_original_exception():
    ex = LocalExecutor()
    h = ex.submit(check_input_path, "/nonexistent/a.txt")
    for _ in range(2):  # the same error each time
        with pytest.raises(InputError) as info:
            ex.result(h)
        assert str(info.value) == "input not found: /nonexistent/a.txt"
    with pytest.raises(ValueError, match="invalid literal"):
        ex.result(ex.submit(int, "x"))
    ex.close()


@pytest.mark.parametrize("cpus, gpus", [(0, None), (-1, None), (float("nan"), None), (1, -1)])
def test_bad_resources_refused(cpus, gpus):
    with pytest.raises(UsageError, match="--task-"):
        make_executor(None, task_cpus=cpus, task_gpus=gpus)


@pytest.mark.parametrize("address", ["", "  ", "local", "host", "host:port", "host:0", "host:70000"])
def test_bad_address_refused(address):
    pytest.importorskip("ray")
    with pytest.raises(UsageError) as info:
        make_executor(address)
    assert "\n" not in str(info.value)


def test_nothing_listening_fails_fast():
    t0 = time.monotonic()
    with pytest.raises(UsageError) as info:
        make_executor("127.0.0.1:1")
    assert time.monotonic() - t0 < 15
    msg = str(info.value)
    assert "\n" not in msg
    try:
        import ray
    except ImportError:
        assert "pip install" in msg
        return
    assert msg.startswith("cannot connect to a Ray cluster at 127.0.0.1:1: ")
    assert not ray.is_initialized()


def test_not_a_ray_port_fails_fast(monkeypatch):
    """A port that answers but is not Ray's (here: one that accepts and says nothing)."""
    import socket

    from vdeblur.jobs import executors as cluster

    ray = pytest.importorskip("ray")
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1.0)
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        address = f"127.0.0.1:{srv.getsockname()[1]}"
        t0 = time.monotonic()
        with pytest.raises(UsageError, match=f"cannot connect to a Ray cluster at {address}: "):
            make_executor(address)
        assert time.monotonic() - t0 < 5
    assert not ray.is_initialized()


def test_auto_uses_ray_address(monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    with pytest.raises(UsageError, match=r"at auto \(127\.0\.0\.1:1\): "):
        make_executor("auto")


# ---------------------------------------------------------------------------------------------
# on a Ray cluster (one private head for the module)


def test_ray_results_in_order(ray_head, capfd):  # noqa: F811
    import ray

    with make_executor(ray_head) as ex:
        assert isinstance(ex, RayExecutor)
        assert ex.task_gpus == 0  # no GPU in the cluster: tasks ask for none
        handles = [ex.submit(operator.add, i, 100) for i in range(6)]
        handles.append(ex.submit(int, "ff", base=16))  # keyword arguments travel too
        assert [ex.result(h) for h in handles] == [100, 101, 102, 103, 104, 105, 255]
    assert not ray.is_initialized()
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # Ray says nothing on the driver


def test_ray_task_exception_comes_back_as_itself(ray_head, capfd):  # noqa: F811
    with make_executor(ray_head) as ex:
        h = ex.submit(check_input_path, "/nonexistent/data/a.txt")
        bad_int = ex.submit(int, "x")
        fine = ex.submit(operator.mul, 6, 7)
        with pytest.raises(InputError) as info:
            ex.result(h)
        assert type(info.value) is InputError
        assert str(info.value) == "input not found: /nonexistent/data/a.txt"
        notes = getattr(info.value, "__notes__", None)
        if notes is not None:  # Python 3.11+: the worker's traceback, for --debug
            assert "raised in a Ray task" in notes[0] and "check_input_path" in notes[0]
        with pytest.raises(ValueError) as info2:
            ex.result(bad_int)
        assert type(info2.value) is ValueError
        assert str(info2.value) == "invalid literal for int() with base 10: 'x'"
        assert ex.result(fine) == 42  # a failed task does not spoil the others
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_ray_task_too_big_for_the_cluster(ray_head):  # noqa: F811
    import ray

    with pytest.raises(UsageError, match="each task needs 3 CPUs, but its largest node has 2"):
        make_executor(ray_head, task_cpus=3)
    with pytest.raises(UsageError, match="each task needs 1 GPUs, but its largest node has 0"):
        make_executor(ray_head, task_gpus=1)
    assert not ray.is_initialized()  # a refused executor disconnects


def test_ray_auto_from_ray_address(ray_head, monkeypatch):  # noqa: F811
    import ray

    monkeypatch.setenv("RAY_ADDRESS", ray_head)
    with make_executor("auto", task_cpus=0.5) as ex:
        assert [ex.result(ex.submit(operator.neg, i)) for i in range(3)] == [0, -1, -2]
    assert not ray.is_initialized()


def test_ray_connection_is_shared_not_doubled(ray_head):  # noqa: F811
    import ray

    first = make_executor(ray_head)
    try:
        second = make_executor(ray_head)  # the process is connected: reused, not re-initialised
        assert second.result(second.submit(operator.add, 1, 2)) == 3
        second.close()
        assert ray.is_initialized()  # only the executor that connected disconnects
        assert first.result(first.submit(operator.add, 2, 2)) == 4
    finally:
        first.close()
    assert not ray.is_initialized()


def test_ray_interrupt_cancels_outstanding_tasks(ray_head):  # noqa: F811
    import ray

    with make_executor(ray_head, task_cpus=0.5) as ex:
        handles = [ex.submit(time.sleep, 60) for _ in range(3)]

        def interrupt():  # as if Ctrl-C arrived while result() waits
            raise KeyboardInterrupt

        ex._cluster_down = interrupt
        with pytest.raises(KeyboardInterrupt):
            ex.result(handles[0])
        for h in handles:  # a task not cancelled would return after its 60 s sleep: no error
            with pytest.raises(ray.exceptions.TaskCancelledError):
                ray.get(h, timeout=120)  # a loaded machine's workers take a while to be killed


def test_ray_worker_death_is_a_cluster_error(ray_head):  # noqa: F811
    import os

    with make_executor(ray_head) as ex, pytest.raises(ClusterError) as info:
        ex.result(ex.submit(os._exit, 3))  # Ray retries it 3 times, then gives up
    msg = str(info.value)
    assert msg.startswith("a Ray worker died (WorkerCrashedError): ") and "\n" not in msg
