"""An embedded PostgreSQL server: Debian's binaries on a private data directory, for the tests and benchmarks.

It is a real, durable server (no fsync=off): tests restart or crash it in the middle of a job and expect
committed rows back. It listens on 127.0.0.1 only, with a password (scram-sha-256) generated once and kept
beside the data directory; its unix socket lives there too, never in /var/run. The server dies with the
process that started it, even on SIGKILL (PR_SET_PDEATHSIG on the postmaster; its backends follow it).

PostgreSQL refuses to run as root: as root, the binaries run as the `postgres` system user (else `nobody`)
and the data directory is chowned to it. That user may not traverse the directories above it (pytest's
/tmp/pytest-of-root is 0700, and every root pytest session resets it to 0700 at its start), and PostgreSQL
opens files by absolute path all along (pg_control at each checkpoint), so it never gets those paths: this
process opens the data and socket directories and the server reaches them as /proc/self/fd/<n>, descriptors
it inherits (and so do its children). Its command line names the real directory in `quakestack.data_directory`.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from quakestack.embedded.seaweed import free_ports
from quakestack.errors import Unavailable
from quakestack.jobs.fanout import die_with_parent

if TYPE_CHECKING:
    import psutil
    import psycopg

DEBIAN_ROOT = Path("/usr/lib/postgresql")
USER = "quakestack"  # the superuser initdb creates
DATABASE = "quakestack"
HOST = "127.0.0.1"
MISSING = ("PostgreSQL's server binaries (initdb, postgres) were not found: run scripts/setup.sh --dev "
           "(Debian package postgresql)")


def postgres_bindir() -> Path:
    """Debian's binaries of the highest installed major (/usr/lib/postgresql/<major>/bin), else pg_config's."""
    majors = [p for p in DEBIAN_ROOT.glob("*/bin") if p.parent.name.isdigit() and (p / "initdb").exists()]
    if majors:
        return max(majors, key=lambda p: int(p.parent.name))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            bindir = Path(out.stdout.strip())
            if (bindir / "initdb").exists() and (bindir / "postgres").exists():  # libpq-dev's pg_config alone: no
                return bindir
    raise Unavailable(MISSING)


def load_or_create_password(path: Path) -> str:
    """The superuser's password, generated once and kept beside the data directory (mode 0600) for restarts."""
    if path.exists():
        return json.loads(path.read_text())["password"]
    password = secrets.token_urlsafe(30)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"user": USER, "password": password}, fh)
    return password


