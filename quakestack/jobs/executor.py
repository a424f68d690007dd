"""Executors: how a job's worker process is started, recognised, cancelled and reaped.

Chosen by configuration (`QUAKESTACK_JOBS_EXECUTOR`): `local` starts one detached process per job
on this machine; `kubernetes` (quakestack.jobs.kubernetes) submits a batch/v1 Job. A scheduler only
ever talks to this interface.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil
import structlog

from quakestack.config import Settings

log = structlog.get_logger()
WORKER_MODULE = "quakestack.jobs.worker"


@dataclass
class Handle:
    """A worker the scheduler supervises: one it launched (popen) or one it re-attached to."""

    job_id: str
    attempt: int
    pid: int | None = None
    pid_start: float | None = None
    popen: subprocess.Popen | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Executor(Protocol):
    name: str

    def launch(self, job_id: str, attempt: int, env: dict[str, str]) -> Handle: ...

    def attach(self, heartbeat: dict[str, Any]) -> Handle | None: ...

    def alive(self, handle: Handle) -> bool | None: ...

    def cancel(self, handle: Handle) -> None: ...

    def reap(self, handle: Handle) -> int | None: ...


def worker_command(job_id: str, attempt: int) -> list[str]:
    return ["-m", WORKER_MODULE, "--job-id", job_id, "--attempt", str(attempt)]


class LocalExecutor:
    """One process per job, in its own session (it survives the service's death and signals);
    stdout/stderr go to a log file. The service reaps the processes it started; a re-attached
    worker (started by a previous incarnation) is recognised by pid and start time."""

    name = "local"

    def __init__(self, settings: Settings, log_dir: Path | None = None):
        self.settings = settings
        self.log_dir = log_dir or Path(settings.cache_dir) / "job-logs"

    def launch(self, job_id: str, attempt: int, env: dict[str, str]) -> Handle:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = (self.log_dir / f"{job_id}-{attempt}.log").open("ab")
        try:
            popen = subprocess.Popen([sys.executable, *worker_command(job_id, attempt)], env=env,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        finally:
            out.close()
        log.info("worker started", job_id=job_id, attempt=attempt, pid=popen.pid)
        return Handle(job_id, attempt, pid=popen.pid, pid_start=_start_time(popen.pid), popen=popen)

    def attach(self, heartbeat: dict[str, Any]) -> Handle | None:
        if heartbeat.get("host") != socket.gethostname():
            return None  # another machine's process: only its heartbeats tell
        handle = Handle(heartbeat["job_id"], int(heartbeat["attempt"]), pid=int(heartbeat["pid"]),
                        pid_start=float(heartbeat["pid_start"]))
        return handle

    def alive(self, handle: Handle) -> bool | None:
        if handle.popen is not None:
            return handle.popen.poll() is None
        return _same_process(handle)

    def cancel(self, handle: Handle) -> None:
        """SIGKILL the worker's process group (it leads one: its DDP ranks die with it)."""
        if handle.popen is not None and handle.popen.poll() is not None:
            return
        if handle.popen is None and not _same_process(handle):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(handle.pid, signal.SIGKILL)

    def reap(self, handle: Handle) -> int | None:
        if handle.popen is not None:
            try:
                return handle.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.cancel(handle)
                return handle.popen.wait(10)
        return None


def _start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _same_process(handle: Handle) -> bool:
    try:
        proc = psutil.Process(handle.pid)
        return (abs(proc.create_time() - float(handle.pid_start or 0)) < 1.0
                and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def local_workers(endpoint: str, bucket: str) -> list[psutil.Process]:
    """This machine's job workers (and their ranks) serving one bucket of one endpoint."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if WORKER_MODULE not in " ".join(proc.info["cmdline"] or []):
                continue
            env = proc.environ()
        except psutil.Error:
            continue
        if env.get("QUAKESTACK_S3_ENDPOINT") == endpoint and env.get("QUAKESTACK_S3_BUCKET") == bucket:
            found.append(proc)
    return found


def stop_local_workers(endpoint: str, bucket: str) -> int:
    """SIGKILL the workers of a stack that is being shut down whole (`quakestack up`, tests): they
    survive their service by design, but not the stack that started them. Returns the count."""
    workers = local_workers(endpoint, bucket)
    for proc in workers:
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(workers, timeout=10)
    return len(workers)


def make_executor(settings: Settings) -> Executor:
    kind = getattr(settings, "jobs_executor", "local")
    if kind == "kubernetes":
        from quakestack.jobs.kubernetes import KubernetesExecutor

        return KubernetesExecutor(settings)
    return LocalExecutor(settings)
