"""The gateway process: REST/JSON transcoded onto the gRPC services, plus health, readiness and metrics.

One catch-all aiohttp handler dispatches through gateway.routes (built from the descriptors); the
middleware gives every request an x-request-id, one JSON access-log line, HTTP metrics and the
JSON error shape. Auth is checked after routing, so unknown paths are 404 with or without a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import console, metrics, oip
from gateway.apidoc import HP_FIELD, hyper_parameter_schema
from gateway.auth import GatewayAuth
from gateway.backends import SERVICE_BACKENDS, Backends
from gateway.docs import render_docs
from gateway.errors import ApiError, from_rpc_error
from gateway.openapi import build_openapi
from gateway.routes import Kind, Route, Router, build_routes
from gateway.streams import (
    is_file_stream,
    negotiate,
    read_limited,
    resume_after,
    upload,
    wants_file,
    write_file,
    write_stream,
)
from gateway.transcode import build_request, message_class, query_lists, to_json
from quakestack.auth import Authorizer, check_bind_policy
from quakestack.config import ConfigError, Settings, load_settings
from quakestack.errors import InvalidArgument
from quakestack.jobs.lifeline import tie_to_stack
from quakestack.layout import JOB_ARCHIVES, checkpoint_file_name
from quakestack.logging import configure
from quakestack.pagination import MAX_PAGE_SIZE
from quakestack.protocomments import load_comments
from quakestack.tls import ReloadingSslContext
from quakestack.v1 import trainer_pb2

log = structlog.get_logger()  # lazy: configure() runs in main, after import
REQUEST_ID = "x-request-id"
AUTHORIZATION = "authorization"
WHOAMI_PATH = "/v1/whoami"
_VALID_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
CERT_CHECK_S = 2.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Paths served by the gateway itself, without a token.
PUBLIC_PATHS = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", WHOAMI_PATH, "/console/")


def request_id(request: web.Request) -> str:
    """The client's x-request-id when it is a sane token, else a fresh one (as the services do)."""
    given = request.headers.get(REQUEST_ID, "")
    return given if _VALID_ID.match(given) else uuid.uuid4().hex


