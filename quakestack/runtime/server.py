"""gRPC server bootstrap shared by every service.

Health (grpc.health.v1, one name per service, NOT_SERVING while a dependency is down: object storage,
the metadata database, and until an older bucket's metadata is imported), reflection,
Prometheus on its own port, message-size and keepalive options, and a graceful SIGTERM: every name
goes NOT_SERVING, in-flight calls drain within the grace period, shutdown hooks run, exit 0.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import REGISTRY, start_http_server

from quakestack import metrics
from quakestack.audit import AuditTrail
from quakestack.auth import Authorizer
from quakestack.client import transport_options
from quakestack.config import Settings
from quakestack.metadata.database import Database
from quakestack.runtime.access import AccessInterceptor
from quakestack.runtime.interceptor import DATA_PLANE_RPCS, ObservabilityInterceptor
from quakestack.storage import ObjectStore
from quakestack.tls import server_credentials

log = structlog.get_logger()
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def grpc_options(settings: Settings) -> list[tuple[str, Any]]:
    """Message limits from the configuration; keepalive so idle connections through proxies survive."""
    return [
        *transport_options(settings.max_message_mb * 1024 * 1024),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def runtime_interceptors(settings: Settings, authorizer: Authorizer,
                         audit: AuditTrail) -> list[grpc.ServerInterceptor]:
    """Metrics, request ids and error mapping outside; tokens, rates and the audit inside (outermost first)."""
    quiet = frozenset() if settings.log_data_plane_calls else DATA_PLANE_RPCS
    return [ObservabilityInterceptor(quiet), AccessInterceptor(authorizer, audit)]


def bind_port(server: grpc.Server, settings: Settings, port: int) -> int:
    """The service's port on bind_host, with TLS (and client certificates) when the settings configure it."""
    credentials = server_credentials(settings)
    address = f"{settings.bind_host}:{port}"
    bound = server.add_insecure_port(address) if credentials is None else server.add_secure_port(address, credentials)
    if bound == 0:
        raise OSError(f"cannot bind {address}")
    return bound


def wait_for_stop_signal() -> None:
    """Block until SIGTERM or SIGINT (main thread only)."""
    requested = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: requested.set())
    while not requested.wait(0.5):
        pass


class DependencyWatcher(threading.Thread):
    """Probes dependencies (object storage) and flips health; logs each transition once."""

    def __init__(self, checks: dict[str, Callable[[], None]], on_change: Callable[[bool], None],
                 interval_s: float):
        super().__init__(name="dependency-watcher", daemon=True)
        self.checks = checks
        self.on_change = on_change
        self.interval_s = interval_s
        self.healthy: bool | None = None
        self._stop = threading.Event()

    def probe(self) -> bool:
        problems = []
        for name, check in self.checks.items():
            try:
                check()
            except Exception as exc:  # noqa: BLE001 - any failure makes the dependency unhealthy
                problems.append(f"{name}: {exc}")
        healthy = not problems
        if healthy != self.healthy:
            if healthy:
                log.info("dependencies reachable", dependencies=sorted(self.checks))
            else:
                log.error("dependency unreachable; serving NOT_SERVING until it returns", problems=problems)
            self.healthy = healthy
            self.on_change(healthy)
        return healthy

    def run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.probe()

    def stop(self) -> None:
        self._stop.set()


