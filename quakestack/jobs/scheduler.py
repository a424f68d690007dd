"""The scheduler one service replica runs for one kind of job: it claims, by lease, the jobs that are work
right now (queued ones it has room for, running ones whose supervisor let its lease lapse), launches their
workers through an executor, re-attaches to workers that are still running (found by their heartbeats),
and reschedules lost ones from their last checkpoint.

It keeps in memory only the jobs it supervises. Every replica answers Get, List and Watch for every job
by reading the metadata store per call; nothing is folded in memory, so a replica costs the same after a
hundred jobs and after a million, and a restarted one answers at once. A replica that loses a lease stops
supervising that job at once; the worker itself is fenced by the attempt number in the control record.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil
import structlog

from quakestack.auth import current_identity
from quakestack.errors import FailedPrecondition, QuakestackError, Unavailable
from quakestack.jobs.executor import Executor, Handle
from quakestack.jobs.heartbeat import HeartbeatWatch
from quakestack.jobs.spec import JobRecord
from quakestack.jobs.state import TERMINAL, JobState
from quakestack.metadata.jobs import EVENTS_PAGE, JobFilter, JobStore, JobView
from quakestack.quotas import check_queued_jobs

log = structlog.get_logger()
WATCH_POLL_S = 0.25  # how late a watcher sees an event another process wrote (this one's at once)
ORPHANS_PER_TICK = 64


@dataclass
class Supervised:
    """A job this replica holds the lease of: the worker it runs or re-attached to, and its slots."""

    view: JobView
    token: int
    renewed: float
    watch: HeartbeatWatch
    handle: Handle | None = None
    slots: list[int] = field(default_factory=list)
    lost_attempt: int = 0
    cursor: int = 0  # the last event counted into this replica's metrics

    @property
    def job_id(self) -> str:
        return self.view.job_id


@dataclass(frozen=True)
class SchedulerConfig:
    kind: str
    capacity: int
    lease_ttl_s: float
    lost_after_s: float
    max_retries: int
    tick_s: float = 0.5
    owner: str = field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}")


class Scheduler:
    def __init__(self, jobs: JobStore, executor: Executor, config: SchedulerConfig,
                 worker_env: Callable[[JobView, list[int]], dict[str, str]],
                 slots_needed: Callable[[JobView], int] = lambda v: 1,
                 on_event: Callable[[JobView, dict[str, Any]], None] | None = None):
        self.jobs = jobs
        self.executor = executor
        self.config = config
        self.worker_env = worker_env
        self.slots_needed = slots_needed
        self.on_event = on_event
        self.supervised: dict[str, Supervised] = {}
        self.lock = threading.RLock()
        self.free_slots = list(range(config.capacity))
        self.stopping = threading.Event()
        self.wakeup = threading.Event()
        self._db_ok = True
        self._thread = threading.Thread(target=self._loop, name=f"{config.kind}-scheduler", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def shutdown(self, *, stop_workers: bool = False) -> None:
        """Stop scheduling and give up our leases; workers keep running (another replica, or the next
        start of this one, re-attaches to them) unless stop_workers."""
        self.stopping.set()
        self.wakeup.set()
        if self._thread.is_alive():
            self._thread.join(10)
        with self.lock:
            owned = list(self.supervised.values())
            self.supervised.clear()
        for sup in owned:
            if stop_workers and sup.handle is not None:
                self.executor.cancel(sup.handle)
                self.executor.reap(sup.handle)
            with contextlib.suppress(QuakestackError):
                self.jobs.release(sup.job_id, self.config.owner, sup.token)
        with self.jobs.changed:
            self.jobs.changed.notify_all()

    # -- requests (any replica) ---------------------------------------------------------------
    def caller_within_quota(self) -> str:
        """The caller's token id, once its queued-jobs quota (counted over this kind's unfinished jobs) allows one
        more; RESOURCE_EXHAUSTED otherwise. Every kind stamps it on the spec as the job's owner."""
        owner = current_identity()
        check_queued_jobs(owner, self.jobs.count_active(self.config.kind, owner.id))
        return owner.id

    def create(self, record: JobRecord, control: dict[str, Any]) -> JobView:
        """Durable before it is answered: the record, the control record and the QUEUED event, in one transaction."""
        view = self.jobs.create(record, control, {"type": "state", "state": JobState.QUEUED.value,
                                                  "message": "created"})
        self.wakeup.set()
        return view

    def get(self, job_id: str) -> JobView:
        return self.jobs.get(job_id, self.config.kind)

    def page(self, where: JobFilter, after: tuple[float, str] | None, size: int) -> tuple[list[JobView], bool]:
        return self.jobs.page(self.config.kind, where, after, size)

    def append(self, job_id: str, event: dict[str, Any]) -> dict[str, Any] | None:
        entry = self.jobs.append(job_id, event)
        self.wakeup.set()
        return entry

    def update_control(self, job_id: str, **changes: Any) -> dict[str, Any]:
        control = self.jobs.update_control(job_id, **changes)
        self.wakeup.set()
        return control

    def cancel(self, job_id: str) -> JobView:
        request_cancel(self.jobs, job_id, self.config.kind)
        self.wakeup.set()
        return self.get(job_id)

    def subscribe(self, job_id: str, is_active: Callable[[], bool] = lambda: True,
                  after: int = 0) -> Iterator[dict[str, Any]]:
        """The job's events after `after` (from the first by default), then live ones as they are written;
        ends after a terminal state, when the caller goes away, or when this service stops."""
        self.get(job_id)  # NOT_FOUND before the stream starts
        cursor, last = after, None
        while True:
            batch = self.jobs.events(job_id, after=cursor)
            if batch:
                yield from batch
                cursor, last = batch[-1]["sequence"], batch[-1]
                if len(batch) == EVENTS_PAGE or not _terminal(last):
                    continue
                return
            if last is None:  # nothing after the caller's cursor: a job that ended before it stays ended
                view = self.jobs.find(job_id)
                if view is None or (view.terminal and int(view.status["last_sequence"]) <= cursor):
                    return
            if self.stopping.is_set() or not is_active():
                return
            with self.jobs.changed:
                self.jobs.changed.wait(WATCH_POLL_S)

    def watch(self, job_id: str, is_active: Callable[[], bool] = lambda: True) -> Iterator[JobView]:
        """The job as it is now, then again after every change, until it ends (Watch RPCs of whole jobs)."""
        view = self.get(job_id)
        yield view
        if view.terminal:
            return
        for _ in self.subscribe(job_id, is_active, after=int(view.status["last_sequence"])):
            yield self.get(job_id)

    # -- the loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.tick()
                if not self._db_ok:
                    log.info("metadata database reachable again: scheduling resumes", kind=self.config.kind)
                self._db_ok = True
            except Unavailable as exc:
                if self._db_ok:
                    log.warning("metadata database or storage unreachable: scheduling paused",
                                kind=self.config.kind, error=str(exc))
                self._db_ok = False
                with self.lock:
                    for sup in self.supervised.values():
                        sup.watch.storage_unreachable()
            except Exception:  # noqa: BLE001 - the scheduler must survive any one bad job
                log.exception("scheduler tick failed", kind=self.config.kind)
            self.wakeup.wait(self.config.tick_s)
            self.wakeup.clear()

    def tick(self) -> None:
        """Supervise what we hold, then take what is ours to do: two indexed queries when idle."""
        with self.lock:
            held = list(self.supervised.values())
        fresh = self.jobs.many(s.job_id for s in held)
        for sup in held:
            if self.stopping.is_set():
                return
            view = fresh.get(sup.job_id)
            if view is None:  # deleted under us
                self._drop(sup)
                continue
            self._observe(sup, view)
            self._supervise(sup)
        for view in self.jobs.claim(self.config.kind, self.config.owner, self.config.lease_ttl_s,
                                    (JobState.RUNNING.value, JobState.STOPPING.value), ORPHANS_PER_TICK):
            self._hold(view)
        if self.free_slots and not self.stopping.is_set():
            for view in self.jobs.claim(self.config.kind, self.config.owner, self.config.lease_ttl_s,
                                        (JobState.QUEUED.value,), len(self.free_slots)):
                if self.slots_needed(view) > len(self.free_slots) and not self._worker_running(view):
                    self.jobs.release(view.job_id, self.config.owner, view.lease_token)
                    continue
                self._hold(view)

    def _hold(self, view: JobView) -> None:
        with self.lock:
            mine = self.supervised.get(view.job_id)
        if mine is not None:  # our own lease lapsed (the database was away) and we took it again: same worker
            mine.token, mine.renewed, mine.view = view.lease_token, time.monotonic(), view
            return
        sup = Supervised(view=view, token=view.lease_token, renewed=time.monotonic(),
                         watch=HeartbeatWatch(self.config.lost_after_s),
                         cursor=int(view.status["last_sequence"]))
        with self.lock:
            self.supervised[view.job_id] = sup
        log.info("job claimed", job_id=view.job_id, token=view.lease_token, state=view.state.value)
        self._supervise(sup)

    def _observe(self, sup: Supervised, view: JobView) -> None:
        """Take the stored view; count the events written since our last look into this replica's metrics."""
        sup.view = view
        last = int(view.status["last_sequence"])
        if self.on_event is not None and last > sup.cursor:
            for event in self.jobs.events(sup.job_id, after=sup.cursor):
                self.on_event(view, event)
                sup.cursor = int(event["sequence"])
        sup.cursor = max(sup.cursor, last)

    def _refresh(self, sup: Supervised) -> None:
        self._observe(sup, self.jobs.get(sup.job_id))

    def _worker_running(self, view: JobView) -> bool:
        """A worker of the current attempt is still beating (launched by a replica that died)."""
        attempt = int(view.control.get("attempt", 0))
        if not attempt:
            return False
        beat = self.jobs.heartbeat(view.job_id)
        return bool(beat and int(beat.get("attempt", -1)) == attempt and not beat.get("exited"))

    def _supervise(self, sup: Supervised) -> None:
        if time.monotonic() - sup.renewed > self.config.lease_ttl_s / 3:
            if not self.jobs.renew(sup.job_id, self.config.owner, sup.token, self.config.lease_ttl_s):
                log.warning("lease lost: no longer supervising", job_id=sup.job_id)
                self._drop(sup)
                return
            sup.renewed = time.monotonic()
        if sup.view.terminal:
            self._finish(sup)
            return
        if sup.handle is None:
            self._adopt_or_launch(sup)
            return
        alive = self.executor.alive(sup.handle)
        if alive is None:  # only heartbeats can tell (a pod, another machine)
            sup.watch.observe(self.jobs.heartbeat(sup.job_id))
            if sup.watch.lost:
                self.executor.cancel(sup.handle)
                self._lost(sup, f"no heartbeat for {sup.watch.stale_for():.0f}s")
            return
        if alive:
            return
        code = self.executor.reap(sup.handle)
        self._refresh(sup)  # the worker's last events were written before it exited
        if sup.view.terminal:
            self._finish(sup)
        elif sup.view.control.get("cancel"):
            self.append(sup.job_id, {"type": "state", "state": JobState.CANCELLED.value, "message": "cancelled"})
            self._finish(sup)
        else:
            self._lost(sup, f"worker exited with code {code}")

    def _adopt_or_launch(self, sup: Supervised) -> None:
        view = sup.view
        attempt = int(view.control.get("attempt", 0))
        beat = self.jobs.heartbeat(view.job_id) if attempt else None
        if (beat and int(beat.get("attempt", -1)) == attempt and not beat.get("exited")
                and attempt != sup.lost_attempt):
            handle = self.executor.attach(beat, view.record)
            if handle is None or self.executor.alive(handle) is not False:
                sup.handle = handle or Handle(view.job_id, attempt, extra={"remote": True})
                sup.slots = self._take_slots(view, list(beat.get("slots", [])))
                sup.watch.observe(beat)
                log.info("re-attached to a running worker", job_id=view.job_id, attempt=attempt, pid=beat.get("pid"))
                return
        if view.state is JobState.QUEUED:
            if view.control.get("cancel"):
                self.append(view.job_id, {"type": "state", "state": JobState.CANCELLED.value,
                                          "message": "cancelled"})
                self._refresh(sup)
                return
            if view.control.get("stop"):
                self.append(view.job_id, {"type": "state", "state": JobState.STOPPED.value,
                                          "message": "stopped before it started"})
                self._refresh(sup)
                return
            self._launch(sup, attempt + 1)
            return
        if sup.watch.stale_for() > min(self.config.lost_after_s, 3 * self.config.lease_ttl_s) or attempt == 0:
            if beat and int(beat.get("attempt", -1)) == attempt and died_with_its_machine(beat):
                self.jobs.interrupt(view.job_id, attempt, "the machine restarted")  # not the job's fault
                self._refresh(sup)
                return
            self._lost(sup, "worker gone")  # RUNNING in the store but no worker of its attempt beats

    def _take_slots(self, view: JobView, wanted: list[int]) -> list[int]:
        with self.lock:
            taken = [s for s in wanted if s in self.free_slots][: self.slots_needed(view)]
            while len(taken) < self.slots_needed(view) and self.free_slots:
                candidate = next(s for s in self.free_slots if s not in taken)
                taken.append(candidate)
            for s in taken:
                if s in self.free_slots:
                    self.free_slots.remove(s)
            return taken

    def _launch(self, sup: Supervised, attempt: int) -> None:
        if self.slots_needed(sup.view) > len(self.free_slots):
            return  # wait for a slot (we keep the lease: the job is ours and next in line)
        sup.slots = self._take_slots(sup.view, [])
        self.update_control(sup.job_id, attempt=attempt, lease_token=sup.token)
        self._refresh(sup)
        sup.handle = self.executor.launch(sup.view.record, attempt, self.worker_env(sup.view, sup.slots))
        sup.watch.reset()

    def _lost(self, sup: Supervised, reason: str) -> None:
        sup.lost_attempt = int(sup.view.control.get("attempt", 0))
        self._free(sup)
        retries = int(sup.view.status.get("retries", 0))
        if retries < self.config.max_retries:
            self.append(sup.job_id, {"type": "state", "state": JobState.QUEUED.value, "retry": retries + 1,
                                     "message": f"{reason}; retry {retries + 1} of {self.config.max_retries} "
                                                "from the last checkpoint"})
            self._refresh(sup)
        else:
            self.append(sup.job_id, {"type": "state", "state": JobState.FAILED.value,
                                     "message": f"{reason} ({retries + 1} times)"})
            self._refresh(sup)
            self._finish(sup)
        log.warning("worker lost", job_id=sup.job_id, reason=reason, retries=retries)

    def _free(self, sup: Supervised) -> None:
        with self.lock:
            self.free_slots.extend(s for s in sup.slots if s not in self.free_slots)
            self.free_slots.sort()
        sup.slots, sup.handle = [], None

    def _finish(self, sup: Supervised) -> None:
        if sup.handle is not None:
            self.executor.reap(sup.handle)  # it exits right after its last event; a worker never
            self.executor.cancel(sup.handle)  # outlives its job
        self._free(sup)
        with self.lock:
            self.supervised.pop(sup.job_id, None)
        self.jobs.release(sup.job_id, self.config.owner, sup.token)
        self.wakeup.set()

    def _drop(self, sup: Supervised) -> None:
        self._free(sup)
        with self.lock:
            self.supervised.pop(sup.job_id, None)


def request_cancel(jobs: JobStore, job_id: str, kind: str) -> None:
    """The worker ends the job CANCELLED within a heartbeat; a queued job (no worker yet) is ended here, and a
    worker starting meanwhile sees the flag and leaves."""
    view = jobs.get(job_id, kind)
    if view.terminal:
        raise FailedPrecondition(f"{kind} job {job_id} is already {view.state.value}")
    jobs.update_control(job_id, cancel=True)
    if view.state is JobState.QUEUED:
        jobs.append(job_id, {"type": "state", "state": JobState.CANCELLED.value, "message": "cancelled"})


def died_with_its_machine(beat: dict[str, Any]) -> bool:
    """A worker of this machine that started before the machine's last boot: the restart ended it."""
    return beat.get("host") == socket.gethostname() and float(beat.get("pid_start") or 0.0) < psutil.boot_time()


def _terminal(event: dict[str, Any]) -> bool:
    return event.get("type") == "state" and JobState(event["state"]) in TERMINAL