def error_response(exc: ApiError, request_id_value: str) -> web.Response:
    return web.json_response(exc.body(), status=exc.http, headers={**exc.headers, REQUEST_ID: request_id_value})


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, error shape, access log and metrics around every request."""
    rid = request_id(request)
    request[REQUEST_ID] = rid
    request["route"] = "unmatched"
    start = time.perf_counter()
    status = 500
    metrics.IN_FLIGHT.inc()
    try:
        try:
            response = await handler(request)
        except ApiError as exc:
            response = error_response(exc, rid)
        except web.HTTPException as exc:  # aiohttp's own (e.g. a malformed request)
            code = grpc.StatusCode.INVALID_ARGUMENT if exc.status < 500 else grpc.StatusCode.INTERNAL
            response = error_response(ApiError(code, exc.reason, http=exc.status), rid)
        except (ConnectionResetError, asyncio.CancelledError):
            status = 499
            raise
        except Exception:
            log.exception("unhandled error", request_id=rid, route=request["route"])
            response = error_response(ApiError(grpc.StatusCode.INTERNAL, "internal error"), rid)
        if not response.prepared:
            response.headers[REQUEST_ID] = rid
        status = response.status
        return response
    finally:
        metrics.IN_FLIGHT.dec()
        elapsed = time.perf_counter() - start
        metrics.REQUESTS.labels(request["route"], request.method, str(status)).inc()
        metrics.LATENCY.labels(request["route"], request.method).observe(elapsed)
        log.info("http request", method=request.method, route=request["route"], path=request.path,
                 status=status, duration_ms=round(elapsed * 1e3, 3), request_id=rid)


class Gateway:
    """Routes, backends and auth for one application; `dispatch` is the single aiohttp handler."""

    def __init__(self, settings: Settings, routes: list[Route] | None = None):
        self.settings = settings
        self.routes = build_routes() if routes is None else routes
        unknown = {r.service.full_name for r in self.routes} - set(SERVICE_BACKENDS)
        if unknown:
            raise ConfigError(f"no backend for services {sorted(unknown)}: add them to gateway.backends")
        self.router = Router(self.routes)
        self.backends = Backends(settings, self.routes)
        self.auth = GatewayAuth(Authorizer.from_settings(settings))
        self.body_limit = settings.max_body_mb * 1024 * 1024
        self.comments = load_comments()
        self.openapi = build_openapi(self.routes, auth=self.auth.enabled, comments=self.comments)
        self.docs = render_docs(self.openapi)
        self._zoo_described = False
        self.builtin: dict[str, Handler] = {"/healthz": self.healthz, "/readyz": self.readyz,
                                            "/metrics": self.metrics, "/openapi.json": self.openapi_json,
                                            "/docs": self.docs_page, WHOAMI_PATH: self.whoami}
        self._callables: dict[tuple[str, str], Any] = {}

    # -- built-in endpoints --------------------------------------------------------------------
    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, _request: web.Request) -> web.Response:
        statuses = await self.backends.health()
        ready = all(s == "SERVING" for s in statuses.values())
        return web.json_response({"ready": ready, "backends": statuses}, status=200 if ready else 503)

    async def whoami(self, request: web.Request) -> web.Response:
        return web.json_response(self.auth.whoami(request.headers.get("Authorization")))

    async def metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _describe_zoo(self) -> None:
        """Once: the architectures' hyper-parameters (ListArchitectures) into the document; retried while the
        trainer cannot be reached (the document is served without them meanwhile)."""
        if self._zoo_described:
            return
        route = next((r for r in self.routes if r.method.full_name == "quakestack.v1.TrainerService."
                      "ListArchitectures"), None)
        if route is None:
            return
        try:
            # every architecture on one page (the zoo is far below the largest page)
            request = trainer_pb2.ListArchitecturesRequest(page_size=MAX_PAGE_SIZE)
            zoo = await self._callable(route, "unary_unary")(request, timeout=5)
        except grpc.aio.AioRpcError as exc:
            log.warning("cannot describe hyper-parameters in /openapi.json yet", code=exc.code().name,
                        message=exc.details())
            return
        self.openapi = build_openapi(self.routes, auth=self.auth.enabled, comments=self.comments,
                                     field_extras={HP_FIELD: hyper_parameter_schema(zoo)})
        self.docs = render_docs(self.openapi)
        self._zoo_described = True

    async def openapi_json(self, _request: web.Request) -> web.Response:
        await self._describe_zoo()
        return web.json_response(self.openapi, dumps=lambda d: json.dumps(d, indent=1))

    async def docs_page(self, _request: web.Request) -> web.Response:
        await self._describe_zoo()
        return web.Response(text=self.docs, content_type="text/html")

    # -- transcoding ---------------------------------------------------------------------------
    def _callable(self, route: Route, style: str) -> Any:
        """The channel's multi-callable for one RPC, built once (serializers from the descriptors)."""
        key = (route.grpc_path, style)
        if key not in self._callables:
            request_cls = message_class(route.method.input_type)
            response_cls = message_class(route.method.output_type)
            channel = self.backends.sync_channel(route) if route.kind is Kind.UPLOAD else self.backends.channel(route)
            factory = getattr(channel, style)
            self._callables[key] = factory(route.grpc_path, request_serializer=request_cls.SerializeToString,
                                           response_deserializer=response_cls.FromString)
        return self._callables[key]

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path.split("?", 1)[0]
        builtin, label = self.builtin.get(path), path
        if builtin is None and (path == "/console" or path.startswith(console.PREFIX)):
            builtin, label = console.serve, console.PREFIX  # the web console's static files
        if builtin is not None:
            request["route"] = label
            if request.method not in ("GET", "HEAD"):
                raise ApiError(grpc.StatusCode.UNIMPLEMENTED, f"{request.method} not allowed on {path}",
                               http=405, headers={"Allow": "GET"})
            return await builtin(request)
        match = self.router.match(request.method, path)
        if isinstance(match, list):
            if match:
                raise ApiError(grpc.StatusCode.UNIMPLEMENTED, f"{request.method} not allowed on {request.path}",
                               http=405, headers={"Allow": ", ".join(match)})
            raise ApiError(grpc.StatusCode.NOT_FOUND, f"no route for {request.method} {request.path}")
        route = match.route
        request["route"] = route.template
        authorization = request.headers.get("Authorization")
        self.auth.check(route.grpc_path.lstrip("/"), authorization)
        metadata: tuple[tuple[str, str], ...] = ((REQUEST_ID, request[REQUEST_ID]),)
        if authorization:  # the services check and audit the caller, not the gateway
            metadata += ((AUTHORIZATION, authorization),)
        timeout = self.backends.deadline(route)
        if route.kind is Kind.UPLOAD:
            reply = await upload(request, route, self._callable(route, "stream_unary"), self.body_limit, timeout,
                                 metadata)
            return web.json_response(to_json(reply))
        if oip.is_oip(route):
            return await self._dispatch_oip(request, route, match.params, metadata, timeout)
        body = await read_limited(request, self.body_limit)
        message = build_request(route, match.params, query_lists(request.query), body)
        if route.kind is Kind.SERVER_STREAM:
            resume_after(message, request.headers.get("Last-Event-ID"))
            call = self._callable(route, "unary_stream")(message, timeout=timeout, metadata=metadata)
            if is_file_stream(route) and wants_file(request.headers.get("Accept")):
                try:
                    return await write_file(request, call, download_name(route, match.params),
                                            headers={REQUEST_ID: request[REQUEST_ID]})
                finally:
                    call.cancel()
            try:
                return await write_stream(request, call, negotiate(request.headers.get("Accept")),
                                          route.response_body, headers={REQUEST_ID: request[REQUEST_ID]})
            finally:
                call.cancel()  # no-op when finished; stops the backend when the client went away
        try:
            reply = await self._callable(route, "unary_unary")(message, timeout=timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        return web.json_response(to_json(reply, route.response_body))

    async def _dispatch_oip(self, request: web.Request, route: Route, params: dict[str, str], metadata: Any,
                            timeout: float | None) -> web.StreamResponse:
        """An Open Inference Protocol route: the protocol's own JSON (gateway.oip) around the same call."""
        try:
            body = await read_limited(request, self.body_limit)
            message = oip.build(route, params, query_lists(request.query), body, request.headers)
            try:
                reply = await self._callable(route, "unary_unary")(message, timeout=timeout, metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                raise from_rpc_error(exc) from None
            return oip.respond(route, message, reply)
        except ApiError as exc:
            exc.oip = True
            raise


def download_name(route: Route, params: dict[str, str]) -> str:
    """The file name a download is saved as: the artifact's own, `<job>-tensorboard.tar.gz` for a job's folder as
    one archive, or `<job>-epoch-<n>.pt` for weights."""
    if params.get("path") in JOB_ARCHIVES and re.fullmatch(r"[A-Za-z0-9._-]+", params.get("job_id", "")):
        return f"{params['job_id']}-{params['path']}"
    if "path" in params:
        return params["path"].rsplit("/", 1)[-1] or "artifact"
    epoch = params.get("epoch", "")
    if "job_id" in params and epoch.isascii() and epoch.isdigit() and int(epoch) >= 1:
        with contextlib.suppress(InvalidArgument):  # an odd job id keeps the sanitised generic name below
            return checkpoint_file_name(params["job_id"], int(epoch))  # as the CLI saves it
    name = "-".join(f"{k.replace('_id', '')}-{v}" if k != "job_id" else v for k, v in params.items())
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".pt"


def create_app(settings: Settings) -> web.Application:
    gateway = Gateway(settings)
    if not gateway.auth.enabled and not settings.auth_disabled:
        log.warning("no API tokens configured: authentication is off (loopback only; set QUAKESTACK_API_TOKENS "
                    "for any other address)")
    app = web.Application(middlewares=[observe], client_max_size=gateway.body_limit)
    app["gateway"] = gateway

    async def open_channels(_app: web.Application) -> None:
        gateway.backends.open()

    async def close_channels(_app: web.Application) -> None:
        await gateway.backends.close()

    app.router.add_route("*", "/{tail:.*}", gateway.dispatch)
    app.on_startup.append(open_channels)
    app.on_cleanup.append(close_channels)
    return app


def main() -> None:
    tie_to_stack()  # started by `quakestack up` (or a test's stack): die with it, even when it is SIGKILLed
    try:
        settings = load_settings()
        warning = check_bind_policy(settings, "gateway")
        configure("gateway", settings.log_level, settings.log_format)
        app = create_app(settings)
        tls = ReloadingSslContext(settings) if settings.tls_cert_file else None
    except (ConfigError, OSError) as exc:
        print(f"quakestack gateway: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    if warning:
        log.warning(warning)
    if tls is not None:
        app.on_startup.append(lambda _app: _watch_certificates(_app, tls))
    log.info("serving", port=settings.gateway_port, routes=len(app["gateway"].routes),
             auth="on" if app["gateway"].auth.enabled else "off", tls=tls is not None)
    web.run_app(app, host=settings.bind_host, port=settings.gateway_port, print=None, access_log=None,
                handle_signals=True, shutdown_timeout=settings.grace_s,
                ssl_context=tls.context if tls is not None else None)


async def _watch_certificates(app: web.Application, tls: ReloadingSslContext) -> None:
    """Re-read the certificate files every few seconds (the next handshake uses a rotated one)."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(CERT_CHECK_S)
            tls.maybe_reload()

    task = asyncio.get_running_loop().create_task(loop())

    async def cancel(_app: web.Application) -> None:
        task.cancel()

    app.on_cleanup.append(cancel)
