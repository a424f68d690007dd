"""Jobs in the metadata store: the record, its folded status, the control record, the event log, heartbeats
and the lease, each a row or rows behind an index.

Every change is one transaction: an event is given the next sequence number, folded into the job's
status (legal transitions only, each epoch once; an event the fold refuses is not stored) and counted
under its kind and state, all at once, so a reader never sees an event without its status or the
reverse. An event that names an attempt other than the job's current one comes from a replaced worker
and is refused (fencing). A lease is the job row's holder, fencing token and expiry: taken with a
conditional update inside a write transaction (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: `BEGIN
IMMEDIATE`), so two replicas never both hold one. Nothing here reads more than one job's rows, a page
of jobs, or the jobs that are someone's work right now.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from quakestack.errors import NotFound
from quakestack.jobs.spec import JobRecord
from quakestack.jobs.state import TERMINAL, JobState
from quakestack.jobs.status import apply_event, fold, initial_status
from quakestack.metadata.database import Database, dumps, loads
from quakestack.metadata.schema import job_counts, job_events, job_heartbeats, jobs
from quakestack.protoconv import seconds_from_iso, utc_now_iso

ACTIVE = tuple(s.value for s in JobState if s not in TERMINAL)
CONTROL_DEFAULTS: dict[str, Any] = {"epochs": 0, "stop": False, "cancel": False, "attempt": 0}
EVENTS_PAGE = 1000


@dataclass(frozen=True)
class JobView:
    """One job as stored at the moment it was read: record, folded status, control and lease."""

    record: JobRecord
    status: dict[str, Any]
    control: dict[str, Any]
    created_s: float = 0.0
    lease_owner: str | None = None
    lease_token: int = 0
    lease_expires_s: float = 0.0

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
class JobFilter:
    """What a List asks for besides its page; every field is an indexed column (empty: any)."""

    state: str = ""
    dataset: str = ""
    architecture: str = ""
    owner: str = ""
    created_after: float | None = None
    created_before: float | None = None


def _record(row: Row) -> JobRecord:
    return JobRecord(kind=row.kind, version=int(row.spec_version), job_id=row.job_id, create_time=row.create_time,
                     spec=loads(row.spec))


def view_of(row: Row) -> JobView:
    return JobView(record=_record(row), status=loads(row.status), control={**CONTROL_DEFAULTS, **loads(row.control)},
                   created_s=float(row.created_s), lease_owner=row.lease_owner, lease_token=int(row.lease_token),
                   lease_expires_s=float(row.lease_expires_s))


def _count(conn: Connection, kind: str, state: str, delta: int) -> None:
    """Keep jobs-per-kind-and-state in step with the change this transaction makes."""
    changed = conn.execute(sa.update(job_counts).where(job_counts.c.kind == kind, job_counts.c.state == state)
                           .values(count=job_counts.c.count + delta)).rowcount
    if not changed:
        conn.execute(sa.insert(job_counts).values(kind=kind, state=state, count=delta))


class JobStore:
    """The job tables of one database, for schedulers, servicers and workers alike."""

    def __init__(self, db: Database):
        self.db = db
        self.changed = threading.Condition()  # local writers wake local watchers at once; others poll

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    # -- writes -------------------------------------------------------------------------------
    def create(self, record: JobRecord, control: dict[str, Any], event: dict[str, Any]) -> JobView:
        """The record, its control record and its first event: durable before the caller answers."""
        now = time.time()
        state = initial_status(record.create_time)
        control = {**CONTROL_DEFAULTS, **control}
        spec = record.spec
        with self.db.write() as conn:
            conn.execute(sa.insert(jobs).values(
                job_id=record.job_id, kind=record.kind, spec_version=record.version, state=state["state"],
                owner=str(spec.get("owner", "")), dataset=str(spec.get("dataset", "")),
                architecture=str(spec.get("architecture", "")), create_time=record.create_time,
                created_s=seconds_from_iso(record.create_time) or now, update_s=now, spec=dumps(spec),
                status=dumps(state), control=dumps(control), last_sequence=0,
                attempt=int(control.get("attempt", 0)), lease_owner=None, lease_token=0, lease_expires_s=0.0))
            _count(conn, record.kind, state["state"], 1)
            _append(conn, record.job_id, event)
        self._notify()
        return self.get(record.job_id)

    def create_many(self, jobs_: list[tuple[JobRecord, dict[str, Any], list[dict[str, Any]]]]) -> int:
        """Insert finished or imported jobs in bulk, each with its whole history (record, control, events in order),
        in one transaction: the status of each is folded from its events as `append` would have. Returns the count."""
        if not jobs_:
            return 0
        now = time.time()
        job_rows, event_rows, counts = [], [], {}
        for record, control, events in jobs_:
            numbered = [{**e, "sequence": i} for i, e in enumerate(events, start=1)]
            status, accepted = fold(record.create_time, numbered)
            control = {**CONTROL_DEFAULTS, **control}
            spec = record.spec
            job_rows.append({
                "job_id": record.job_id, "kind": record.kind, "spec_version": record.version, "state": status["state"],
                "owner": str(spec.get("owner", "")), "dataset": str(spec.get("dataset", "")),
                "architecture": str(spec.get("architecture", "")), "create_time": record.create_time,
                "created_s": seconds_from_iso(record.create_time) or now, "update_s": now, "spec": dumps(spec),
                "status": dumps(status), "control": dumps(control), "last_sequence": len(numbered),
                "attempt": int(control.get("attempt", 0)), "lease_owner": None, "lease_token": 0,
                "lease_expires_s": 0.0})
            event_rows += [_event_row(record.job_id, e) for e in accepted]
            counts[(record.kind, status["state"])] = counts.get((record.kind, status["state"]), 0) + 1
        with self.db.write() as conn:
            conn.execute(sa.insert(jobs), job_rows)
            if event_rows:
                conn.execute(sa.insert(job_events), event_rows)
            for (kind, state), n in counts.items():
                _count(conn, kind, state, n)
        self._notify()
        return len(job_rows)

    def append(self, job_id: str, event: dict[str, Any]) -> dict[str, Any] | None:
        """Store event as the job's next, folded into its status; the stored event, or None when refused
        (an illegal transition, an epoch already recorded, or a worker of an attempt that is not current)."""
        with self.db.write() as conn:
            entry = _append(conn, job_id, event)
        if entry is not None:
            self._notify()
        return entry

    def interrupt(self, job_id: str, attempt: int, reason: str) -> dict[str, Any] | None:
        """A worker of `attempt` ended by a clean shutdown or a restart of its machine, not by a fault: a running
        job goes back to the queue (its next worker resumes from the last checkpoint) and a stopping one is
        stopped, neither spending a retry. Nothing happens when the job has moved on (another attempt, an end)."""
        with self.db.write() as conn:
            row = conn.execute(sa.select(jobs.c.state, jobs.c.attempt).where(jobs.c.job_id == job_id)
                               .with_for_update()).first()
            if row is None or int(row.attempt) != int(attempt):
                return None
            if row.state == JobState.RUNNING.value:
                event = {"type": "state", "state": JobState.QUEUED.value, "interrupted": True,
                         "message": f"{reason}: resumes from its last checkpoint (no retry spent)"}
            elif row.state == JobState.STOPPING.value:
                event = {"type": "state", "state": JobState.STOPPED.value, "interrupted": True,
                         "message": f"{reason} while the job was stopping: resumable from its last checkpoint"}
            else:
                return None
            entry = _append(conn, job_id, event)
        self._notify()
        return entry

    def update_control(self, job_id: str, **changes: Any) -> dict[str, Any]:
        """Apply changes to the control record atomically; the record as written."""
        with self.db.write() as conn:
            raw = conn.execute(sa.select(jobs.c.control).where(jobs.c.job_id == job_id).with_for_update()).scalar()
            if raw is None:
                raise NotFound(f"job {job_id!r} does not exist")
            control = {**CONTROL_DEFAULTS, **loads(raw), **changes}
            conn.execute(sa.update(jobs).where(jobs.c.job_id == job_id).values(
                control=dumps(control), attempt=int(control.get("attempt", 0))))
        self._notify()
        return control

    def beat(self, job_id: str, rank: int, attempt: int, beat: int, body: dict[str, Any]) -> None:
        """A worker's heartbeat (rank 0: the job's; a fan-out peer's: for rank 0), replacing the last."""
        values = {"attempt": attempt, "beat": beat, "time_s": time.time(), "body": dumps(body)}
        with self.db.write() as conn:
            changed = conn.execute(sa.update(job_heartbeats).where(job_heartbeats.c.job_id == job_id,
                                                                    job_heartbeats.c.rank == rank)
                                   .values(**values)).rowcount
            if not changed:
                conn.execute(sa.insert(job_heartbeats).values(job_id=job_id, rank=rank, **values))

    # -- reads --------------------------------------------------------------------------------
    def find(self, job_id: str) -> JobView | None:
        with self.db.read() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.job_id == job_id)).first()
        return None if row is None else view_of(row)

    def get(self, job_id: str, kind: str | None = None) -> JobView:
        view = self.find(job_id)
        if view is None or (kind is not None and view.record.kind != kind):
            raise NotFound(f"{kind + ' ' if kind else ''}job {job_id!r} does not exist")
        return view

    def many(self, job_ids: Iterable[str]) -> dict[str, JobView]:
        ids = list(job_ids)
        if not ids:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(sa.select(jobs).where(jobs.c.job_id.in_(ids))).all()
        return {row.job_id: view_of(row) for row in rows}

    def control(self, job_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            raw = conn.execute(sa.select(jobs.c.control).where(jobs.c.job_id == job_id)).scalar()
        if raw is None:
            raise NotFound(f"job {job_id!r} does not exist")
        return {**CONTROL_DEFAULTS, **loads(raw)}

    def events(self, job_id: str, after: int = 0, limit: int = EVENTS_PAGE,
               types: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """The job's events with a sequence above `after`, in order (at most `limit`)."""
        query = sa.select(job_events.c.body).where(job_events.c.job_id == job_id, job_events.c.sequence > after)
        if types:
            query = query.where(job_events.c.type.in_(types))
        with self.db.read() as conn:
            bodies = conn.execute(query.order_by(job_events.c.sequence).limit(limit)).scalars().all()
        return [loads(b) for b in bodies]

    def all_events(self, job_id: str, types: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Every event of one job (its own history: bounded by the job, not by all jobs)."""
        out: list[dict[str, Any]] = []
        while True:
            batch = self.events(job_id, after=out[-1]["sequence"] if out else 0, types=types)
            out += batch
            if len(batch) < EVENTS_PAGE:
                return out

    def heartbeat(self, job_id: str, rank: int = 0) -> dict[str, Any] | None:
        with self.db.read() as conn:
            raw = conn.execute(sa.select(job_heartbeats.c.body).where(job_heartbeats.c.job_id == job_id,
                                                                      job_heartbeats.c.rank == rank)).scalar()
        return loads(raw)

    def page(self, kind: str, where: JobFilter, after: tuple[float, str] | None,
             size: int) -> tuple[list[JobView], bool]:
        """One page of a kind's jobs, newest first, after the (created_s, job_id) of the last one shown;
        and whether more follow. Keyset, not offset: a page costs the same on page 1 and page 10,000."""
        c = jobs.c
        query = sa.select(jobs).where(c.kind == kind)
        for column, value in ((c.state, where.state), (c.dataset, where.dataset),
                              (c.architecture, where.architecture), (c.owner, where.owner)):
            if value:
                query = query.where(column == value)
        if where.created_after is not None:
            query = query.where(c.created_s >= where.created_after)
        if where.created_before is not None:
            query = query.where(c.created_s < where.created_before)
        if after is not None:  # a row-value comparison: both databases seek the index to it (an OR would scan)
            query = query.where(sa.tuple_(c.created_s, c.job_id) < sa.tuple_(float(after[0]), str(after[1])))
        query = query.order_by(c.created_s.desc(), c.job_id.desc()).limit(size + 1)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [view_of(r) for r in rows[:size]], len(rows) > size

    def count_active(self, kind: str, owner: str) -> int:
        """The owner's queued or running jobs of one kind (a quota: bounded by what the owner may have)."""
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
                jobs.c.kind == kind, jobs.c.owner == owner, jobs.c.state.in_(ACTIVE))).scalar() or 0)

    def using_dataset(self, dataset: str, kinds: tuple[str, ...], limit: int) -> tuple[int, list[str]]:
        """How many jobs of these kinds name a dataset, and the ids of the newest few."""
        where = sa.and_(jobs.c.dataset == dataset, jobs.c.kind.in_(kinds))
        with self.db.read() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(jobs).where(where)).scalar() or 0)
            first = conn.execute(sa.select(jobs.c.job_id).where(where).order_by(jobs.c.created_s.desc())
                                 .limit(limit)).scalars().all()
        return total, list(first)

    def counts(self) -> dict[tuple[str, str], int]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(job_counts)).all()
        return {(r.kind, r.state): int(r.count) for r in rows}

    # -- leases -------------------------------------------------------------------------------
    def claim(self, kind: str, owner: str, ttl_s: float, states: tuple[str, ...], limit: int) -> list[JobView]:
        """Take the leases of up to `limit` jobs of `kind` in `states` that nobody holds (or whose holder let
        the lease expire), oldest first; the jobs now ours, each with its fencing token bumped."""
        if limit < 1:
            return []
        now = time.time()
        c = jobs.c

        def free(state: str) -> sa.ColumnElement[bool]:
            # one state per query: an equality keeps the planner on (kind, state, created), where an IN list over
            # a table of finished jobs can look cheaper to scan whole (SQLite's did, at 100,000 jobs: 23 ms a tick)
            return sa.and_(c.kind == kind, c.state == state, sa.or_(c.lease_owner.is_(None), c.lease_expires_s < now))

        with self.db.read() as conn:  # the idle case: indexed reads, no write lock taken
            if all(conn.execute(sa.select(c.job_id).where(free(s)).limit(1)).first() is None for s in states):
                return []
        with self.db.write() as conn:
            found = [row for s in states for row in conn.execute(
                sa.select(c.created_s, c.job_id).where(free(s)).order_by(c.created_s, c.job_id).limit(limit)
                .with_for_update(skip_locked=True)).all()]
            ids = [row.job_id for row in sorted(found)[:limit]]
            if not ids:
                return []
            conn.execute(sa.update(jobs).where(c.job_id.in_(ids)).values(
                lease_owner=owner, lease_token=c.lease_token + 1, lease_expires_s=now + ttl_s))
            rows = conn.execute(sa.select(jobs).where(c.job_id.in_(ids)).order_by(c.created_s)).all()
        return [view_of(r) for r in rows]

    def renew(self, job_id: str, owner: str, token: int, ttl_s: float) -> bool:
        """Extend our lease; False when it is no longer ours (taken over after it expired)."""
        with self.db.write() as conn:
            return conn.execute(sa.update(jobs).where(jobs.c.job_id == job_id, jobs.c.lease_owner == owner,
                                                      jobs.c.lease_token == token)
                                .values(lease_expires_s=time.time() + ttl_s)).rowcount == 1

    def release(self, job_id: str, owner: str, token: int) -> None:
        """Give our lease up at once, so any replica may take the job."""
        with self.db.write() as conn:
            conn.execute(sa.update(jobs).where(jobs.c.job_id == job_id, jobs.c.lease_owner == owner,
                                               jobs.c.lease_token == token)
                         .values(lease_owner=None, lease_expires_s=0.0))


