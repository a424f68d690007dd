"""The scheduler one service replica runs: it sees every job of its kind in storage, claims the ones it
supervises by lease, launches their workers through an executor, re-attaches to workers that are
still running (found by their heartbeats), and reschedules lost ones from their last checkpoint.

Every replica follows every job's event log (so any replica answers Get/List/Watch for any job), but
only the lease holder launches, supervises and reschedules. A replica that loses a lease stops
supervising that job at once; the worker itself is fenced by the attempt number in the control record.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog

from quakestack.auth import current_identity
from quakestack.errors import NotFound, QuakestackError, Unavailable
from quakestack.jobs.control import create_control, read_control, update_control
from quakestack.jobs.events import EventLog
from quakestack.jobs.executor import Executor, Handle
from quakestack.jobs.heartbeat import HeartbeatWatch, read_heartbeat
from quakestack.jobs.lease import Lease, Leases
from quakestack.jobs.spec import JobRecord, write_record
from quakestack.jobs.state import TERMINAL, JobState
from quakestack.jobs.status import apply_event, initial_status
from quakestack.layout import JOBS_PREFIX, spec_key
from quakestack.quotas import check_queued_jobs
from quakestack.storage import ObjectStore

log = structlog.get_logger()
DISCOVER_EVERY_S = 2.0


@dataclass
class JobView:
    """What this replica knows of one job: its record, folded status, accepted events, control."""

    record: JobRecord
    status: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    control: dict[str, Any] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)
    lease: Lease | None = None
    lease_renewed: float = 0.0
    handle: Handle | None = None
    slots: list[int] = field(default_factory=list)
    watch: HeartbeatWatch | None = None
    lost_attempt: int = 0
    control_read: float = 0.0

    @property
    def job_id(self) -> str:
        return self.record.job_id

    @property
    def state(self) -> JobState:
        return JobState(self.status["state"])

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


@dataclass(frozen=True)
class SchedulerConfig:
    kind: str
    capacity: int
    lease_ttl_s: float
    lost_after_s: float
    max_retries: int
    tick_s: float = 0.5
    control_every_s: float = 2.0  # other replicas' control changes are seen this late (ours at once)
    owner: str = field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}")


class Scheduler:
    def __init__(self, store: ObjectStore, executor: Executor, config: SchedulerConfig,
                 worker_env: Callable[[JobView], dict[str, str]], slots_needed: Callable[[JobView], int] = lambda v: 1,
                 on_event: Callable[[JobView, dict[str, Any]], None] | None = None,
                 migrate: Callable[[str], JobRecord | None] | None = None):
        self.store = store
        self.executor = executor
        self.config = config
        self.worker_env = worker_env
        self.slots_needed = slots_needed
        self.on_event = on_event
        self.migrate = migrate  # turns an older version's job of our kind into a runtime job (jobs.migrate)
        self.leases = Leases(store, config.owner, config.lease_ttl_s)
        self.views: dict[str, JobView] = {}
        self.logs: dict[str, EventLog] = {}
        self.foreign: set[str] = set()  # job ids of other kinds (or unreadable records): not looked at again
        self.lock = threading.RLock()
        self.free_slots = list(range(config.capacity))
        self.stopping = threading.Event()
        self.wakeup = threading.Event()
        self._last_discover = 0.0
        self._storage_ok = True
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
            owned = [v for v in self.views.values() if v.lease is not None]
        for view in owned:
            if stop_workers and view.handle is not None:
                self.executor.cancel(view.handle)
                self.executor.reap(view.handle)
            with contextlib.suppress(QuakestackError):
                self.leases.release(view.lease)
        with self.lock:
            for view in self.views.values():
                with view.cond:
                    view.cond.notify_all()

    # -- requests (any replica) ---------------------------------------------------------------
    def caller_within_quota(self) -> str:
        """The caller's token id, once its queued-jobs quota (counted over this kind's unfinished jobs) allows one
        more; RESOURCE_EXHAUSTED otherwise. Every kind stamps it on the spec as the job's owner."""
        owner = current_identity()
        check_queued_jobs(owner, sum(1 for view in self.list() if view.record.spec.get("owner") == owner.id and
                                     not view.terminal))
        return owner.id

    def create(self, record: JobRecord, control: dict[str, Any]) -> JobView:
        """Durable before it is answered: job.json, the control record and the QUEUED event."""
        write_record(self.store, record)
        create_control(self.store, record.job_id, **control)
        view = JobView(record=record, status=initial_status(record.create_time))
        with self.lock:
            self.views[record.job_id] = view
            self.logs[record.job_id] = EventLog(self.store, record.job_id)
        self.append(view, {"type": "state", "state": JobState.QUEUED.value, "message": "created"})
        view.control = read_control(self.store, record.job_id)
        self.wakeup.set()
        return view

    def get(self, job_id: str) -> JobView:
        with self.lock:
            view = self.views.get(job_id)
        if view is not None:
            return view
        view = self._load(job_id)  # created by another replica since our last look
        if view is None:
            raise NotFound(f"{self.config.kind} job {job_id!r} does not exist")
        return view

    def list(self) -> list[JobView]:
        self.discover()
        with self.lock:
            return sorted(self.views.values(), key=lambda v: v.record.create_time, reverse=True)

    def append(self, view: JobView, event: dict[str, Any]) -> None:
        """Write an event to the job's log, then fold everything up to it (ours and others')."""
        self.logs[view.job_id].append(event)
        self.refresh(view)

    def update_control(self, view: JobView, **changes: Any) -> None:
        view.control = update_control(self.store, view.job_id, **changes)
        view.control_read = time.monotonic()
        self.wakeup.set()

    def subscribe(self, job_id: str, is_active: Callable[[], bool] = lambda: True) -> Iterator[dict[str, Any]]:
        """The job's accepted events from the first; live ones as they come; ends with a terminal state."""
        view = self.get(job_id)
        cursor = 0
        while True:
            with view.cond:
                while cursor >= len(view.events) and not self.stopping.is_set():
                    if _ends_history(view.events):
                        return
                    view.cond.wait(timeout=0.5)
                    if not is_active():
                        return
                    if not self._following(view):
                        self.refresh(view)  # a job nobody here follows (terminal) may be resumed elsewhere
                batch = view.events[cursor:]
            yield from batch
            cursor += len(batch)
            if self.stopping.is_set() or _ends_history(batch):
                return

    # -- following storage ----------------------------------------------------------------------
    def _following(self, view: JobView) -> bool:
        return not view.terminal or view.lease is not None

    def discover(self) -> None:
        """Find jobs created by any replica (or before a restart)."""
        self._last_discover = time.monotonic()
        for job_id in self.store.list_dirs(JOBS_PREFIX):
            with self.lock:
                known = job_id in self.views or job_id in self.foreign
            if not known:
                self._load(job_id)

    def _load(self, job_id: str) -> JobView | None:
        try:
            raw = self.store.get_json(spec_key(job_id))
        except NotFound:
            return None
        except QuakestackError as exc:  # a malformed key or a record of another era: not ours
            if isinstance(exc, Unavailable):
                raise
            self.foreign.add(job_id)
            return None
        if (isinstance(raw, dict) and raw.get("kind") == self.config.kind and "spec" not in raw
                and self.migrate is not None):
            try:
                migrated = self.migrate(job_id)
            except Unavailable:
                raise
            except (QuakestackError, ValueError, KeyError, TypeError) as exc:
                log.warning("an older version's job could not be migrated", job_id=job_id, error=str(exc))
                migrated = None
            raw = migrated.to_dict() if migrated is not None else raw
        if not isinstance(raw, dict) or raw.get("kind") != self.config.kind or "spec" not in raw:
            self.foreign.add(job_id)
            return None
        record = JobRecord.from_dict(raw)
        view = JobView(record=record, status=initial_status(record.create_time))
        with self.lock:
            if job_id in self.views:
                return self.views[job_id]
            self.views[job_id] = view
            self.logs[job_id] = EventLog(self.store, job_id)
        self.refresh(view)
        return view

    def refresh(self, view: JobView) -> None:
        """Fold the events written since our last look; re-read the control record."""
        new = self.logs[view.job_id].read(after=view.status["last_sequence"])
        with view.cond:
            for event in new:
                if int(event["sequence"]) <= view.status["last_sequence"]:
                    continue
                if apply_event(view.status, event):
                    view.events.append(event)
                    if self.on_event is not None:
                        self.on_event(view, event)
            view.cond.notify_all()
        stale = time.monotonic() - view.control_read > self.config.control_every_s
        if not view.control or (not view.terminal and stale):
            view.control = read_control(self.store, view.job_id)
            view.control_read = time.monotonic()

    # -- the loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.tick()
                if not self._storage_ok:
                    log.info("storage reachable again: scheduling resumes", kind=self.config.kind)
                self._storage_ok = True
            except Unavailable as exc:
                if self._storage_ok:
                    log.warning("storage unreachable: scheduling paused", kind=self.config.kind, error=str(exc))
                self._storage_ok = False
                with self.lock:
                    for view in self.views.values():
                        if view.watch is not None:
                            view.watch.storage_unreachable()
            except Exception:  # noqa: BLE001 - the scheduler must survive any one bad job
                log.exception("scheduler tick failed", kind=self.config.kind)
            self.wakeup.wait(self.config.tick_s)
            self.wakeup.clear()

    def tick(self) -> None:
        if time.monotonic() - self._last_discover > DISCOVER_EVERY_S:
            self.discover()
        with self.lock:
            views = sorted(self.views.values(), key=lambda v: v.record.create_time)
        for view in views:
            if self.stopping.is_set():
                return
            if self._following(view):
                self.refresh(view)
            if view.lease is not None:
                self._supervise(view)
            elif not view.terminal:
                self._try_claim(view)

    def _used_slots(self) -> int:
        return self.config.capacity - len(self.free_slots)

    def _try_claim(self, view: JobView) -> None:
        current = self.leases.read(view.job_id)
        if current is not None and not current.expired and current.owner != self.config.owner:
            return
        if (view.state is JobState.QUEUED and self.slots_needed(view) > len(self.free_slots)
                and not self._worker_running(view)):
            return
        lease = self.leases.acquire(view.job_id)
        if lease is None:
            return
        view.lease, view.lease_renewed, view.handle = lease, time.monotonic(), None
        view.watch = HeartbeatWatch(self.config.lost_after_s)
        log.info("job claimed", job_id=view.job_id, token=lease.token, state=view.state.value)
        self._supervise(view)

    def _worker_running(self, view: JobView) -> bool:
        """A worker of the current attempt is still beating (launched by a replica that died)."""
        attempt = int(view.control.get("attempt", 0))
        if not attempt:
            return False
        beat = read_heartbeat(self.store, view.job_id)
        return bool(beat and int(beat.get("attempt", -1)) == attempt and not beat.get("exited"))

    def _supervise(self, view: JobView) -> None:
        if time.monotonic() - view.lease_renewed > self.config.lease_ttl_s / 3:
            renewed = self.leases.renew(view.lease)
            if renewed is None:
                log.warning("lease lost: no longer supervising", job_id=view.job_id)
                self._drop(view)
                return
            view.lease, view.lease_renewed = renewed, time.monotonic()
        if view.terminal:
            self._finish(view)
            return
        if view.handle is None:
            self._adopt_or_launch(view)
            return
        alive = self.executor.alive(view.handle)
        if alive is None:  # only heartbeats can tell (a pod, another machine)
            view.watch.observe(read_heartbeat(self.store, view.job_id))
            if view.watch.lost:
                self.executor.cancel(view.handle)
                self._lost(view, f"no heartbeat for {view.watch.stale_for():.0f}s")
            return
        if alive:
            return
        code = self.executor.reap(view.handle)
        self.refresh(view)  # the worker's last events were written before it exited
        if view.terminal:
            self._finish(view)
        elif view.control.get("cancel"):
            self.append(view, {"type": "state", "state": JobState.CANCELLED.value, "message": "cancelled"})
            self._finish(view)
        else:
            self._lost(view, f"worker exited with code {code}")

    def _adopt_or_launch(self, view: JobView) -> None:
        attempt = int(view.control.get("attempt", 0))
        beat = read_heartbeat(self.store, view.job_id) if attempt else None
        if (beat and int(beat.get("attempt", -1)) == attempt and not beat.get("exited")
                and attempt != view.lost_attempt):
            handle = self.executor.attach(beat)
            if handle is None or self.executor.alive(handle) is not False:
                view.handle = handle or Handle(view.job_id, attempt, extra={"remote": True})
                view.slots = self._take_slots(view, list(beat.get("slots", [])))
                view.watch.observe(beat)
                log.info("re-attached to a running worker", job_id=view.job_id, attempt=attempt, pid=beat.get("pid"))
                return
        if view.state is JobState.QUEUED:
            if view.control.get("cancel"):
                self.append(view, {"type": "state", "state": JobState.CANCELLED.value, "message": "cancelled"})
                return
            if view.control.get("stop"):
                self.append(view, {"type": "state", "state": JobState.STOPPED.value,
                                   "message": "stopped before it started"})
                return
            self._launch(view, attempt + 1)
            return
        if view.watch.stale_for() > min(self.config.lost_after_s, 3 * self.config.lease_ttl_s) or attempt == 0:
            self._lost(view, "worker gone")  # RUNNING in the log but no worker of its attempt beats

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

    def _launch(self, view: JobView, attempt: int) -> None:
        if self.slots_needed(view) > len(self.free_slots):
            return  # wait for a slot (we keep the lease: the job is ours and next in line)
        view.slots = self._take_slots(view, [])
        self.update_control(view, attempt=attempt, lease_token=view.lease.token)
        env = self.worker_env(view)
        view.handle = self.executor.launch(view.job_id, attempt, env)
        view.watch.reset()

    def _lost(self, view: JobView, reason: str) -> None:
        view.lost_attempt = int(view.control.get("attempt", 0))
        self._free(view)
        retries = int(view.status.get("retries", 0))
        if retries < self.config.max_retries:
            self.append(view, {"type": "state", "state": JobState.QUEUED.value, "retry": retries + 1,
                               "message": f"{reason}; retry {retries + 1} of {self.config.max_retries} "
                                          "from the last checkpoint"})
        else:
            self.append(view, {"type": "state", "state": JobState.FAILED.value,
                               "message": f"{reason} ({retries + 1} times)"})
            self._finish(view)
        log.warning("worker lost", job_id=view.job_id, reason=reason, retries=retries)

    def _free(self, view: JobView) -> None:
        with self.lock:
            self.free_slots.extend(s for s in view.slots if s not in self.free_slots)
            self.free_slots.sort()
        view.slots, view.handle = [], None

    def _finish(self, view: JobView) -> None:
        if view.handle is not None:
            self.executor.reap(view.handle)  # it exits right after its last event; a worker never
            self.executor.cancel(view.handle)  # outlives its job
        self._free(view)
        if view.lease is not None:
            self.leases.release(view.lease)
        view.lease, view.watch = None, None
        self.wakeup.set()

    def _drop(self, view: JobView) -> None:
        self._free(view)
        view.lease, view.watch = None, None


def _ends_history(events: list[dict[str, Any]]) -> bool:
    return bool(events) and events[-1]["type"] == "state" and JobState(events[-1]["state"]) in TERMINAL
