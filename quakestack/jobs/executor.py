"""Executors: how a job's worker process is started, recognised, cancelled and reaped.

Chosen by configuration (`QUAKESTACK_JOBS_EXECUTOR`): `local` starts one detached process per job
on this machine (one torchrun launcher per node for a multi-node job, on loopback); `kubernetes`
(quakestack.jobs.kubernetes) submits a batch/v1 Job. A scheduler only ever talks to this interface.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil
import structlog

from quakestack.config import Settings, settings_env
from quakestack.errors import FailedPrecondition
from quakestack.jobs.spec import JobRecord
from quakestack.jobs.torchrun import WORKER_MODULE, container_command, nodes_of, torchrun_variables, worker_command

log = structlog.get_logger()
__all__ = ["WORKER_MODULE", "Executor", "Handle", "LocalExecutor", "make_executor", "worker_command"]


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

    def launch(self, record: JobRecord, attempt: int, env: dict[str, str]) -> Handle: ...

    def attach(self, heartbeat: dict[str, Any], record: JobRecord) -> Handle | None: ...

    def alive(self, handle: Handle) -> bool | None: ...

    def cancel(self, handle: Handle) -> None: ...

    def reap(self, handle: Handle) -> int | None: ...


class LocalExecutor:
    """One process per job, in its own session (it survives the service's death and signals);
    stdout/stderr go to a log file. A multi-node job (num_nodes > 1) is one torchrun launcher per
    node, each in its own session, with the Indexed Job pod's command and PET_* environment on
    loopback (rank 0 on 127.0.0.1 holds the rendezvous store; gloo on CPU). The service reaps the
    processes it started; a re-attached worker (started by a previous incarnation) is recognised
    by pid and start time. Cancel kills every process of the job (found by its command line: the
    launchers, their ranks and their children), so nothing outlives a job."""

    name = "local"

    def __init__(self, settings: Settings, log_dir: Path | None = None):
        self.settings = settings
        self.log_dir = log_dir or Path(settings.cache_dir) / "job-logs"

    @staticmethod
    def _nodes(spec: dict[str, Any]) -> tuple[int, int]:
        """(nodes, processes per node) of the job, as its ranks will see this machine (GPUs or not)."""
        nodes, per_node = nodes_of(spec)
        if nodes > 1:
            import torch  # only multi-node jobs need to know (a data service never imports it here)

            nodes, per_node = nodes_of(spec, gpu=torch.cuda.is_available())
        return nodes, per_node

    def launch(self, record: JobRecord, attempt: int, env: dict[str, str]) -> Handle:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        job_id = record.job_id
        nodes, per_node = self._nodes(record.spec)
        if nodes == 1:
            popen = self._start([sys.executable, *worker_command(job_id, attempt)], env, f"{job_id}-{attempt}")
            log.info("worker started", job_id=job_id, attempt=attempt, pid=popen.pid)
            return Handle(job_id, attempt, pid=popen.pid, pid_start=_start_time(popen.pid), popen=popen)
        popens = [self._start(command, node_env, f"{job_id}-{attempt}-node{rank}")
                  for rank, (command, node_env) in enumerate(node_launchers(job_id, attempt, env, nodes, per_node))]
        log.info("torchrun launchers started", job_id=job_id, attempt=attempt, nodes=nodes,
                 pids=[p.pid for p in popens])
        return Handle(job_id, attempt, pid=popens[0].pid, pid_start=_start_time(popens[0].pid), popen=popens[0],
                      extra={"popens": popens})

    def _start(self, command: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen:
        out = (self.log_dir / f"{log_name}.log").open("ab")
        try:
            return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        finally:
            out.close()

    def attach(self, heartbeat: dict[str, Any], record: JobRecord) -> Handle | None:
        if heartbeat.get("host") != socket.gethostname():
            return None  # another machine's process: only its heartbeats tell
        handle = Handle(heartbeat["job_id"], int(heartbeat["attempt"]), pid=int(heartbeat["pid"]),
                        pid_start=float(heartbeat["pid_start"]))
        return handle

    def alive(self, handle: Handle) -> bool | None:
        popens = _popens(handle)
        if popens:
            return any(p.poll() is None for p in popens)
        return _same_process(handle)

    def cancel(self, handle: Handle) -> None:
        """SIGKILL the worker's process group (its spawned DDP ranks die with it) and every other
        process of the job: torchrun starts each rank in a session of its own."""
        popens = _popens(handle)
        if handle.popen is None and _same_process(handle) or any(p.poll() is None for p in popens):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle.pid, signal.SIGKILL)
        kill_job_processes(handle.job_id)
        for popen in popens:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(10)

    def reap(self, handle: Handle) -> int | None:
        popens = _popens(handle)
        if not popens:
            return None
        try:
            codes = [p.wait(10) for p in popens]
        except subprocess.TimeoutExpired:
            self.cancel(handle)
            codes = [p.wait(10) for p in popens]
        return next((code for code in codes if code), 0)


def node_launchers(job_id: str, attempt: int, env: dict[str, str], nodes: int,
                   per_node: int) -> list[tuple[list[str], dict[str, str]]]:
    """(command, environment) of each node's torchrun launcher on this machine: the pod's command,
    its PET_* variables with node 0 on 127.0.0.1 as the master, and each node's share of the
    GPUs the scheduler gave the job (CUDA_VISIBLE_DEVICES), or of the CPU threads."""
    from quakestack.embedded.seaweed import free_ports

    torchrun = shutil.which("torchrun", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                              env.get("PATH", os.defpath)]))
    launcher = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    command = [*launcher, *container_command(job_id, attempt)[1:]]
    port = free_ports(1)[0]
    gpus = [g for g in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if g]
    out = []
    for rank in range(nodes):
        node_env = {k: v for k, v in env.items() if not k.startswith("PET_")}
        node_env.update(torchrun_variables(nodes, per_node, "127.0.0.1", port, node_rank=rank))
        if len(gpus) >= nodes * per_node:
            node_env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[rank * per_node:(rank + 1) * per_node])
        elif "OMP_NUM_THREADS" not in env:
            node_env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // (nodes * per_node)))
        out.append((command, node_env))
    return out


def _popens(handle: Handle) -> list[subprocess.Popen]:
    return list(handle.extra.get("popens") or ([handle.popen] if handle.popen is not None else []))


def job_processes(job_id: str) -> list[psutil.Process]:
    """Every process on this machine running a worker of this job (a worker, a torchrun launcher, a rank)."""
    marker = f"--job-id {job_id} "
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(proc.info["cmdline"] or []) + " "
            if WORKER_MODULE in cmdline and marker in cmdline:
                found.append(proc)
    return found


def kill_job_processes(job_id: str) -> int:
    """SIGKILL every process of a job with its process group (DataLoader workers, spawned ranks)."""
    procs = job_processes(job_id)
    own_group = os.getpgid(0)
    for proc in procs:
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError, OSError):
            group = os.getpgid(proc.pid)
            if group != own_group:
                os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=10)
    return len(procs)


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


def stop_local_workers(endpoint: str, bucket: str) -> set[tuple[str, int]]:
    """SIGKILL the workers of a stack that is being shut down whole (`quakestack up`, tests): they
    survive their service by design, but not the stack that started them. Returns the (job id, attempt)
    of each, so that their jobs can be put back in the queue without counting a failure."""
    workers = local_workers(endpoint, bucket)
    stopped = {attempt for proc in workers if (attempt := worker_attempt(proc)) is not None}
    for proc in workers:
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(workers, timeout=10)
    return stopped


def worker_attempt(proc: psutil.Process) -> tuple[str, int] | None:
    """(job id, attempt) of a worker process, read from its command line."""
    with contextlib.suppress(psutil.Error, ValueError, IndexError):
        cmdline = proc.cmdline()
        return cmdline[cmdline.index("--job-id") + 1], int(cmdline[cmdline.index("--attempt") + 1])
    return None


def check_reachable_by_workers(settings: Settings, local_paths: dict[str, str]) -> None:
    """Refuse, before a job exists, a local path its workers could not read: with the kubernetes executor
    they run in pods of their own, which see object storage but never this service's disks."""
    if getattr(settings, "jobs_executor", "local") != "kubernetes":
        return
    for what, path in local_paths.items():
        if path:
            raise FailedPrecondition(
                f"{what} is a local path of this service ({path}); with QUAKESTACK_JOBS_EXECUTOR=kubernetes the "
                "job's workers run in pods of their own, which cannot read it: upload it to object storage first")


def worker_env(settings: Settings) -> dict[str, str]:
    """A worker's environment: this process's, with every QUAKESTACK_* setting as the service has it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
    env.update(settings_env(settings))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def make_executor(settings: Settings) -> Executor:
    kind = getattr(settings, "jobs_executor", "local")
    if kind == "kubernetes":
        from quakestack.jobs.kubernetes import KubernetesExecutor

        return KubernetesExecutor(settings)
    return LocalExecutor(settings)
