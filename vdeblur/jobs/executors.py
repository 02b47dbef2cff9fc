"""Where work items run: in this process, or as tasks on an existing Ray cluster.

``make_executor(None)`` runs every item in this process; ``make_executor("auto" | "HOST:PORT" |
"ray://HOST:PORT")`` connects to a running Ray cluster (it never starts one) and sends each item
as one Ray task. Both give the same three calls -- ``submit(fn, *args)`` -> handle,
``result(handle)`` -> fn's value (or fn's own exception, same type and message), ``close()`` --
so a caller submits everything, then collects the results in the order it wants.

Assumptions for a cluster:

* every node runs the same environment as this one: vdeblur installed (``fn`` must be a
  module-level function of an importable module; it and its arguments are pickled by reference
  and re-imported on the workers), with the same versions;
* paths passed to tasks mean the same file on every node: a shared filesystem mounted at the
  same place (tasks read and write the files themselves; only small results travel back);
* ``HOST:PORT`` (and ``auto``) attach this process as a Ray driver, which must run on a node of
  the cluster (the head, or a machine joined with ``ray start --address``); from outside the
  cluster use ``ray://HEAD:10001`` (Ray Client: ``pip install 'ray[client]'``).

Start a cluster with ``ray start --head --num-cpus N`` on the head machine (it listens on port
6379; other machines join with ``ray start --address HEAD:6379``); ``auto`` then finds it on this
machine, or through ``RAY_ADDRESS``. Stop it with ``ray stop``.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Protocol

from vdeblur.errors import ClusterError, InternalError, UsageError

#: seconds to wait for a TCP connection to the cluster before Ray is asked to connect
CONNECT_TIMEOUT = 5.0
#: while waiting for a result, the cluster's port is checked this often (seconds) ...
POLL_SECONDS = 1.0
#: ... and the cluster is given up after this many seconds unreachable (Ray itself ends the
#: process after 60 s without its cluster)
LOST_AFTER = 20.0

# Set (unless the user set them) while Ray is imported / connecting, so that an address where no
# Ray cluster answers fails in seconds rather than after Ray's ~20 retries of ~40 s each.
_IMPORT_ENV = {"RAY_py_gcs_connect_timeout_s": "10"}  # read once, when ray is first imported
_CONNECT_ENV = {
    "RAY_gcs_server_port_wait_time_s": "1",  # connection attempts (each up to ~20 s)
}


class Executor(Protocol):
    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...
    def result(self, handle: Any) -> Any: ...
    def close(self) -> None: ...
    def __enter__(self) -> Executor: ...
    def __exit__(self, *exc: object) -> None: ...


def _check_resources(task_cpus: float, task_gpus: float | None) -> None:
    if not task_cpus > 0:  # also refuses NaN
        raise UsageError(f"--task-cpus must be more than 0, not {task_cpus}")
    if task_gpus is not None and not task_gpus >= 0:
        raise UsageError(f"--task-gpus must be 0 or more, not {task_gpus}")


class _LocalTask:
    __slots__ = ("fn", "args", "kwargs", "done", "value", "error")

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None


class LocalExecutor:
    """Runs each item in this process, lazily: ``submit`` only records the call, ``result`` runs
    it (in the calling thread) the first time it is asked for that handle, so items run in the
    order their results are collected, and an item whose result is never asked for never runs.
    A second ``result`` of the same handle returns the same value (or raises the same error)."""

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> _LocalTask:
        if not callable(fn):
            raise TypeError(f"submit needs a callable, not {type(fn).__name__}")
        return _LocalTask(fn, args, kwargs)

    def result(self, handle: _LocalTask) -> Any:
        if not isinstance(handle, _LocalTask):
            raise TypeError(f"not a handle from LocalExecutor.submit: {handle!r}")
        if not handle.done:
            fn, args, kwargs = handle.fn, handle.args, handle.kwargs
            handle.fn, handle.args, handle.kwargs = None, (), {}  # let the arguments go
            try:
                handle.value = fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - KeyboardInterrupt & co. are not remembered
                handle.error = e
            handle.done = True
        if handle.error is not None:
            raise handle.error
        return handle.value

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The one Ray remote function: calls ``fn`` on a worker (``ray.remote`` refuses builtins
    such as ``operator.add``; through this any picklable callable goes)."""
    return fn(*args, **kwargs)


def _one_line(text: object, limit: int = 300) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    """Set the variables a user has not set, for the duration of the block."""
    added = [k for k in values if k not in os.environ]
    for k in added:
        os.environ[k] = values[k]
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


