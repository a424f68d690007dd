"""The one-machine stack: embedded S3 (when none is configured), the three services and the gateway.

Each piece is its own process. `quakestack up` and the tests' fixture both use this class, so the
tests exercise exactly what users run.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from quakestack.client import health_status, settings_channel
from quakestack.config import Settings, settings_env
from quakestack.embedded.seaweed import SeaweedServer, free_ports
from quakestack.errors import QuakestackError, Unavailable
from quakestack.jobs.lifeline import stack_identity
from quakestack.storage import ObjectStore

SERVICES = ("data", "trainer", "inference")
MODULES = {"data": "services.data", "trainer": "services.trainer", "inference": "services.inference",
           "gateway": "gateway"}


@dataclass
class Endpoints:
    """Where each process listens."""

    s3: str
    grpc: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)
    gateway: str = ""


def with_free_ports(settings: Settings) -> Settings:
    """Settings whose every port is free now: tests never collide with a running stack."""
    names = [f"{s}_grpc_port" for s in SERVICES] + [f"{s}_metrics_port" for s in SERVICES] + ["gateway_port"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    addrs = {f"{s}_addr": f"127.0.0.1:{ports[f'{s}_grpc_port']}" for s in SERVICES}
    return settings.replace(**ports, **addrs)


class Stack:
    """Starts the processes in dependency order, waits until all are healthy, stops them all."""

    def __init__(self, settings: Settings, *, state_dir: str | Path | None = None, python: str = sys.executable):
        self.settings = settings
        self.state_dir = Path(state_dir or Path(settings.storage_dir).parent).resolve()
        self.log_dir = self.state_dir / "logs"
        self.python = python
        self.seaweed: SeaweedServer | None = None
        self.processes: dict[str, subprocess.Popen] = {}

    # -- start --------------------------------------------------------------------------------
    def start(self, timeout_s: float = 90.0, names: tuple[str, ...] = (*SERVICES, "gateway")) -> Endpoints:
        """Embedded storage (unless settings name one), then the processes `names` (benchmarks start one)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            if not self.settings.s3_endpoint:
                self.seaweed = SeaweedServer(Path(self.settings.storage_dir), log_path=self.log_dir / "s3.log",
                                             bucket=self.settings.s3_bucket)
                self.seaweed.start(timeout_s)
                self.settings = self.settings.replace(
                    s3_endpoint=self.seaweed.endpoint, s3_access_key=self.seaweed.credentials.access_key,
                    s3_secret_key=self.seaweed.credentials.secret_key, s3_secure=False)
                # the services' identities cannot create buckets: the admin identity does it once here
                ObjectStore.from_settings(self.settings).ensure_bucket()
            for name in names:
                self.start_process(name)
            self.wait_healthy(timeout_s, names)
        except BaseException:
            self.stop()
            raise
        return self.endpoints()

    def start_process(self, name: str) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
        env.update(settings_env(self.process_settings(name)))
        env.update(stack_identity())  # the service dies with this process; its job workers leave when it is gone
        env["PYTHONUNBUFFERED"] = "1"
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen([self.python, "-m", MODULES[name]], env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=str(Path(__file__).resolve().parent.parent),
                                # own session: a terminal's Ctrl-C reaches only `up`, which stops each process
                                # once, in order (a second signal mid-shutdown read as "killed by SIGTERM")
                                start_new_session=True)
        log.close()
        self.processes[name] = proc
        return proc

    def process_settings(self, name: str) -> Settings:
        """Least privilege: each service gets its own S3 identity (embedded storage); the gateway none."""
        if name == "gateway":
            return self.settings.replace(s3_endpoint="", s3_access_key="", s3_secret_key="")
        if self.seaweed is not None:
            creds = self.seaweed.service_credentials[name]
            return self.settings.replace(s3_access_key=creds.access_key, s3_secret_key=creds.secret_key)
        return self.settings

    def endpoints(self) -> Endpoints:
        s = self.settings
        return Endpoints(
            s3=s.s3_endpoint,
            grpc={n: getattr(s, f"{n}_addr") for n in SERVICES},
            metrics={n: f"http://127.0.0.1:{getattr(s, f'{n}_metrics_port')}/metrics" for n in SERVICES},
            gateway=f"{'https' if s.tls_cert_file else 'http'}://127.0.0.1:{s.gateway_port}",
        )

    def wait_healthy(self, timeout_s: float, names: tuple[str, ...] = (*SERVICES, "gateway")) -> None:
        """Wait until every gRPC service answers SERVING and the gateway's /healthz answers 200."""
        deadline = time.monotonic() + timeout_s
        pending = list(names)
        while pending:
            name = pending[0]
            proc = self.processes.get(name)
            if proc is not None and proc.poll() is not None:
                raise Unavailable(f"{name} exited with code {proc.returncode}:\n{self.log_tail(name)}")
            if self._healthy(name):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise Unavailable(f"{name} not healthy within {timeout_s:.0f}s:\n{self.log_tail(name)}")
            time.sleep(0.2)

    def _healthy(self, name: str) -> bool:
        if name == "gateway":
            try:
                context = ssl.create_default_context(cafile=self.settings.tls_ca_file or None) \
                    if self.settings.tls_cert_file else None
                with urllib.request.urlopen(self.endpoints().gateway + "/healthz", timeout=2,
                                            context=context) as response:
                    return response.status == 200
            except OSError:
                return False
        with settings_channel(self.settings, getattr(self.settings, f"{name}_addr")) as ch:
            return health_status(ch) == "SERVING"

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # -- stop ---------------------------------------------------------------------------------
    def stop_process(self, name: str, timeout_s: float | None = None) -> int | None:
        """SIGTERM and wait for the graceful exit; SIGKILL only past the grace period."""
        proc = self.processes.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s if timeout_s is not None else self.settings.grace_s + 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop(self) -> dict[str, int | None]:
        """Gateway first (no new work), then services, then storage; returns the exit codes."""
        codes = {}
        for name in ("gateway", *reversed(SERVICES)):
            if name in self.processes:
                codes[name] = self.stop_process(name)
        if self.settings.s3_endpoint:
            from quakestack.jobs.executor import stop_local_workers

            requeue_interrupted(self.settings, stop_local_workers(self.settings.s3_endpoint, self.settings.s3_bucket))
        if self.seaweed is not None:
            self.seaweed.stop()
        return codes

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def requeue_interrupted(settings: Settings, workers: set[tuple[str, int]]) -> None:
    """The jobs of workers a clean stop ended go back to the queue (a stopping one is stopped) without spending
    a retry: stopping the stack is not a failure of theirs. Best effort: a database that is away keeps them
    RUNNING, and the next start counts them lost."""
    if not workers:
        return
    from quakestack.metadata.database import Database
    from quakestack.metadata.jobs import JobStore

    db = Database.from_settings(settings)
    try:
        jobs = JobStore(db)
        for job_id, attempt in sorted(workers):
            jobs.interrupt(job_id, attempt, "the stack was stopped")
    except QuakestackError as exc:
        import structlog

        structlog.get_logger().warning("interrupted jobs not requeued", error=str(exc))
    finally:
        db.close()
