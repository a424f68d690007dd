"""The gateway process: liveness, readiness over every backend's gRPC health, Prometheus metrics."""

from __future__ import annotations

import asyncio
import sys

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from quakestack.config import ConfigError, Settings, load_settings
from quakestack.logging import configure, get_logger

log = get_logger()


def backends(settings: Settings) -> dict[str, str]:
    return {"data": settings.data_addr, "trainer": settings.trainer_addr, "inference": settings.inference_addr}


async def _check(channel: grpc.aio.Channel) -> str:
    try:
        response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_mb * 1024 * 1024)
    channels: dict[str, grpc.aio.Channel] = {}

    async def open_channels(_app: web.Application) -> None:
        for name, target in backends(settings).items():
            channels[name] = grpc.aio.insecure_channel(target)

    async def close_channels(_app: web.Application) -> None:
        await asyncio.gather(*(ch.close() for ch in channels.values()))

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        names = list(channels)
        statuses = dict(zip(names, await asyncio.gather(*(_check(channels[n]) for n in names)), strict=True))
        ready = all(s == "SERVING" for s in statuses.values())
        return web.json_response({"ready": ready, "backends": statuses}, status=200 if ready else 503)

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.on_startup.append(open_channels)
    app.on_cleanup.append(close_channels)
    return app


def main() -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"quakestack gateway: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    configure("gateway", settings.log_level, settings.log_format)
    log.info("serving", port=settings.gateway_port)
    web.run_app(create_app(settings), host=settings.bind_host, port=settings.gateway_port, print=None,
                handle_signals=True, shutdown_timeout=settings.grace_s)
