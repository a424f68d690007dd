"""Shared fixtures: one real stack per test session (real weed, real gRPC servers, free ports)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from quakestack.client import channel
from quakestack.config import Settings, load_settings
from quakestack.embedded.postgres import PostgresServer
from quakestack.metadata.database import Database, sqlite_url
from quakestack.stack import Stack, with_free_ports
from quakestack.storage import ObjectStore

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def fresh_settings(state_dir: Path, **changes) -> Settings:
    """Defaults (not the caller's environment) with free ports and a private storage directory."""
    return with_free_ports(load_settings({})).replace(storage_dir=str(state_dir / "s3"),
                                                      cache_dir=str(state_dir / "cache"), **changes)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir = tmp_path_factory.mktemp("stack")
    # TESTS_INFERENCE_PROCESSES=2 runs the whole suite against a two-process inference service
    processes = int(os.environ.get("TESTS_INFERENCE_PROCESSES", "1"))
    running = Stack(fresh_settings(state_dir, health_interval_s=0.5, data_allowed_dirs=(state_dir / "allowed",),
                                   inference_processes=processes), state_dir=state_dir)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def store(stack: Stack) -> ObjectStore:
    return ObjectStore.from_settings(stack.settings)


@pytest.fixture(scope="session")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's synthetic datasets are built (once each: tests.datasets caches them)."""
    return tmp_path_factory.mktemp("datasets")


@pytest.fixture(scope="session")
def metadata(stack: Stack) -> Iterator[Database]:
    """The session stack's metadata database (the same file or server its services use)."""
    db = Database.from_settings(stack.settings)
    yield db
    db.close()


@pytest.fixture(scope="session")
def data_channel(stack: Stack) -> Iterator[grpc.Channel]:
    with channel(stack.settings.data_addr) as ch:
        yield ch


@pytest.fixture(scope="session")
def trainer_channel(stack: Stack) -> Iterator[grpc.Channel]:
    with channel(stack.settings.trainer_addr) as ch:
        yield ch


@pytest.fixture(scope="session")
def inference_channel(stack: Stack) -> Iterator[grpc.Channel]:
    if stack.settings.inference_processes == 1:
        with channel(stack.settings.inference_addr) as ch:
            yield ch
        return
    with data_plane_channel(stack) as ch:  # every test's data-plane call through a data-plane process
        yield ch


def data_plane_channel(stack: Stack, tries: int = 40) -> grpc.Channel:
    """A connection of its own that the kernel gave to one of the service's data-plane processes (not the
    primary): probed with a Predict of an absent model, which only the process that answers counts."""
    from quakestack.client import transport_options
    from quakestack.inference.processes import METRICS_METHOD
    from quakestack.v1 import inference_pb2, inference_pb2_grpc
    from tests.data_plane import ask, wait_serving
    from tests.helpers import sample_value

    def probes_counted() -> float:
        return sum(sample_value(ask(process, METRICS_METHOD).decode(), "grpc_server_handled_total",
                                grpc_method="Predict", grpc_code="NotFound") for process in wait_serving(stack))

    options = [*transport_options(stack.settings.max_message_mb << 20), ("grpc.use_local_subchannel_pool", 1)]
    for _ in range(tries):
        ch = grpc.insecure_channel(stack.settings.inference_addr, options=options)
        before = probes_counted()
        with contextlib.suppress(grpc.RpcError):
            inference_pb2_grpc.InferenceServiceStub(ch).Predict(
                inference_pb2.PredictRequest(model="probe-of-the-data-plane"), timeout=10)
        if probes_counted() > before:
            return ch
        ch.close()
    raise AssertionError(f"no connection reached a data-plane process in {tries} tries")


STACK_MARKERS = ("quakestack.jobs.worker", "services.data", "services.trainer", "services.inference", "gateway",
                 "weed", "multiprocessing.forkserver", "multiprocessing.resource_tracker",  # a worker's render pool
                 "postgres")


def _test_stack_processes(basetemp: Path) -> list:
    """Processes of any test stack (services, gateway, workers, weed, postgres) still alive: they live in basetemp."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.pid == os.getpid() or not any(marker in cmdline for marker in STACK_MARKERS):
            continue
        if str(basetemp) in cmdline:  # a postmaster (-D <data dir>): no need for an environ another user may hide
            found.append(proc)
            continue
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        if str(basetemp) in cmdline or any(str(basetemp) in env.get(k, "") for k in
                                           ("QUAKESTACK_CACHE_DIR", "QUAKESTACK_STORAGE_DIR")):
            found.append(proc)
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After every fixture is torn down, no process of a test stack may be left behind."""
    import psutil

    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or session.config.option.collectonly:
        return
    basetemp = factory.getbasetemp()
    leftovers = _test_stack_processes(basetemp)
    _, alive = psutil.wait_procs(leftovers, timeout=10)
    if alive:
        described = [f"{p.pid}: {' '.join(p.cmdline())[:160]}" for p in alive if p.is_running()]
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        if described:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            print("\nprocesses of a test stack left behind (killed now):\n  " + "\n  ".join(described))


def own_sqlite(directory: Path) -> str:
    """An SQLite metadata database of a test's own stack (a stack on its own bucket needs its own rows)."""
    return sqlite_url(Path(directory) / "own-metadata.db")


@pytest.fixture(params=["sqlite", "postgresql"])
def own_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh metadata database for a test's own stack, on each backend: SQLite, then a real PostgreSQL."""
    if request.param == "sqlite":
        return own_sqlite(tmp_path)
    return fresh_database(request.getfixturevalue("postgres_server"))


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session; each test stack takes a database of its own (fresh_database)."""
    with PostgresServer(tmp_path_factory.mktemp("postgres") / "data") as server:
        yield server


def fresh_database(server: PostgresServer) -> str:
    """A new empty database on the server; its SQLAlchemy URL (password included)."""
    return server.create_database()