@dataclass(frozen=True)
class RunAs:
    """The unprivileged account the server runs as when this process is root."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]

    @classmethod
    def for_root(cls) -> RunAs | None:
        """None when not root (the server runs as this user); else `postgres`, or `nobody` without it."""
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                return cls(name, entry.pw_uid, entry.pw_gid, tuple(os.getgrouplist(name, entry.pw_gid)))
        raise Unavailable("running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as")

    def popen_kwargs(self) -> dict:
        # Popen drops privileges after fork and before preexec_fn, so the PR_SET_PDEATHSIG set there survives:
        # the kernel clears it on a change of effective uid or gid, not on exec of a plain binary.
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}

    def own(self, path: Path) -> None:
        """chown -R, without following links."""
        os.chown(path, self.uid, self.gid, follow_symlinks=False)
        for dirpath, dirnames, filenames in os.walk(path):
            for name in (*dirnames, *filenames):
                os.chown(os.path.join(dirpath, name), self.uid, self.gid, follow_symlinks=False)


@contextlib.contextmanager
def opened_dirs(*paths: Path) -> Iterator[list[int]]:
    """O_PATH descriptors of directories, for a child to reach as /proc/self/fd/<n> whatever lies above them."""
    fds: list[int] = []
    try:
        for path in paths:
            fds.append(os.open(path, os.O_PATH | os.O_DIRECTORY))
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


def tied_to(parent: int) -> Callable[[], None]:
    """A preexec_fn: die with `parent` (Popen calls it after dropping privileges, which would clear the signal)."""

    def tie() -> None:
        die_with_parent()
        if os.getppid() != parent:  # the parent died before the prctl
            os.kill(os.getpid(), signal.SIGKILL)

    return tie


def _running(proc: psutil.Process) -> bool:
    import psutil

    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class PostgresServer:
    """One postmaster on a private data directory; start() initialises it on first use and waits for SELECT 1."""

    def __init__(self, data_dir: Path, *, port: int | None = None, log_path: Path | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_ports(1)[0]
        self.log_path = Path(log_path) if log_path else self.data_dir.parent / "postgres.log"
        self.credentials_path = self.data_dir.parent / "postgres-credentials.json"
        self.socket_dir = self.data_dir.parent / "postgres-socket"
        if (self.data_dir / "PG_VERSION").exists() and not self.credentials_path.exists():
            raise Unavailable(f"{self.data_dir} holds a database whose password was in {self.credentials_path}, "
                              "now missing: remove the data directory to start afresh")
        self.password = load_or_create_password(self.credentials_path)
        self.run_as = RunAs.for_root()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the `quakestack` database, password included."""
        return self.url_for(DATABASE)

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://{USER}:{quote(self.password, safe='')}@{HOST}:{self.port}/{database}"

    def url_without_password(self) -> str:
        return f"postgresql+psycopg://{USER}:***@{HOST}:{self.port}/{DATABASE}"

    def connect(self, database: str = DATABASE, *, autocommit: bool = False,
                connect_timeout: int = 10) -> psycopg.Connection:
        import psycopg

        return psycopg.connect(host=HOST, port=self.port, user=USER, password=self.password, dbname=database,
                               autocommit=autocommit, connect_timeout=connect_timeout)

    def _spawn_kwargs(self, fds: list[int]) -> dict:
        """The environment less libpq's PG* variables (they would redirect the binaries), the account, the tie."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        return {"stdin": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "cwd": "/", "env": env,
                "pass_fds": fds, "preexec_fn": tied_to(os.getpid()),
                **(self.run_as.popen_kwargs() if self.run_as else {})}

    def _log_tail(self, lines: int = 20) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(max(0, fh.seek(0, os.SEEK_END) - 8192))
                text = fh.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _initdb(self, bindir: Path, timeout_s: float) -> None:
        """initdb into a staging directory beside data_dir, then rename the cluster into place.

        A half-made cluster (PG_VERSION is among initdb's first files) never sits in data_dir looking ready.
        """
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise Unavailable(f"{self.data_dir} is neither empty nor a PostgreSQL data directory")
        staging = Path(tempfile.mkdtemp(prefix=f".{self.data_dir.name}-initdb-", dir=self.data_dir.parent))
        try:
            fd = os.open(staging / "pwfile", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(self.password + "\n")
            if self.run_as:
                self.run_as.own(staging)
            with opened_dirs(staging) as fds, self.log_path.open("ab") as log:
                at = f"/proc/self/fd/{fds[0]}"
                command = [str(bindir / "initdb"), "-D", f"{at}/data", "-U", USER, f"--pwfile={at}/pwfile",
                           "--encoding=UTF8", "--locale=C", "--auth-host=scram-sha-256", "--auth-local=trust",
                           "--no-instructions"]
                done = subprocess.run(command, stdout=log, timeout=timeout_s,  # noqa: PLW1509 - prctl only
                                      **self._spawn_kwargs(fds))
            if done.returncode != 0:
                raise Unavailable(f"initdb failed (exit {done.returncode}) for {self.data_dir}; {self.log_path} "
                                  f"ends:\n{self._log_tail()}")
            with contextlib.suppress(FileNotFoundError):
                self.data_dir.rmdir()  # empty (checked above)
            (staging / "data").rename(self.data_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def command(self, bindir: Path, data_fd: int, socket_fd: int) -> list[str]:
        return [str(bindir / "postgres"), "-D", f"/proc/self/fd/{data_fd}", "-p", str(self.port),
                "-c", f"listen_addresses={HOST}", "-c", f"unix_socket_directories=/proc/self/fd/{socket_fd}",
                "-c", "shared_buffers=32MB", "-c", "max_connections=200", "-c", "cluster_name=quakestack",
                "-c", f"quakestack.data_directory={self.data_dir}"]  # where it runs, for ps and leftover checks

    def start(self, timeout_s: float = 60.0) -> PostgresServer:
        """initdb on first start, then the postmaster; returns once the `quakestack` database answers.

        The kernel's death signal follows the *thread* that forks: call start() from one that lives as long
        as the server should (the main thread, a session fixture), not from a short-lived worker thread.
        """
        if self.process is not None and self.process.poll() is None:
            return self
        bindir = postgres_bindir()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bindir, timeout_s)
        self.socket_dir.mkdir(exist_ok=True, mode=0o700)
        if self.run_as:
            if self.data_dir.stat().st_uid != self.run_as.uid:
                self.run_as.own(self.data_dir)
            self.run_as.own(self.socket_dir)
        with opened_dirs(self.data_dir, self.socket_dir) as fds, self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command(bindir, *fds), stdout=log, start_new_session=True,
                                            **self._spawn_kwargs(fds))  # noqa: PLW1509 - prctl only, no locks
        try:
            self._wait_ready(timeout_s)
            self._create_database()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        """Until an authenticated SELECT 1 over TCP succeeds (the log says why when the postmaster exits)."""
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise Unavailable(f"postgres exited with code {self.process.returncode}; {self.log_path} ends:\n"
                                  f"{self._log_tail()}")
            try:
                with self.connect("postgres", autocommit=True, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except Exception as exc:  # noqa: BLE001 - any other failure means "not ready yet"
                if "password authentication failed" in str(exc):
                    raise Unavailable(f"postgres refused the password in {self.credentials_path}") from None
                last_error = exc
                time.sleep(0.1)
        raise Unavailable(f"postgres did not answer on {HOST}:{self.port} within {timeout_s:.0f}s: {last_error}; "
                          f"{self.log_path} ends:\n{self._log_tail()}")

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (`qs_<12 hex>` unless named) on this server; its SQLAlchemy URL."""
        name = name or f"qs_{uuid.uuid4().hex[:12]}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"database name {name!r}: lower-case letters, digits and '_' only")
        with self.connect("postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def _create_database(self) -> None:
        with self.connect("postgres", autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
        with self.connect() as conn:
            conn.execute("SELECT 1")

    def stop(self, timeout_s: float = 30.0) -> None:
        """Fast shutdown (SIGINT, what `pg_ctl stop -m fast` sends): sessions end, a checkpoint is written.

        The postmaster exits only after all its backends have; SIGKILL to it and them after timeout_s.
        """
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._kill_all(proc)

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends at once, a crash; the next start() recovers from the WAL."""
        proc, self.process = self.process, None
        if proc is not None:
            self._kill_all(proc)

    @staticmethod
    def _kill_all(proc: subprocess.Popen) -> None:
        """SIGKILL the postmaster and every child it has; wait until none runs (init's zombies count as gone).

        Each child is a session of its own (PostgreSQL calls setsid() in every child), so a signal to the
        postmaster's process group would miss them; SIGSTOP first keeps it from forking more meanwhile.
        """
        import psutil

        if proc.poll() is not None:  # gone already (its children end when they see it gone); its pid may be reused
            return
        members: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            proc.send_signal(signal.SIGSTOP)
            members = psutil.Process(proc.pid).children(recursive=True)
        for member in members:
            with contextlib.suppress(psutil.Error):
                member.kill()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        deadline = time.monotonic() + 10
        while members and time.monotonic() < deadline:
            members = [m for m in members if _running(m)]
            time.sleep(0.05)

    def restart(self, timeout_s: float = 60.0) -> PostgresServer:
        """stop() then start() on the same data directory and port."""
        self.stop()
        return self.start(timeout_s)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
