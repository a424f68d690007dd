"""Training jobs: a queue with one slot per GPU (or a configured number on CPU), one worker process
per job, events fanned out to any number of subscribers, and every change persisted.

State lives in object storage (`jobs/<id>/job.json`, `jobs/<id>/metrics.jsonl`), so a restarted
service finds its jobs again and resumes the ones that were running from their last checkpoint; the
metric history continues as one curve. Subscribers read the in-memory history with their own
cursor, so a slow subscriber never slows the worker or the other subscribers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog

from quakestack import metrics
from quakestack.auth import current_identity
from quakestack.config import Settings
from quakestack.errors import FailedPrecondition, InvalidArgument, NotFound
from quakestack.quotas import check_queued_jobs
from quakestack.stack import settings_env
from quakestack.storage import ObjectStore
from quakestack.training.worker import EVENT_PREFIX, job_key

log = structlog.get_logger()

QUEUED, RUNNING, STOPPING = "QUEUED", "RUNNING", "STOPPING"
SUCCEEDED, FAILED, CANCELLED, STOPPED = "SUCCEEDED", "FAILED", "CANCELLED", "STOPPED"
TERMINAL = {SUCCEEDED, FAILED, CANCELLED, STOPPED}
MAX_WORKER_RETRIES = 2


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


@dataclass
class Job:
    """A job's record (job.json), its event history and its worker."""

    record: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    proc: subprocess.Popen | None = None
    slots: list[int] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.record["job_id"]

    @property
    def state(self) -> str:
        return self.record["state"]