@contextmanager
def _keep_sigterm_handler() -> Iterator[None]:
    """ray.init() sets SIGTERM to ``sys.exit(15)``: keep the caller's handler (vdeblur's turns
    SIGTERM into KeyboardInterrupt, so that a run stops as on Ctrl-C)."""
    main = threading.current_thread() is threading.main_thread()
    prev = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if prev is not None:
            signal.signal(signal.SIGTERM, prev)


def _import_ray() -> Any:
    if "ray" not in sys.modules:
        with _env(_IMPORT_ENV):
            try:
                import ray
            except ImportError:
                raise UsageError("--cluster needs Ray: pip install 'vdeblur[ray]'") from None
    import ray

    return ray


def _split_host_port(address: str) -> tuple[str, int] | None:
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


_H2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # preface, SETTINGS


def _probe(host: str, port: int, address: str) -> None:
    """Fail fast, with a readable reason, where no Ray cluster is: Ray itself would retry for
    minutes, printing warnings. Ray's ports speak gRPC: an HTTP/2 server answers a client's
    preface with a SETTINGS frame; a port that answers anything else is not Ray's."""
    def fail(reason: str) -> UsageError:
        return UsageError(f"cannot connect to a Ray cluster at {address}: {reason}")

    try:
        conn = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except socket.gaierror as e:
        raise fail(f"unknown host {host} ({e.strerror})") from None
    except TimeoutError:
        raise fail(f"no answer in {CONNECT_TIMEOUT:g} s") from None
    except OSError as e:
        raise fail(str(e.strerror or e)) from None
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        conn.close()
        return  # TLS first: no plain HTTP/2 to look at
    try:
        with conn:
            conn.sendall(_H2_HELLO)
            head = conn.recv(9)
    except TimeoutError:  # a GCS sends its SETTINGS at once
        raise fail(f"the port accepts connections but nothing answered in {CONNECT_TIMEOUT:g} s") from None
    except OSError as e:
        raise fail(str(e.strerror or e)) from None
    if len(head) >= 4 and head[3] == 0x04:
        return
    raise fail("something that is not Ray answers there (a head listens on 6379 unless given --port; "
               "ray:// on 10001)")


def _resolve_auto(ray: Any) -> str:
    """``auto``: RAY_ADDRESS, else the cluster ``ray start`` left on this machine."""
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env:
        return env
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:  # a Ray without it: let ray.init find the cluster
        return "auto"
    try:
        found = canonicalize_bootstrap_address("auto")
    except ConnectionError:
        raise UsageError("cannot connect to a Ray cluster at auto: no running Ray cluster found on this "
                         "machine (start one with `ray start --head`, or set RAY_ADDRESS)") from None
    except Exception:  # noqa: BLE001 - a private helper: on any surprise let ray.init decide
        return "auto"
    return found or "auto"


def _same_cluster(ray: Any, address: str) -> bool:
    """Whether this process's Ray connection is to ``address`` (``auto``: to any cluster)."""
    if address == "auto" or address == _connected_to:
        return True
    try:
        current = ray.get_runtime_context().gcs_address
    except Exception:  # noqa: BLE001 - e.g. a Ray Client connection
        return False
    a, b = _split_host_port(address), _split_host_port(current or "")
    if a is None or b is None or a[1] != b[1]:
        return False
    try:
        host = socket.gethostbyname(a[0])
    except OSError:
        return False
    if host == b[0]:
        return True
    # Ray names a local cluster by this machine's IP, not 127.0.0.1
    return ipaddress.ip_address(host).is_loopback and b[0] == ray.util.get_node_ip_address()


def _quiet_driver(ray: Any, quiet: bool) -> None:
    """Even with ``log_to_driver=False`` a driver prints the cluster's error messages on its
    stdout ("(raylet) A worker died ...", "Task ... failed. There are 3 retries remaining");
    the switch Ray's debugger uses to mute worker logs mutes them. (What they tell comes back
    as ``result()``'s exception.)"""
    mod = getattr(getattr(ray, "_private", None), "worker", None)
    if mod is not None and hasattr(mod, "_worker_logs_enabled"):
        mod._worker_logs_enabled = not quiet


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_connected_to: str | None = None  # the address ray.init was given by a RayExecutor


_WORKER_LOST = (
    "WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "RayActorError", "ActorDiedError",
    "OutOfMemoryError", "ObjectLostError", "OwnerDiedError", "ObjectReconstructionFailedError",
    "ObjectFetchTimedOutError", "OutOfDiskError",
)


