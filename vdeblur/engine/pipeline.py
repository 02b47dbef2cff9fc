"""The threads and queues a frame travels through, and the frame accounting.

    reader thread --q_in--> engine (this thread): select -> window -> batch -> restore --q_out--> writer thread

Every queue is bounded, so memory does not grow with the length of the video: the engine holds
at most the selector's look-ahead, the method's window and one batch. Frames leave in input
order with their source timestamps; non-video packets travel with them in demux order.
Frames out == frames in, always (checked at the end).
"""

from __future__ import annotations

import copy
import math
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from vdeblur.errors import InputError, InternalError
from vdeblur.io.memory import keep_frame_buffers
from vdeblur.io.reader import CopyPacket, Frame
from vdeblur.select import selector_input

if TYPE_CHECKING:  # the metrics import torch: a run without --reference (identity) need not
    from vdeblur.metrics.reference import ReferenceMetrics

_END = object()


@dataclass
class FrameResult:
    frame: int
    pts: float | None
    blur_score: float | None
    blurred: bool
    restored: bool
    ms: float
    psnr: float | None = None
    ssim: float | None = None
    psnr_input: float | None = None
    ssim_input: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The row of ``run --json`` and of a segment's results file."""
        return dict(vars(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FrameResult":
        return cls(**d)


@dataclass
class Summary:
    frames: int = 0
    restored: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    psnr: float | None = None
    ssim: float | None = None
    psnr_input: float | None = None
    ssim_input: float | None = None

    def as_dict(self) -> dict[str, Any]:
        keys = ("frames", "restored", "seconds", "fps", "psnr", "ssim", "psnr_input", "ssim_input")
        return {k: getattr(self, k) for k in keys}


class SummaryAccumulator:
    """The run's summary from per-frame results, in constant memory (no list per frame)."""

    KEYS = ("psnr", "ssim", "psnr_input", "ssim_input")

    def __init__(self) -> None:
        self.frames = self.restored = 0
        self.sums = {k: [0.0, 0, 0] for k in self.KEYS}  # sum and count of finite values, count of all

    def add(self, r: FrameResult) -> None:
        self.frames += 1
        self.restored += bool(r.restored)
        for k, acc in self.sums.items():
            v = getattr(r, k)
            if v is not None:
                acc[2] += 1
                if math.isfinite(v):
                    acc[0] += v
                    acc[1] += 1

    def summary(self, wall: float) -> Summary:
        s = Summary(frames=self.frames, restored=self.restored, seconds=wall)
        s.fps = s.frames / wall if wall > 0 else 0.0
        for k, (total, n, n_all) in self.sums.items():  # as mean_finite: finite mean, else inf, else None
            setattr(s, k, total / n if n else (math.inf if n_all else None))
        return s


class _Stage:
    """A frame on its way: decided, then possibly restored, then emitted."""

    __slots__ = ("frame", "score", "blurred", "out", "done", "ms")

    def __init__(self, frame: Frame):
        self.frame = frame
        self.score: float | None = None
        self.blurred = False
        self.out: np.ndarray | None = None
        self.done = False
        self.ms = 0.0


def _offer(q: "queue.Queue[Any]", item: Any, stop: threading.Event) -> bool:
    """Put ``item`` into a bounded queue, waiting for room; False if stopped first."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _drain(q: "queue.Queue[Any]", stop: threading.Event) -> Iterator[Any]:
    """The items of a bounded queue until ``_END``, or until we are stopped with it empty."""
    while True:
        try:
            item = q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return
            continue
        if item is _END:
            return
        yield item


def _pump(source: Iterator[Any], q: "queue.Queue[Any]", stop: threading.Event, errors: list) -> None:
    """Reader thread: move items into a bounded queue until the source ends or we are stopped."""
    try:
        for item in source:
            if not _offer(q, item, stop):
                return
    except BaseException as e:  # noqa: BLE001 - handed to the main thread
        errors.append(e)
    finally:
        _offer(q, _END, stop)


def reflect(i: int, last: int) -> int:
    """Reflect index ``i`` into [0, last] (as the window's ends are padded)."""
    if last <= 0:
        return 0
    while i < 0 or i > last:
        i = -i if i < 0 else 2 * last - i
    return i


class Engine:
    """Streams frames from ``items`` through selector and method into ``writer``.

    ``restorer`` has ``restore(windows, state) -> (frames, state)``; the method's needs
    (past, future, recurrent) come from ``restorer.method``.

    A method with ``needs_labels`` (``lucky``) is given the selector's labels of its window
    instead: ``pick(t, labels)`` names the frames of the window it reads (labels of the frames
    ``past`` back and ``future`` ahead that exist), and ``restore_frame(frame, picked, fallback)``
    restores frame ``t`` from them; ``fallback`` runs the method's single-frame ``fallback``
    module, if it has one, through a copy of the restorer (device, precision, tiles).
    """

    def __init__(
        self,
        restorer: Any,
        selector: Any,
        *,
        batch_size: int = 1,
        reference: Iterator[np.ndarray] | None = None,
        metrics: ReferenceMetrics | None = None,
        on_result: Callable[[FrameResult], None] | None = None,
        queue_size: int = 8,
        restorable: Callable[[int], bool] | None = None,
    ):
        m = restorer.method
        self.restorer = restorer
        self.identity = bool(getattr(m, "is_identity", False))
        self.past, self.future, self.recurrent = m.past, m.future, m.recurrent
        self.labelled = bool(getattr(m, "needs_labels", False))
        self._fallback_restorer: Any = None
        self.selector = selector
        self.batch_size = 1 if (self.recurrent or self.labelled) else max(1, batch_size)
        self.reference = reference
        self.metrics = metrics
        self.on_result = on_result
        self.queue_size = queue_size
        #: frames (by index) that may be restored; others pass through even if blurred (context
        #: frames of a segment, decoded for the selector's window only)
        self.restorable = restorable or (lambda i: True)
        # most frames held between decision and emission before a partial batch is forced
        self.hold_limit = self.batch_size + self.future + 2

    # -- public --------------------------------------------------------------------------------
    def run(self, items: Iterator[Any], write_frame: Callable, write_packet: Callable) -> Summary:
        keep_frame_buffers()  # frame-sized buffers reused, not faulted in afresh every frame (io/memory.py)
        q_in: queue.Queue[Any] = queue.Queue(self.queue_size)
        q_out: queue.Queue[Any] = queue.Queue(self.queue_size)
        stop = threading.Event()
        reader_errors: list[BaseException] = []
        writer_errors: list[BaseException] = []
        reader = threading.Thread(target=_pump, args=(items, q_in, stop, reader_errors), daemon=True)
        writer = threading.Thread(
            target=self._write_loop, args=(q_out, write_frame, write_packet, stop, writer_errors), daemon=True
        )
        self._acc = SummaryAccumulator()
        self._frames_in = 0
        self._frames_written = [0]
        # against a reference, the figures are computed on their own thread, in order, while the
        # engine restores the next frames (the reference's decode and colour conversion too)
        metrics_errors: list[BaseException] = []
        measurer = None
        self._stop, self._metrics_errors = stop, metrics_errors
        self._metrics_q: queue.Queue[Any] | None = None
        if self.reference is not None and self.metrics is not None:
            self._metrics_q = queue.Queue(self.queue_size)
            measurer = threading.Thread(target=self._metrics_loop, args=(self._metrics_q, stop, metrics_errors),
                                        daemon=True)
        t0 = time.perf_counter()
        reader.start()
        writer.start()
        if measurer is not None:
            measurer.start()
        try:
            self._engine_loop(q_in, q_out, stop, writer_errors)
            self._put(q_out, _END, stop, writer_errors)
            writer.join()
            if measurer is not None:
                self._put(self._metrics_q, _END, stop, metrics_errors)
                measurer.join()
        except BaseException:
            stop.set()
            if metrics_errors:  # the reason the pipeline stopped
                raise metrics_errors[0] from None
            raise
        finally:
            stop.set()
            reader.join(timeout=5)
            writer.join(timeout=5)
            if measurer is not None:
                measurer.join(timeout=5)
        for errs in (writer_errors, metrics_errors, reader_errors):
            if errs:
                raise errs[0]
        s = self.summary = self._acc.summary(time.perf_counter() - t0)
        if self._frames_written[0] != self._frames_in or s.frames != self._frames_in:
            raise InternalError(
                f"frame accounting failed: {self._frames_in} in, {s.frames} emitted, "
                f"{self._frames_written[0]} written"
            )
        return s

    # -- threads -------------------------------------------------------------------------------
    @staticmethod
    def _put(q: "queue.Queue[Any]", item: Any, stop: threading.Event, errors: list) -> None:
        while True:
            if errors:
                raise errors[0]
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                if stop.is_set() and not errors:
                    raise InternalError("pipeline stopped")

    def _write_loop(self, q: "queue.Queue[Any]", write_frame: Callable, write_packet: Callable,
                    stop: threading.Event, errors: list) -> None:
        try:
            for item in _drain(q, stop):
                if isinstance(item, CopyPacket):
                    write_packet(item)
                else:
                    frame, out = item
                    write_frame(frame, out)
                    self._frames_written[0] += 1
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            stop.set()

    # -- the engine ----------------------------------------------------------------------------
    def _engine_loop(self, q_in: "queue.Queue[Any]", q_out: "queue.Queue[Any]", stop: threading.Event,
                     writer_errors: list) -> None:
        pending: deque[Any] = deque()  # _Stage or CopyPacket, in input order
        undecided: deque[_Stage] = deque()  # waiting for the selector
        decided: deque[_Stage] = deque()  # decided, waiting for their window (future frames)
        history: deque[_Stage] = deque()  # frames kept for windows (past and future neighbours)
        batch: list[_Stage] = []
        self._state: Any = None
        self._last_restored = -2
        sel = self.selector

        def emit() -> None:
            while pending and (isinstance(pending[0], CopyPacket) or pending[0].done):
                st = pending.popleft()
                if isinstance(st, CopyPacket):
                    self._put(q_out, st, stop, writer_errors)
                else:
                    self._finish(st)
                    self._put(q_out, (st.frame, st.out), stop, writer_errors)

        def on_decisions(decisions: list) -> None:
            for d in decisions:
                st = undecided.popleft()
                if st.frame.index != d.index:
                    raise InternalError(f"selector answered frame {d.index}, expected {st.frame.index}")
                st.score, st.blurred = d.score, bool(d.blurred)
                decided.append(st)
                history.append(st)

        def schedule(end: bool) -> None:
            """Give every decided frame whose window is complete to the batch (or pass it)."""
            last = history[-1].frame.index if (end and history) else None
            while decided:
                st = decided[0]
                t = st.frame.index
                need = max(t + self.future, self.past - t)  # highest index the window reads
                if not end and (not history or history[-1].frame.index < need):
                    break
                decided.popleft()
                if not st.blurred or self.identity or not self.restorable(t):
                    st.done = True  # passed through (a recurrent method restarts after it: _run_batch)
                else:
                    lim = last if last is not None else need
                    by_index = {h.frame.index: h for h in history}
                    if self.labelled:  # the frame and the neighbours the method picks by their labels
                        labels = {i: by_index[i].blurred for i in range(t - self.past, min(lim, t + self.future) + 1)
                                  if i in by_index}
                        picked = self.restorer.method.pick(t, labels)
                        window: Any = (st.frame.rgb(), [by_index[i].frame.rgb() for i in picked])
                    else:
                        window = [by_index[reflect(t + k, lim)].frame.rgb() for k in range(-self.past, self.future + 1)]
                    batch.append((st, window))
                    if len(batch) >= self.batch_size:
                        self._run_batch(batch)
                # drop history no window will need again
                while history and history[0].frame.index < t + 1 - self.past:
                    history.popleft()
            held = sum(1 for p in pending if not isinstance(p, CopyPacket) and not p.done)
            if batch and (end or held > self.hold_limit):
                self._run_batch(batch)

        while True:
            try:
                item = q_in.get(timeout=0.1)
            except queue.Empty:
                if writer_errors:
                    raise writer_errors[0]
                continue
            if item is _END:
                break
            if isinstance(item, CopyPacket):
                pending.append(item)
                emit()
                continue
            self._frames_in += 1
            st = _Stage(item)
            pending.append(st)
            undecided.append(st)
            on_decisions(sel.push(item.index, selector_input(sel, item)))
            schedule(end=False)
            emit()
        on_decisions(sel.flush())
        if undecided:
            raise InternalError(f"selector left {len(undecided)} frames undecided")
        schedule(end=True)
        if batch:
            self._run_batch(batch)
        emit()
        if pending:
            raise InternalError(f"{len(pending)} items were never emitted")

    def _run_batch(self, batch: list) -> None:
        stages = [st for st, _ in batch]
        if self.recurrent and stages[0].frame.index != self._last_restored + 1:
            self._state = None  # a frame was passed through: the chain of restored frames is broken
        t0 = time.perf_counter()
        if self.labelled:
            fallback = self._fallback()
            outs = [self.restorer.method.restore_frame(frame, picked, fallback) for _, (frame, picked) in batch]
        else:
            outs, self._state = self.restorer.restore([w for _, w in batch], self._state)
        ms = (time.perf_counter() - t0) * 1000 / len(stages)
        for st, out in zip(stages, outs):
            st.out, st.ms, st.done = out, ms, True
        self._last_restored = stages[-1].frame.index
        batch.clear()

    def _fallback(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """A labelled method's single-frame fallback, run as any method is (a copy of the restorer
        with the fallback module in place of the method); None: the input itself."""
        fb = getattr(self.restorer.method, "fallback", None)
        if fb is None:
            return None
        if self._fallback_restorer is None:
            r = copy.copy(self.restorer)
            r.method = fb
            self._fallback_restorer = r
        r = self._fallback_restorer
        return lambda frame: r.restore([[frame]], None)[0][0]

    def _finish(self, st: _Stage) -> None:
        """Account for an emitted frame: metrics against the reference (on the metrics thread),
        the result callback."""
        r = FrameResult(st.frame.index, st.frame.time, st.score, st.blurred, st.out is not None, round(st.ms, 3))
        if self._metrics_q is not None:
            self._put(self._metrics_q, (r, st.frame, st.out), self._stop, self._metrics_errors)
        else:
            self._account(r)

    def _account(self, r: FrameResult) -> None:
        self._acc.add(r)
        if self.on_result is not None:
            self.on_result(r)

    def _metrics_loop(self, q: "queue.Queue[Any]", stop: threading.Event, errors: list) -> None:
        """The metrics thread: each frame's figures against its reference frame, in order."""
        try:
            for r, frame, out in _drain(q, stop):
                ref = next(self.reference, None)  # type: ignore[arg-type]
                if ref is None:
                    raise InputError(f"reference has fewer frames than the input (ended before frame {frame.index})")
                r.psnr_input, r.ssim_input, r.psnr, r.ssim = self.metrics.compare(frame.rgb(), out, ref)  # type: ignore[union-attr]
                self._account(r)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            stop.set()