def _append(conn: Connection, job_id: str, event: dict[str, Any]) -> dict[str, Any] | None:
    """One event in the caller's write transaction: numbered, folded, counted; None when refused."""
    row = conn.execute(sa.select(jobs.c.kind, jobs.c.state, jobs.c.status, jobs.c.last_sequence, jobs.c.attempt)
                       .where(jobs.c.job_id == job_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"job {job_id!r} does not exist")
    if "attempt" in event and int(event["attempt"]) != int(row.attempt):
        return None
    status = loads(row.status)
    entry = {"sequence": int(row.last_sequence) + 1, "time": utc_now_iso(), **event}
    if not apply_event(status, entry):
        return None
    conn.execute(sa.insert(job_events).values(_event_row(job_id, entry)))
    conn.execute(sa.update(jobs).where(jobs.c.job_id == job_id).values(
        state=status["state"], status=dumps(status), last_sequence=entry["sequence"], update_s=time.time()))
    if status["state"] != row.state:
        _count(conn, row.kind, row.state, -1)
        _count(conn, row.kind, status["state"], 1)
    return entry


def _event_row(job_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {"job_id": job_id, "sequence": int(entry["sequence"]), "type": str(entry.get("type", "")),
            "time_s": seconds_from_iso(entry.get("time")) or time.time(), "body": dumps(entry)}
