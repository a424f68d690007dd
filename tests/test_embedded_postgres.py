"""The embedded PostgreSQL server: a real postmaster, its data across restarts and crashes, and no process left."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest
import sqlalchemy as sa

from quakestack.embedded import postgres
from quakestack.embedded.postgres import PostgresServer
from quakestack.errors import Unavailable
from tests.conftest import fresh_database

REPO_ROOT = Path(__file__).resolve().parent.parent

def _libpq_url(server: PostgresServer) -> str:
    return server.url.replace("postgresql+psycopg://", "postgresql://", 1)


def _running(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (a zombie nobody reaps is gone)."""
    alive = []
    for proc in procs:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def _with_data_dir(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if str(data_dir) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return _running(found)


def _effective_uids(procs: list[psutil.Process]) -> list[int]:
    uids = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            uids.append(proc.uids().effective)
    return uids


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while (procs := _running(procs)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return procs


def _server_processes(server: PostgresServer) -> list[psutil.Process]:
    assert server.process is not None
    postmaster = psutil.Process(server.process.pid)
    return [postmaster, *postmaster.children(recursive=True)]


def test_rows_survive_restart_and_crash_and_stop_leaves_nothing(tmp_path: Path) -> None:
    private = tmp_path / "private"  # as root, the server's account may not traverse it (nor pytest-of-root)
    private.mkdir(mode=0o700)
    data_dir = private / "pg" / "data"
    with PostgresServer(data_dir) as server:
        processes = _server_processes(server)
        if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as an unprivileged account
            uids = _effective_uids(processes)  # short-lived children may end meanwhile: the living ones count
            assert uids and 0 not in uids
            assert data_dir.stat().st_uid == processes[0].uids().effective
        with psycopg.connect(_libpq_url(server)) as conn:
            conn.execute("CREATE TABLE quakes (id serial PRIMARY KEY, magnitude real NOT NULL)")
            conn.execute("INSERT INTO quakes (magnitude) VALUES (4.5), (6.1)")
            conn.commit()
            private.chmod(0o700)  # what each root pytest session does to pytest-of-root, the server running or not
            conn.execute("CHECKPOINT")  # writes pg_control, which PostgreSQL opens by its absolute path
        port = server.port
        server.restart()
        assert server.port == port
        with psycopg.connect(_libpq_url(server)) as conn:
            assert conn.execute("SELECT magnitude FROM quakes ORDER BY id").fetchall() == [(4.5,), (6.1,)]
            conn.execute("INSERT INTO quakes (magnitude) VALUES (7.2)")
        server.kill()  # a crash: committed rows come back through WAL recovery
        server.start()
        with server.connect() as conn:
            assert conn.execute("SELECT count(*) FROM quakes").fetchone() == (3,)
        processes = _server_processes(server)
    assert server.process is None
    assert not _wait_gone(processes, 5), "stop() left PostgreSQL processes behind"
    assert not _with_data_dir(data_dir)

    log = server.log_path.read_text()
    assert "database system was interrupted" in log  # the crash was recovered from
    assert server.password not in log
    assert server.password not in server.url_without_password()
    credentials = data_dir.parent / "postgres-credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert PostgresServer(data_dir).password == server.password  # kept for the next start


def test_fresh_databases_are_empty_and_separate(postgres_server: PostgresServer) -> None:
    first, second = fresh_database(postgres_server), fresh_database(postgres_server)
    assert first != second and first.startswith("postgresql+psycopg://")
    engines = [sa.create_engine(first), sa.create_engine(second)]
    try:
        with engines[0].begin() as conn:
            conn.execute(sa.text("CREATE TABLE jobs (id text PRIMARY KEY)"))
            conn.execute(sa.text("INSERT INTO jobs VALUES ('j1')"))
        with engines[1].connect() as conn:
            assert not sa.inspect(conn).get_table_names()
        with engines[0].connect() as conn:
            assert conn.execute(sa.text("SELECT id FROM jobs")).scalars().all() == ["j1"]
    finally:
        for engine in engines:
            engine.dispose()


CHILD = """
import sys, time
from pathlib import Path
from quakestack.embedded.postgres import PostgresServer
server = PostgresServer(Path(sys.argv[1])).start()
print(server.process.pid, flush=True)
time.sleep(600)
"""


def test_server_dies_with_a_sigkilled_parent(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(data_dir)], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                             text=True)
    try:
        line = child.stdout.readline()
        assert line.strip().isdigit(), f"the child did not start the server (exit {child.poll()})"
        postmaster = psutil.Process(int(line))
        processes = [postmaster, *postmaster.children(recursive=True)]
        assert postmaster in _with_data_dir(data_dir)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    left = _wait_gone(processes, 15)
    assert not left, f"left behind: {[' '.join(p.cmdline()).strip() for p in left]}"
    assert not _with_data_dir(data_dir)


def test_missing_binaries_say_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(postgres, "DEBIAN_ROOT", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(Unavailable, match=r"scripts/setup.sh --dev .*package postgresql"):
        PostgresServer(tmp_path / "data").start()