class RayExecutor:
    """Sends each item as one task (``num_cpus=task_cpus, num_gpus=task_gpus``) to the Ray
    cluster at ``address``: ``"auto"`` (RAY_ADDRESS, else the one ``ray start`` runs on this
    machine), ``"HOST:PORT"`` (the head's GCS port, 6379 by default) or ``"ray://HOST:PORT"``
    (Ray Client, needs ``ray[client]``). ``task_gpus=None``: one GPU per task if the cluster
    has GPUs, else none.

    ``result`` blocks; a task's exception is raised again as the original exception (its type
    and message; the worker's traceback is kept as a note for ``--debug``); a lost worker or
    node is a ClusterError (exit 8), and so is a cluster whose port stays unreachable for LOST_AFTER
    seconds while ``result`` waits. Ctrl-C while waiting cancels this executor's outstanding tasks.
    ``close`` cancels the tasks whose result was never collected, and disconnects if this
    executor connected (an existing connection to the same cluster in this process is reused).
    """

    def __init__(self, address: str, *, task_cpus: float = 1.0, task_gpus: float | None = None) -> None:
        global _connected_to
        _check_resources(task_cpus, task_gpus)
        address = (address or "").strip()
        if not address:
            raise UsageError("--cluster needs an address: auto, HOST:PORT or ray://HOST:PORT")
        self.address = address
        self._owner = False
        self._closed = False
        self._lost = False
        self._hp: tuple[str, int] | None = None  # the port watched while waiting
        self._pending: dict[Any, None] = {}  # submitted, result not yet collected (ordered set)
        ray = self._ray = _import_ray()

        if ray.is_initialized():  # connected already (a second executor, or the caller did)
            if not _same_cluster(ray, address):
                raise UsageError(f"cannot connect to a Ray cluster at {address}: this process is already "
                                 "connected to another Ray cluster")
        else:
            target = _resolve_auto(ray) if address == "auto" else address
            shown = address if target in (address, "auto") else f"auto ({target})"
            client = target.startswith("ray://")
            hp = _split_host_port(target[len("ray://"):] if client else target)
            if target != "auto" and hp is None:
                raise UsageError(f"bad --cluster {shown}: expected auto, HOST:PORT or ray://HOST:PORT")
            if client and importlib.util.find_spec("grpc") is None:
                raise UsageError(f"cannot connect to a Ray cluster at {shown}: ray:// needs Ray Client: "
                                 "pip install 'ray[client]'")
            if hp is not None:
                _probe(hp[0], hp[1], shown)
            kwargs: dict[str, Any] = {}
            if not client:  # Ray Client passes unknown kwargs on to the server's ray.init
                kwargs = {"logging_level": logging.ERROR, "log_to_driver": False}
            try:
                with _env(_CONNECT_ENV), _keep_sigterm_handler():
                    ray.init(address=target, **kwargs)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError...
                if ray.is_initialized():
                    ray.shutdown()
                raise UsageError(f"cannot connect to a Ray cluster at {shown}: {_one_line(e)}") from None
            self._owner = True
            _connected_to = target
            _quiet_driver(ray, True)
        try:
            self._hp = self._watch_address(ray)
            self._set_resources(task_cpus, task_gpus)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _watch_address(ray: Any) -> tuple[str, int] | None:
        try:
            if ray.util.client.ray.is_connected():  # Ray Client: the client server's port
                return _split_host_port(_connected_to[len("ray://"):]) if _connected_to else None
            return _split_host_port(ray.get_runtime_context().gcs_address or "")
        except Exception:  # noqa: BLE001 - no watching then
            return None

    def _set_resources(self, task_cpus: float, task_gpus: float | None) -> None:
        ray = self._ray
        total = ray.cluster_resources()
        if task_gpus is None:
            task_gpus = 1.0 if total.get("GPU", 0) > 0 else 0.0
        # a task runs on one node: it must fit one, or it would wait forever
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive", n.get("alive", True))]
        if not nodes:
            nodes = [total]
        fits = [n for n in nodes if n.get("CPU", 0) >= task_cpus and n.get("GPU", 0) >= task_gpus]
        if not fits:
            cpus = max(n.get("CPU", 0) for n in nodes)
            gpus = max(n.get("GPU", 0) for n in nodes)
            if cpus < task_cpus:
                need = f"{task_cpus:g} CPUs, but its largest node has {cpus:g}"
            elif gpus < task_gpus:
                need = f"{task_gpus:g} GPUs, but its largest node has {gpus:g}"
            else:
                need = f"{task_cpus:g} CPUs and {task_gpus:g} GPUs, but no node has both"
            raise UsageError(f"the Ray cluster at {self.address} cannot run a task: each task needs {need} "
                             "(lower --task-cpus/--task-gpus)")
        self.task_cpus, self.task_gpus = float(task_cpus), float(task_gpus)
        self._remote = ray.remote(_run)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            raise InternalError("submit on a closed RayExecutor")
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        ref = self._remote.options(num_cpus=self.task_cpus, num_gpus=self.task_gpus, name=name).remote(
            fn, *args, **kwargs)
        self._pending[ref] = None
        return ref

    def result(self, handle: Any) -> Any:
        ray = self._ray
        if self._lost:
            raise ClusterError(f"lost the Ray cluster at {self.address}")
        try:
            # poll rather than block in ray.get: a driver whose cluster went away is killed by
            # Ray (after 60 s, no exception, no cleanup); this notices sooner and raises
            down_since: float | None = None
            while not ray.wait([handle], timeout=POLL_SECONDS)[0]:
                reason = self._cluster_down()
                if reason is None:
                    down_since = None
                    continue
                now = time.monotonic()
                down_since = down_since or now
                if now - down_since >= LOST_AFTER:
                    self._lost = True
                    raise ClusterError(f"lost the Ray cluster at {self.address}: {reason}")
            return ray.get(handle)
        except KeyboardInterrupt:
            self._cancel_pending()
            raise
        except ray.exceptions.RayTaskError as e:
            raise _unwrap(e) from None
        except ray.exceptions.TaskCancelledError:
            raise InternalError("a Ray task was cancelled") from None
        except ray.exceptions.RayError as e:
            kind = type(e).__name__
            if any(k in _WORKER_LOST for k in (c.__name__ for c in type(e).__mro__)):
                raise ClusterError(f"a Ray worker died ({kind}): {_one_line(e)}") from None
            raise ClusterError(f"Ray failed to run a task ({kind}): {_one_line(e)}") from None
        finally:
            self._pending.pop(handle, None)

    def _cluster_down(self) -> str | None:
        """Why the cluster's port cannot be reached (None: it can)."""
        if self._hp is None:
            return None
        try:
            socket.create_connection(self._hp, timeout=POLL_SECONDS).close()
        except OSError as e:
            return str(e.strerror or e) if not isinstance(e, TimeoutError) else "no answer"
        return None

    def _cancel_pending(self) -> None:
        pending, self._pending = list(self._pending), {}
        if self._lost:
            return
        for ref in pending:
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished, or the cluster is gone
                pass

    def close(self) -> None:
        global _connected_to
        if self._closed:
            return
        self._closed = True
        ray = self._ray
        if ray.is_initialized():
            self._cancel_pending()
            if self._owner:
                ray.shutdown()
                _connected_to = None
        if self._owner:
            _quiet_driver(ray, False)
        self._pending = {}

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unwrap(err: Any) -> BaseException:
    """The exception a task raised, from Ray's wrapper: same type, same message, no traceback
    text in ``str()`` (Ray's own ``as_instanceof_cause()`` puts the traceback there)."""
    import ray

    cause = err
    while isinstance(cause, ray.exceptions.RayTaskError):
        inner = getattr(cause, "cause", None)
        if inner is None or inner is cause:
            break
        cause = inner
    if isinstance(cause, ray.exceptions.RayTaskError) or type(cause) is ray.exceptions.RayError:
        # no usable cause: e.g. an exception that could not be pickled (its text is a traceback)
        return InternalError(f"a Ray task failed: {_one_line(getattr(cause, 'cause', None) or cause)}")
    if hasattr(cause, "add_note"):  # Python 3.11+: shown by --debug's traceback, not by str()
        try:
            # str(): "ray::NAME() (pid=.., ip=..)" and the worker's traceback
            cause.add_note("raised in a Ray task: " + _ANSI.sub("", str(err)).strip())
        except Exception:  # noqa: BLE001
            pass
    return cause


def make_executor(cluster: str | None, *, task_cpus: float = 1.0, task_gpus: float | None = None) -> Executor:
    """``None``: a LocalExecutor (items run in this process); else a RayExecutor for ``cluster``."""
    _check_resources(task_cpus, task_gpus)
    if cluster is None:
        return LocalExecutor()
    return RayExecutor(cluster, task_cpus=task_cpus, task_gpus=task_gpus)