class GrpcServer:
    """A gRPC server with quakestack's runtime around it."""

    def __init__(self, service: str, settings: Settings, *, port: int, metrics_port: int,
                 health_names: list[str], store: ObjectStore | None = None, database: Database | None = None,
                 max_workers: int = 64):
        self.service = service
        self.settings = settings
        self.health_names = health_names
        self.store = store
        self.database = database
        self.authorizer = Authorizer.from_settings(settings)
        self.audit = AuditTrail(service, store, settings.audit_flush_s)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=service),
                                  interceptors=runtime_interceptors(settings, self.authorizer, self.audit),
                                  options=grpc_options(settings),
                                  maximum_concurrent_rpcs=None)
        self.health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = bind_port(self.server, settings, port)
        self.metrics_port = metrics_port
        self._metrics_server = None
        self._stopped = threading.Event()
        self._shutdown_hooks: list[Callable[[], None]] = []
        self._started_hooks: list[Callable[[], None]] = []
        self._stopping_hooks: list[Callable[[float], None]] = []
        self.metrics_registry: Any = REGISTRY  # /metrics; a service of several processes merges theirs
        self._dependency_hooks: list[Callable[[bool], None]] = []
        checks: dict[str, Callable[[], None]] = {}
        if store is not None:
            checks["object storage"] = self._check_storage
        if database is not None:
            checks["metadata database"] = self._check_database
        self.watcher = DependencyWatcher(checks, self._set_serving, settings.health_interval_s)
        self._bucket_ready = False
        self._imported = False

    def add(self, add_to_server: Callable[[Any, grpc.Server], None], servicer: Any) -> None:
        add_to_server(servicer, self.server)

    def add_local_port(self, path: str) -> None:
        """Also listen on a Unix socket (local credentials) for this service's own other processes."""
        credentials = grpc.local_server_credentials(grpc.LocalConnectionType.UDS)
        if self.server.add_secure_port(f"unix:{path}", credentials) == 0:
            raise OSError(f"cannot bind unix:{path}")

    def on_started(self, hook: Callable[[], None]) -> None:
        """Run hook once the server accepts calls."""
        self._started_hooks.append(hook)

    def on_stopping(self, hook: Callable[[float], None]) -> None:
        """Run hook(grace_s) as the stop begins, beside the drain (other processes of this service)."""
        self._stopping_hooks.append(hook)

    def on_shutdown(self, hook: Callable[[], None]) -> None:
        """Run hook after the RPCs drained (stop worker pools, flush state)."""
        self._shutdown_hooks.append(hook)

    def on_dependencies(self, hook: Callable[[bool], None]) -> None:
        """Called with True/False whenever dependencies become reachable/unreachable."""
        self._dependency_hooks.append(hook)

    def _check_storage(self) -> None:
        assert self.store is not None
        if not self._bucket_ready:
            self.store.ensure_bucket()
            self._bucket_ready = True
        self.store.ping()

    def _check_database(self) -> None:
        """Reachable, and (once, with storage) an older bucket's metadata imported: only then is it ready."""
        assert self.database is not None
        try:
            self.database.ping()
        except Exception:
            metrics.DATABASE_UP.set(0)
            raise
        metrics.DATABASE_UP.set(1)
        if not self._imported and self.store is not None:
            from quakestack.metadata.importer import import_object_storage

            self._check_storage()
            import_object_storage(self.database, self.store)
            self._imported = True

    def _set_serving(self, healthy: bool) -> None:
        if self._stopped.is_set():
            return
        metrics.STORAGE_UP.set(1 if healthy else 0)
        if healthy:  # state is recovered before the service says SERVING
            self._run_dependency_hooks(healthy)
        status = SERVING if healthy else NOT_SERVING
        for name in ["", *self.health_names]:
            self.health.set(name, status)
        if not healthy:
            self._run_dependency_hooks(healthy)

    def _run_dependency_hooks(self, healthy: bool) -> None:
        for hook in self._dependency_hooks:
            try:
                hook(healthy)
            except Exception:  # noqa: BLE001 - a failing hook must not stop health reporting
                log.exception("dependency hook failed")

    def start(self) -> GrpcServer:
        if self.settings.grpc_reflection:
            names = [*self.health_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
            reflection.enable_server_reflection(names, self.server)
        for name in ["", *self.health_names]:
            self.health.set(name, NOT_SERVING)
        server, _thread = start_http_server(self.metrics_port, addr=self.settings.bind_host,
                                            registry=self.metrics_registry)
        self._metrics_server = server
        self.metrics_port = server.server_port
        self.server.start()
        for hook in self._started_hooks:
            hook()
        self.watcher.probe()
        self.watcher.start()
        log.info("serving", grpc_port=self.port, metrics_port=self.metrics_port, health_names=self.health_names,
                 database=self.database.safe_url if self.database is not None else None,
                 auth="on" if self.authorizer.enabled else "off", tls=bool(self.settings.tls_cert_file),
                 mtls=bool(self.settings.tls_client_ca_file))
        return self

    def stop(self, grace_s: float | None = None) -> None:
        """NOT_SERVING everywhere, drain in-flight RPCs within the grace period, run hooks."""
        if self._stopped.is_set():
            return
        grace_s = self.settings.grace_s if grace_s is None else grace_s
        log.info("shutting down", grace_s=grace_s)
        self.health.enter_graceful_shutdown()
        self._stopped.set()
        self.watcher.stop()
        stopped = self.server.stop(grace_s)
        for stopping in self._stopping_hooks:
            try:
                stopping(grace_s)
            except Exception:  # noqa: BLE001 - one failing hook must not keep the drain from finishing
                log.exception("stopping hook failed")
        stopped.wait()
        for hook in self._shutdown_hooks:
            try:
                hook()
            except Exception:  # noqa: BLE001 - one failing hook must not keep the others from running
                log.exception("shutdown hook failed")
        self.audit.close()
        if self.database is not None:
            self.database.close()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        log.info("stopped")

    def serve_forever(self) -> None:
        """Block until SIGTERM or SIGINT, then stop gracefully."""
        wait_for_stop_signal()
        self.stop()
