"""Client-side helpers: channels with the runtime's limits, health and reflection queries."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024


def transport_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Shared by clients and servers: message limits, and larger HTTP/2 and TCP read buffers.

    Waveform batches are tens of MB; bigger read chunks and lookahead measured 10-20% more
    payload throughput on loopback (bench/grpc_overhead.py).
    """
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.http2.lookahead_bytes", 1 << 24),
        ("grpc.experimental.tcp_read_chunk_size", 1 << 22),
        ("grpc.experimental.tcp_min_read_chunk_size", 1 << 20),
        ("grpc.experimental.tcp_max_read_chunk_size", 1 << 24),
    ]


class _Bearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
              grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call's metadata."""

    def __init__(self, token: str):
        self._header = ("authorization", f"Bearer {token}")

    def __repr__(self) -> str:  # never show the token
        return "_Bearer()"

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [*(details.metadata or ()), self._header]
        return details._replace(metadata=metadata) if hasattr(details, "_replace") else _CallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready,
            details.compression)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)


class _CallDetails(
        namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
        grpc.ClientCallDetails):
    """grpc.ClientCallDetails as a namedtuple, so an interceptor can replace one field (the metadata)."""


def channel(target: str, max_message_bytes: int = DEFAULT_MAX_MESSAGE, *,
            credentials: grpc.ChannelCredentials | None = None, token: str = "") -> grpc.Channel:
    """Round-robin over every resolved address (Kubernetes headless services); TLS with `credentials`,
    and `authorization: Bearer <token>` on every call when a token is given."""
    options = [*transport_options(max_message_bytes), ("grpc.lb_policy_name", "round_robin"),
               ("grpc.keepalive_time_ms", 30_000)]
    if credentials is not None:
        ch = grpc.secure_channel(target, credentials, options=options)
    else:
        ch = grpc.insecure_channel(target, options=options)
    return grpc.intercept_channel(ch, _Bearer(token)) if token else ch


def settings_channel(settings: Any, target: str) -> grpc.Channel:
    """A channel as the settings say: CA bundle / client certificate (QUAKESTACK_TLS_*) and client token."""
    from quakestack.tls import client_credentials

    return channel(target, settings.max_message_mb * 1024 * 1024, credentials=client_credentials(settings),
                   token=settings.client_token)


def health_status(ch: grpc.Channel, service: str = "", timeout_s: float = 2.0) -> str:
    """SERVING / NOT_SERVING / SERVICE_UNKNOWN, or UNAVAILABLE when nothing answers."""
    try:
        response = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service),
                                                        timeout=timeout_s)
    except grpc.RpcError as exc:
        return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def reflected_services(ch: grpc.Channel, timeout_s: float = 5.0) -> list[str]:
    """Service names the server lists through reflection."""
    stub = reflection_pb2_grpc.ServerReflectionStub(ch)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                          timeout=timeout_s)
    for response in responses:
        return sorted(s.name for s in response.list_services_response.service)
    return []
