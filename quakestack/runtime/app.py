"""Process entry point shared by the services: configuration, logging, storage, database, server, signals."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from quakestack.auth import check_bind_policy
from quakestack.config import ConfigError, Settings, load_settings
from quakestack.jobs.lifeline import tie_to_stack
from quakestack.logging import configure
from quakestack.metadata.database import Database
from quakestack.runtime.server import GrpcServer
from quakestack.storage import ObjectStore


@dataclass(frozen=True)
class ServiceDefinition:
    """What makes one service: its name, its ports' settings, its health names and its servicers."""

    name: str
    grpc_port_setting: str
    metrics_port_setting: str
    health_names: tuple[str, ...]
    register: Callable[[GrpcServer, Settings, ObjectStore, Database], None]


def build_server(definition: ServiceDefinition, settings: Settings) -> GrpcServer:
    """The database is reached and its schema brought to this build's before anything else: a service
    that cannot reach it, or finds a newer schema, does not start (one line, exit 1)."""
    store = ObjectStore.from_settings(settings)
    database = Database.from_settings(settings)
    try:
        database.upgrade()
    except BaseException:
        database.close()
        raise
    server = GrpcServer(definition.name, settings, port=getattr(settings, definition.grpc_port_setting),
                        metrics_port=getattr(settings, definition.metrics_port_setting),
                        health_names=list(definition.health_names), store=store, database=database)
    definition.register(server, settings, store, database)
    return server


def run_service(definition: ServiceDefinition) -> None:
    """Validate configuration (one clear line and exit 2 when wrong), then serve until SIGTERM."""
    try:
        settings = load_settings()
        warning = check_bind_policy(settings, definition.name)
    except ConfigError as exc:
        print(f"quakestack {definition.name}: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    tie_to_stack()  # started by `quakestack up` (or a test's stack): die with it, even when it is SIGKILLed
    configure(definition.name, settings.log_level, settings.log_format)
    if warning:
        structlog.get_logger().warning(warning)
    try:
        server = build_server(definition, settings)
    except Exception as exc:  # noqa: BLE001 - report start-up failures as one line, not a traceback
        print(f"quakestack {definition.name}: cannot start: {exc}", file=sys.stderr)
        sys.exit(1)
    server.start()
    server.serve_forever()
