"""The worker entry point of every job kind: runs one attempt of a job from its record and the store.

    python -m quakestack.jobs.worker --job-id <id> --attempt <n>

The same command runs as a detached local process, in a Kubernetes pod, or under torchrun (one
process per rank; rank 0 reports). It reports only through the metadata store: events to the job's
log (waiting out outages of the database), a heartbeat every QUAKESTACK_JOBS_HEARTBEAT_S, and it
reads the control record every CONTROL_POLL_S: cancel ends the job CANCELLED and the worker with it;
an attempt number that is no longer the current one means it was replaced, so it leaves without a
word (and the store refuses its events). Artifacts (checkpoints, shards, picks) go to object storage.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from quakestack.config import Settings, load_settings
from quakestack.errors import QuakestackError
from quakestack.jobs import fanout
from quakestack.jobs.heartbeat import heartbeat_body
from quakestack.jobs.lifeline import stack_gone
from quakestack.jobs.retry import with_retries
from quakestack.jobs.spec import JobRecord
from quakestack.jobs.state import JobState
from quakestack.logging import configure, get_logger
from quakestack.metadata.database import Database
from quakestack.metadata.jobs import JobStore
from quakestack.runtime.memory import keep_freed_memory
from quakestack.storage import ObjectStore

RETRY_STORAGE_S = 900.0  # how long a worker waits out a storage or database outage before giving up on a write
CONTROL_POLL_S = 0.5  # commands take effect within this (one indexed read each time)


class ControlTarget(Protocol):
    def apply(self, command: dict[str, Any]) -> None: ...


class WorkerContext:
    """What a job's runner gets: its record, the object store for artifacts, the job store for reports."""

    def __init__(self, settings: Settings, store: ObjectStore, jobs: JobStore, record: JobRecord, attempt: int,
                 rank: int = 0):
        self.settings = settings
        self.store = store
        self.jobs = jobs
        self.record = record
        self.job_id = record.job_id
        self.attempt = attempt
        self.rank = rank
        self.control_target: ControlTarget | None = None
        self._beat = 0
        self._beating = False
        self._done = threading.Event()

    @property
    def spec(self) -> dict[str, Any]:
        return self.record.spec

    def status(self) -> dict[str, Any]:
        """The job's status as stored now (folded from its log as each event was written)."""
        return with_retries(lambda: self.jobs.get(self.job_id).status, RETRY_STORAGE_S)

    def events(self, types: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """The job's events so far (this job's history: a resumed worker's account of what is done)."""
        return with_retries(lambda: self.jobs.all_events(self.job_id, types), RETRY_STORAGE_S)

    def emit(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Report an event as this attempt; None when the store refused it (a replaced attempt, a transition
        the job's state no longer allows, an epoch already recorded)."""
        return with_retries(lambda: self.jobs.append(self.job_id, {**event, "attempt": self.attempt}),
                            RETRY_STORAGE_S)

    def state(self, state: JobState, message: str = "", **extra: Any) -> None:
        self.emit({"type": "state", "state": state.value, "message": message, **extra})

    def control(self) -> dict[str, Any]:
        return with_retries(lambda: self.jobs.control(self.job_id), RETRY_STORAGE_S)

    # -- heartbeat and commands ---------------------------------------------------------------
    def start_heartbeat(self, on_cancel: Callable[[], None], on_fenced: Callable[[], None]) -> None:
        """Beat (rank 0: the job's heartbeat; a fan-out peer: its own, for rank 0) and follow the control
        record: cancel (rank 0 ends the job CANCELLED) or a newer attempt ends this worker."""
        self._beating = True
        threading.Thread(target=self._heartbeat_loop, args=(on_cancel, on_fenced), name="heartbeat",
                         daemon=True).start()

    def _heartbeat_loop(self, on_cancel: Callable[[], None], on_fenced: Callable[[], None]) -> None:
        log = get_logger(job_id=self.job_id)
        next_beat = 0.0
        while not self._done.is_set():
            if time.monotonic() >= next_beat:
                self._beat += 1
                next_beat = time.monotonic() + self.settings.jobs_heartbeat_s
                with contextlib.suppress(QuakestackError):
                    self.beat(self._beat)
            if stack_gone():
                log.warning("the stack that started this worker is gone: leaving (the job goes back to the queue)")
                with contextlib.suppress(QuakestackError):
                    self.jobs.interrupt(self.job_id, self.attempt, "the stack that ran its worker is gone")
                on_fenced()
                return
            try:
                control = self.jobs.control(self.job_id)
            except QuakestackError:
                control = None
            if control is not None:
                if int(control.get("attempt", 0)) != self.attempt:
                    log.warning("replaced by attempt %s: leaving", control.get("attempt"))
                    on_fenced()
                    return
                if control.get("cancel"):
                    if self.rank == 0:
                        self.state(JobState.CANCELLED, "cancelled")
                    on_cancel()
                    return
                if self.control_target is not None:
                    self.control_target.apply(control)
            self._done.wait(CONTROL_POLL_S)

    def beat(self, beat: int, **extra: Any) -> None:
        """Rank 0's beat is the job's (schedulers watch it); a fan-out peer's is watched by rank 0 alone."""
        self.jobs.beat(self.job_id, self.rank, self.attempt, beat,
                       heartbeat_body(self.job_id, self.attempt, beat, **extra))

    def finished(self) -> None:
        self._done.set()
        if self._beating:
            with contextlib.suppress(QuakestackError):
                self.beat(self._beat + 1, exited=True)


def kill_own_group() -> None:
    """End this worker and every rank it started (the worker leads its process group locally)."""
    with contextlib.suppress(OSError):
        os.killpg(os.getpgid(0), signal.SIGKILL)
    os._exit(137)


def torchrun_rank() -> tuple[int, int] | None:
    """(rank, world size) when started by torchrun (or a Kubeflow TrainJob), else None."""
    if "TORCHELASTIC_RUN_ID" in os.environ and "RANK" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return None


RUNNERS: dict[str, str] = {
    "training": "quakestack.training.worker:run_job",
    "dataset": "quakestack.data.worker:run_job",
    "annotation": "quakestack.catalog.worker:run_job",
    "sweep": "quakestack.sweeps.controller:run_job",
}


def run(job_id: str, attempt: int) -> int:
    settings = load_settings()
    configure("job-worker", settings.log_level, settings.log_format)
    if settings.keep_freed_memory:
        keep_freed_memory()
    store = ObjectStore.from_settings(settings)
    jobs = JobStore(Database.from_settings(settings))
    record = with_retries(lambda: jobs.get(job_id).record, RETRY_STORAGE_S)
    ranked = torchrun_rank()
    ctx = WorkerContext(settings, store, jobs, record, attempt, rank=ranked[0] if ranked else fanout.index())
    if ctx.rank == 0:
        control = ctx.control()
        if int(control.get("attempt", 0)) != attempt:
            get_logger(job_id=job_id).warning("attempt %s is not the current one (%s): nothing to do", attempt,
                                              control.get("attempt"))
            return 0
    module_name, _, function = RUNNERS[record.kind].partition(":")
    module = __import__(module_name, fromlist=[function])
    try:
        return int(getattr(module, function)(ctx))
    finally:
        ctx.finished()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--attempt", type=int, required=True)
    args = parser.parse_args()
    sys.exit(run(args.job_id, args.attempt))


if __name__ == "__main__":
    main()