class JobManager:
    def __init__(self, store: ObjectStore, settings: Settings, *, gpu_count: int):
        self.store = store
        self.settings = settings
        self.gpu_count = gpu_count
        self.slot_count = gpu_count or settings.trainer_cpu_slots
        self.free_slots = list(range(self.slot_count))
        self.jobs: dict[str, Job] = {}
        self.queue: deque[str] = deque()
        self.lock = threading.RLock()
        self.wakeup = threading.Event()
        self.shutting_down = False
        self._recovered = False
        self._scheduler = threading.Thread(target=self._schedule_loop, name="job-scheduler", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._scheduler.start()

    def recover(self) -> None:
        """Load every training job from storage once; requeue the ones a dead service left running."""
        with self.lock:
            if self._recovered:
                return
            for job_id in self.store.list_dirs("jobs/"):
                try:
                    record = self.store.get_json(job_key(job_id, "job.json"))
                except NotFound:
                    continue
                if record.get("kind") != "training" or job_id in self.jobs:
                    continue
                job = Job(record=record, events=self._load_history(job_id))
                self.jobs[job_id] = job
                if job.state in (QUEUED, RUNNING):
                    job.record["resume_from"] = self._resume_point(job)
                    self._set_state(job, QUEUED, "resumed after a service restart")
                    self.queue.append(job_id)
                elif job.state == STOPPING:
                    self._set_state(job, STOPPED, "the service restarted while the job was stopping")
            self._recovered = True
        self._update_gauges()
        self.wakeup.set()

    def shutdown(self) -> None:
        """Stop workers without changing job states: the next start resumes them."""
        with self.lock:
            self.shutting_down = True
            procs = [j.proc for j in self.jobs.values() if j.proc is not None]
        for proc in procs:
            signal_group(proc, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                signal_group(proc, signal.SIGKILL)
        self.wakeup.set()

    # -- requests -----------------------------------------------------------------------------
    def create(self, record: dict[str, Any]) -> Job:
        """Queue a job owned by the caller's token (its queued-jobs quota is checked here)."""
        owner = current_identity()
        job_id = uuid.uuid4().hex[:16]
        record = {**record, "job_id": job_id, "kind": "training", "state": QUEUED, "epochs_done": 0,
                  "best_epoch": 0, "elapsed_s": 0.0, "error": "", "latest": None, "create_time": now(),
                  "update_time": now(), "resume_from": None, "retries": 0, "owner": owner.id}
        job = Job(record=record)
        with self.lock:
            active = sum(1 for j in self.jobs.values()
                         if j.record.get("owner") == owner.id and j.state in (QUEUED, RUNNING, STOPPING))
            check_queued_jobs(owner, active)
            self.jobs[job_id] = job
            self._append(job, {"type": "state", "state": QUEUED, "message": "created"})
            self.queue.append(job_id)
        self._update_gauges()
        self.wakeup.set()
        return job

    def get(self, job_id: str) -> Job:
        with self.lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"training job {job_id!r} does not exist")
        return job

    def list(self) -> list[Job]:
        with self.lock:
            return sorted(self.jobs.values(), key=lambda j: j.record["create_time"], reverse=True)

    def update_epochs(self, job_id: str, epochs: int) -> Job:
        if epochs < 1:
            raise InvalidArgument(f"epochs must be >= 1, got {epochs}")
        job = self.get(job_id)
        with self.lock:
            if job.state in TERMINAL:
                raise FailedPrecondition(f"job {job_id} is {job.state}; resume it to train more epochs")
            job.record["epochs"] = epochs
            job.record["update_time"] = now()
            self._persist(job)
            self._command(job, {"epochs": epochs})
        return job

    def stop(self, job_id: str) -> Job:
        job = self.get(job_id)
        with self.lock:
            if job.state in TERMINAL:
                raise FailedPrecondition(f"job {job_id} is already {job.state}")
            if job.state == QUEUED:
                self.queue.remove(job_id) if job_id in self.queue else None
                self._set_state(job, STOPPED, "stopped before it started")
            elif job.state == RUNNING:
                self._set_state(job, STOPPING, "finishing the current batch and writing a checkpoint")
                self._command(job, {"stop": True})
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        with self.lock:
            if job.state in TERMINAL:
                raise FailedPrecondition(f"job {job_id} is already {job.state}")
            job.record["cancel_requested"] = True
            if job.proc is not None and job.proc.poll() is None:
                signal_group(job.proc, signal.SIGKILL)
            else:
                if job_id in self.queue:
                    self.queue.remove(job_id)
                self._set_state(job, CANCELLED, "cancelled")
        return job

    def resume(self, job_id: str, epochs: int = 0) -> Job:
        job = self.get(job_id)
        with self.lock:
            if job.state not in (STOPPED, FAILED, SUCCEEDED):
                raise FailedPrecondition(f"job {job_id} is {job.state}; only STOPPED, FAILED or SUCCEEDED jobs resume")
            target = epochs or job.record["epochs"]
            if target <= job.record["epochs_done"]:
                raise FailedPrecondition(f"job {job_id} has trained {job.record['epochs_done']} epochs; "
                                         f"resume with epochs > {job.record['epochs_done']}")
            job.record.update(epochs=target, resume_from=self._resume_point(job), error="", retries=0)
            job.record.pop("cancel_requested", None)
            self._set_state(job, QUEUED, f"resuming from {job.record['resume_from'] or 'the start'}")
            self.queue.append(job_id)
        self.wakeup.set()
        return job

    def subscribe(self, job_id: str, is_active=lambda: True) -> Iterator[dict[str, Any]]:
        """The job's events from the first one; live ones as they come; ends when the job ends."""
        job = self.get(job_id)
        cursor = 0
        while True:
            with job.cond:
                while cursor >= len(job.events) and not self.shutting_down:
                    if _ends_history(job.events):
                        return
                    job.cond.wait(timeout=0.5)
                    if not is_active():
                        return
                batch = job.events[cursor:]
            yield from batch
            cursor += len(batch)
            if self.shutting_down or _ends_history(batch):
                return

    # -- scheduling ---------------------------------------------------------------------------
    def _schedule_loop(self) -> None:
        while not self.shutting_down:
            self.wakeup.wait(1.0)
            self.wakeup.clear()
            with self.lock:
                while self.queue and not self.shutting_down:
                    job = self.jobs[self.queue[0]]
                    needed = self._slots_needed(job)
                    if needed > len(self.free_slots):
                        break
                    self.queue.popleft()
                    job.slots = [self.free_slots.pop(0) for _ in range(needed)]
                    self._launch(job)

    def _slots_needed(self, job: Job) -> int:
        if not self.gpu_count:
            return 1
        return max(1, min(self.slot_count, int(job.record["training_hyper_parameters"].get("num_gpus", 1) or 1)))

    def _launch(self, job: Job) -> None:
        self._persist(job)
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
        env.update(settings_env(self.settings))
        env["PYTHONUNBUFFERED"] = "1"
        if self.gpu_count:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(s) for s in job.slots)
        job.proc = subprocess.Popen([sys.executable, "-m", "quakestack.training.worker", "--job-id", job.id],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1,
                                    start_new_session=True)
        threading.Thread(target=self._read_worker, args=(job, job.proc), name=f"worker-{job.id}",
                         daemon=True).start()
        log.info("worker started", job_id=job.id, pid=job.proc.pid, slots=job.slots)

    def _read_worker(self, job: Job, proc: subprocess.Popen) -> None:
        ended = False
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.startswith(EVENT_PREFIX):
                continue
            try:
                event = json.loads(line[len(EVENT_PREFIX):])
            except json.JSONDecodeError:
                continue
            ended = self._on_worker_event(job, event) or ended
        code = proc.wait()
        with self.lock:
            self.free_slots.extend(job.slots)
            self.free_slots.sort()
            job.slots, job.proc = [], None
            if self.shutting_down:
                return
            if job.record.get("cancel_requested"):
                self._set_state(job, CANCELLED, "cancelled")
            elif not ended:
                self._worker_died(job, code)
        self.wakeup.set()

    def _worker_died(self, job: Job, code: int) -> None:
        retries = int(job.record.get("retries", 0))
        if retries < MAX_WORKER_RETRIES:
            job.record["retries"] = retries + 1
            job.record["resume_from"] = self._resume_point(job)
            self._set_state(job, QUEUED, f"worker exited with code {code}; resuming from "
                                         f"{job.record['resume_from'] or 'the start'}")
            self.queue.append(job.id)
        else:
            self._set_state(job, FAILED, f"worker exited with code {code} {retries + 1} times")

    def _on_worker_event(self, job: Job, event: dict[str, Any]) -> bool:
        kind = event.get("type")
        with self.lock:
            if kind == "running":
                if event.get("p_offset_s") is not None:
                    job.record["p_offset_s"] = event["p_offset_s"]
                if job.state != STOPPING:
                    self._set_state(job, RUNNING, f"worker started ({event.get('world_size', 1)} process(es))")
                return False
            if kind == "epoch":
                self._on_epoch(job, event)
                return False
            if kind == "done":
                if event["state"] == "stopped":
                    job.record["stopped_at_epoch"] = int(event["epochs_done"])
                    self._set_state(job, STOPPED, event.get("message", ""))
                else:
                    self._set_state(job, SUCCEEDED, event.get("message", ""))
                return True
            if kind == "failed":
                job.record["error"] = event.get("error", "")
                self._set_state(job, FAILED, job.record["error"])
                return True
        return False

    def _on_epoch(self, job: Job, event: dict[str, Any]) -> None:
        epoch = int(event["epoch"])
        if epoch <= int(job.record.get("epochs_done", 0)):
            return  # a resumed worker re-reporting an epoch the history already holds
        job.record.update(epochs_done=epoch, best_epoch=int(event.get("best_epoch", epoch)),
                          elapsed_s=float(event.get("elapsed_s", 0.0)), update_time=now())
        entry = {k: v for k, v in event.items() if k not in ("type", "best_epoch")}
        self._append(job, {"type": "epoch", **entry})
        job.record["latest"] = job.events[-1]
        self._persist(job)
        arch = job.record["architecture"]
        metrics.TRAINING_EPOCHS.labels(arch).inc()
        metrics.TRAINING_LOSS.labels(job.id, "train").set(float(event["train_loss"]))
        if event.get("val_loss") is not None:
            metrics.TRAINING_LOSS.labels(job.id, "val").set(float(event["val_loss"]))
        metrics.TRAINING_SAMPLES_PER_S.labels(job.id).set(float(event.get("samples_per_s", 0.0)))

    # -- state and persistence ----------------------------------------------------------------
    def _resume_point(self, job: Job) -> str | None:
        done = int(job.record.get("epochs_done", 0))
        if job.record.get("stopped_at_epoch") == done and self.store.exists(job_key(job.id, "checkpoints/stopped.pt")):
            return "stopped"
        if done and self.store.exists(job_key(job.id, f"checkpoints/epoch-{done:04d}.pt")):
            return f"epoch-{done:04d}"
        return None

    def _set_state(self, job: Job, state: str, message: str = "") -> None:
        job.record["state"] = state
        job.record["update_time"] = now()
        if state == FAILED:
            job.record["error"] = message
        self._append(job, {"type": "state", "state": state, "message": message})
        self._persist(job)
        self._update_gauges()
        log.info("job state", job_id=job.id, state=state, message=message)

    def _append(self, job: Job, event: dict[str, Any]) -> None:
        """Persist first, then show subscribers: what a watcher saw is always in metrics.jsonl."""
        entry = {"sequence": len(job.events) + 1, "time": now(), **event}
        self.store.put_bytes(job_key(job.id, "metrics.jsonl"),
                             "".join(json.dumps(e) + "\n" for e in [*job.events, entry]).encode(),
                             content_type="application/x-ndjson")
        with job.cond:
            job.events.append(entry)
            job.cond.notify_all()

    def _persist(self, job: Job) -> None:
        self.store.put_json(job_key(job.id, "job.json"), job.record)

    def _load_history(self, job_id: str) -> list[dict[str, Any]]:
        try:
            raw = self.store.get_bytes(job_key(job_id, "metrics.jsonl")).decode()
        except NotFound:
            return []
        return [json.loads(line) for line in raw.splitlines() if line.strip()]

    def _command(self, job: Job, command: dict[str, Any]) -> None:
        proc = job.proc
        if proc is not None and proc.poll() is None and proc.stdin is not None:
            try:
                proc.stdin.write(json.dumps(command) + "\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError):
                log.warning("worker gone before a command reached it", job_id=job.id)

    def _update_gauges(self) -> None:
        counts: dict[str, int] = {s: 0 for s in (QUEUED, RUNNING, STOPPING, SUCCEEDED, FAILED, CANCELLED, STOPPED)}
        with self.lock:
            for job in self.jobs.values():
                counts[job.state] = counts.get(job.state, 0) + 1
        for state, count in counts.items():
            metrics.TRAINING_JOBS.labels(state).set(count)


def _ends_history(events: list[dict[str, Any]]) -> bool:
    """The history ends with a terminal state change (the event itself, not the record, decides)."""
    return bool(events) and events[-1]["type"] == "state" and events[-1]["state"] in TERMINAL


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Signal the worker and its DDP ranks (the worker leads its own process group)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
