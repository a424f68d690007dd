"""grpc.aio channels to the services, one per backend, with round-robin, retries and deadlines.

Targets come from settings (`dns:///name:port` resolves every pod of a Kubernetes headless service;
round_robin then spreads calls, which one long HTTP/2 connection behind an L4 balancer would not).
Idempotent reads (the RPCs bound to GET) are retried on UNAVAILABLE by gRPC's own retry policy, in
the channel's service config, so a restarting pod costs a retry instead of a 503.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.routes import Route
from quakestack.client import transport_options
from quakestack.config import Settings
from quakestack.tls import client_credentials

# Which backend serves each gRPC service (a new service of an existing backend needs no change).
SERVICE_BACKENDS: dict[str, str] = {
    "quakestack.v1.DataService": "data",
    "quakestack.v1.CatalogService": "data",
    "quakestack.v1.TrainerService": "trainer",
    "quakestack.v1.ModelRegistryService": "trainer",
    "quakestack.v1.SweepService": "trainer",
    "quakestack.v1.InferenceService": "inference",
    "inference.GRPCInferenceService": "inference",  # the Open Inference Protocol, same process
}
# Deadlines, seconds: unary calls answer promptly; streams follow jobs for hours (None = no deadline).
UNARY_DEADLINE_S = 30.0
UPLOAD_DEADLINE_S = 3600.0
STREAM_DEADLINE_S: float | None = None
HEALTH_DEADLINE_S = 2.0
RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def targets(settings: Settings) -> dict[str, str]:
    return {"data": settings.data_addr, "trainer": settings.trainer_addr, "inference": settings.inference_addr}


def service_config(routes: Iterable[Route]) -> str:
    """round_robin for every call, and the retry policy for the RPCs bound to GET."""
    reads = sorted({(r.service.full_name, r.method.name) for r in routes if r.http_method == "GET"})
    config: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}]}
    if reads:
        config["methodConfig"] = [{"name": [{"service": s, "method": m} for s, m in reads],
                                   "retryPolicy": RETRY_POLICY}]
    return json.dumps(config)


class Backends:
    """The channels, opened on start and closed on cleanup; `channel(route)` picks the right one."""

    def __init__(self, settings: Settings, routes: list[Route]):
        self.settings = settings
        self.targets = targets(settings)
        self.options = [*transport_options(settings.max_message_mb * 1024 * 1024),
                        ("grpc.service_config", service_config(routes)),
                        ("grpc.enable_retries", 1),
                        ("grpc.keepalive_time_ms", 30_000)]
        self.credentials = client_credentials(settings)  # TLS (and the mTLS client certificate) when configured
        self.channels: dict[str, grpc.aio.Channel] = {}
        self.sync_channels: dict[str, grpc.Channel] = {}  # client streams only (see streams.upload)

    def open(self) -> None:
        for name, target in self.targets.items():
            if self.credentials is None:
                self.channels[name] = grpc.aio.insecure_channel(target, options=self.options)
            else:
                self.channels[name] = grpc.aio.secure_channel(target, self.credentials, options=self.options)

    async def close(self) -> None:
        await asyncio.gather(*(ch.close() for ch in self.channels.values()))
        self.channels.clear()
        for ch in self.sync_channels.values():
            ch.close()
        self.sync_channels.clear()

    def channel(self, route: Route) -> grpc.aio.Channel:
        return self.channels[SERVICE_BACKENDS[route.service.full_name]]

    def sync_channel(self, route: Route) -> grpc.Channel:
        name = SERVICE_BACKENDS[route.service.full_name]
        if name not in self.sync_channels:
            target = self.targets[name]
            self.sync_channels[name] = (grpc.insecure_channel(target, options=self.options) if self.credentials is None
                                        else grpc.secure_channel(target, self.credentials, options=self.options))
        return self.sync_channels[name]

    @staticmethod
    def deadline(route: Route) -> float | None:
        if route.method.client_streaming:
            return UPLOAD_DEADLINE_S
        return STREAM_DEADLINE_S if route.method.server_streaming else UNARY_DEADLINE_S

    async def health(self) -> dict[str, str]:
        """Each backend's overall health status name (SERVING, NOT_SERVING, UNAVAILABLE, ...)."""
        names = list(self.channels)
        results = await asyncio.gather(*(_check(self.channels[n]) for n in names))
        return dict(zip(names, results, strict=True))


async def _check(channel: grpc.aio.Channel) -> str:
    try:
        response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                                   timeout=HEALTH_DEADLINE_S)
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
