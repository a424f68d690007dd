"""Dynamic batching (Triton-style): concurrent requests for one model merged into batches.

A batch closes when it holds ``max_batch_size`` windows or when its oldest request has waited
``max_queue_delay_s``. A request may hold any number of windows: it is split across batches and
merged with others, and its outputs are reassembled in order. The queue is bounded (full ->
RESOURCE_EXHAUSTED at once); a request whose deadline passed before compute is dropped with
DEADLINE_EXCEEDED. ``instances`` executor threads share the queue: while one computes, the next
forms its batch.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from quakestack import metrics
from quakestack.errors import DeadlineExceeded, ResourceExhausted, Unavailable

RunFn = Callable[[np.ndarray, dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(eq=False)  # identity: the queue's remove() must not compare the windows (numpy arrays) of two requests
class _Request:
    """One submitted request; ``taken`` windows have been put in batches, ``parts`` came back."""

    x: np.ndarray
    extras: dict[str, np.ndarray]
    deadline: float | None
    enqueued: float
    future: Future = field(default_factory=Future)
    taken: int = 0
    done: int = 0
    parts: list[tuple[int, dict[str, np.ndarray]]] = field(default_factory=list)
    failed: bool = False

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


@dataclass
class BatcherStats:
    batches: int = 0
    windows: int = 0


class DynamicBatcher:
    """Queue + executor threads for one loaded model."""

    def __init__(self, name: str, run: RunFn, *, max_batch_size: int = 32, max_queue_delay_s: float = 0.002,
                 instances: int = 1, max_queue_size: int = 1024):
        self.name = name
        self._run = run
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_queue_delay_s = max(0.0, float(max_queue_delay_s))
        self.max_queue_size = max(1, int(max_queue_size))
        self.stats = BatcherStats()
        self.last_used = time.time()
        self._queue: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._form_lock = threading.Lock()
        self._closing = False
        self._in_flight = 0
        self._pending = 0  # windows queued and not yet in a batch
        self._threads = [threading.Thread(target=self._loop, name=f"batcher-{name}-{i}", daemon=True)
                         for i in range(max(1, int(instances)))]
        for t in self._threads:
            t.start()

    # -- client side --------------------------------------------------------------------------
    def submit(self, x: np.ndarray, extras: dict[str, np.ndarray] | None = None,
               deadline: float | None = None) -> Future:
        """Queue windows [N, C, L]; the future resolves to outputs for exactly these N windows."""
        request = _Request(x, extras or {}, deadline, time.monotonic())
        with self._cond:
            if self._closing:
                raise Unavailable(f"model {self.name!r} is being unloaded")
            if len(self._queue) >= self.max_queue_size:
                metrics.INFERENCE_REQUESTS.labels(self.name, "queue_full").inc()
                raise ResourceExhausted(f"queue of model {self.name!r} is full ({self.max_queue_size} requests)")
            if request.n == 0:
                request.future.set_result({})
                return request.future
            self._queue.append(request)
            self._in_flight += 1
            self._pending += request.n
            self.last_used = time.time()
            # wake the executor only when it must act: the first request starts the delay, a full batch ends
            # it. Every other request would cost a thread switch for nothing (the executor sleeps until the delay).
            if len(self._queue) == 1 or self._pending >= self.max_batch_size:
                self._cond.notify()
        return request.future

    def cancel(self, future: Future) -> None:
        """Drop a request whose caller gave up (deadline passed while waiting)."""
        with self._cond:
            for request in self._queue:
                if request.future is future and request.taken == 0:
                    self._queue.remove(request)
                    self._pending -= request.n
                    self._fail(request, DeadlineExceeded("deadline exceeded while queued"), "deadline")
                    return

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._in_flight > 0

    def close(self, drain: bool = True, timeout_s: float = 30.0) -> None:
        """Stop accepting; with ``drain`` finish what is queued, otherwise fail it; join executors."""
        with self._cond:
            self._closing = True
            if not drain:
                while self._queue:
                    request = self._queue.popleft()
                    self._pending -= request.n - request.taken
                    self._fail(request, Unavailable(f"model {self.name!r} was unloaded"), "unloaded")
            self._cond.notify_all()
        end = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))

    # -- executor side ------------------------------------------------------------------------
    def _fail(self, request: _Request, exc: Exception, outcome: str) -> None:
        if not request.failed and not request.future.done():
            request.failed = True
            self._in_flight -= 1
            metrics.INFERENCE_REQUESTS.labels(self.name, outcome).inc()
            request.future.set_exception(exc)

    def _take_batch(self) -> list[tuple[_Request, int, int]] | None:
        """Wait for work, let the batch fill up to the delay, take up to max_batch_size windows."""
        with self._cond:
            while True:
                while not self._queue:
                    if self._closing:
                        return None
                    self._cond.wait(0.5)
                # the delay runs from the present head: a head dropped while waiting (its deadline) must not
                # close the next request's batch early
                while self._queue and self._pending < self.max_batch_size and not self._closing:
                    remaining = self._queue[0].enqueued + self.max_queue_delay_s - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if self._queue or self._closing:
                    break
            now = time.monotonic()
            batch: list[tuple[_Request, int, int]] = []
            room = self.max_batch_size
            while self._queue and room > 0:
                request = self._queue[0]
                if request.failed:
                    self._queue.popleft()
                    self._pending -= request.n - request.taken
                    continue
                if request.taken == 0 and request.deadline is not None and now > request.deadline:
                    self._queue.popleft()
                    self._pending -= request.n
                    self._fail(request, DeadlineExceeded("deadline exceeded before the model ran"), "deadline")
                    continue
                if request.taken == 0:
                    metrics.INFERENCE_QUEUE_SECONDS.labels(self.name).observe(now - request.enqueued)
                k = min(room, request.n - request.taken)
                batch.append((request, request.taken, request.taken + k))
                request.taken += k
                self._pending -= k
                room -= k
                if request.taken == request.n:
                    self._queue.popleft()
            return batch

    def _loop(self) -> None:
        while True:
            with self._form_lock:
                batch = self._take_batch()
            if batch is None:
                return
            if batch:
                self._execute(batch)

    def _execute(self, batch: list[tuple[_Request, int, int]]) -> None:
        xs = [r.x[a:b] for r, a, b in batch]
        x = xs[0] if len(xs) == 1 else np.concatenate(xs)
        extras: dict[str, np.ndarray] = {}
        for key in batch[0][0].extras:
            parts = [r.extras[key][a:b] for r, a, b in batch]
            extras[key] = parts[0] if len(parts) == 1 else np.concatenate(parts)
        start = time.perf_counter()
        try:
            out = self._run(x, extras)
        except Exception as exc:  # noqa: BLE001 - the error goes back to every request of the batch
            with self._cond:
                for r, _, _ in batch:
                    self._fail(r, exc, "error")
            return
        metrics.INFERENCE_COMPUTE_SECONDS.labels(self.name).observe(time.perf_counter() - start)
        metrics.INFERENCE_BATCH_SIZE.labels(self.name).observe(x.shape[0])
        metrics.INFERENCE_WINDOWS.labels(self.name).inc(x.shape[0])
        offset = 0
        with self._cond:
            self.stats.batches += 1
            self.stats.windows += x.shape[0]
            for r, a, b in batch:
                n = b - a
                r.parts.append((a, {k: v[offset:offset + n] for k, v in out.items()}))
                offset += n
                r.done += n
                if r.done == r.n and not r.failed:
                    self._complete(r)

    def _complete(self, request: _Request) -> None:
        self._in_flight -= 1
        request.failed = False
        parts = sorted(request.parts, key=lambda p: p[0])
        result = parts[0][1] if len(parts) == 1 else {k: np.concatenate([p[1][k] for p in parts])
                                                       for k in parts[0][1]}
        metrics.INFERENCE_REQUESTS.labels(self.name, "ok").inc()
        request.future.set_result(result)
