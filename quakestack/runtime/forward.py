"""Transparent forwarding of gRPC calls to another server, bytes in and bytes out.

A data-plane process of the inference service answers Predict and ModelInfer itself and hands every other
call, of any kind, to the service's first process over a private socket: the caller sees that process's
answer, status, details and metadata, its deadline travels with the call and a cancelled caller cancels
the forwarded call. A method's kind (unary or streaming each way) comes from the registered proto
descriptors, so nothing here is written per method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf import descriptor_pool

_DROPPED_METADATA = ("user-agent",)  # set by the forwarding channel itself


def method_kind(full_method: str) -> tuple[bool, bool] | None:
    """(request streaming, response streaming) of ``/package.Service/Method``; None when unknown."""
    try:
        _, service, method = full_method.split("/")
        descriptor = descriptor_pool.Default().FindServiceByName(service).methods_by_name[method]
    except (ValueError, KeyError):
        return None
    return descriptor.client_streaming, descriptor.server_streaming


def _timeout(context: grpc.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None or remaining > 1e8 else max(0.0, remaining)


def _metadata(context: grpc.ServicerContext) -> tuple[tuple[str, Any], ...]:
    return tuple((k, v) for k, v in context.invocation_metadata()
                 if not k.startswith((":", "grpc-")) and k not in _DROPPED_METADATA)


def _relay_error(context: grpc.ServicerContext, error: grpc.RpcError) -> None:
    """End the caller's call as the forwarded one ended: code, details, trailing metadata."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    if isinstance(error, grpc.Call):
        context.set_trailing_metadata(tuple(error.trailing_metadata() or ()))
    context.abort(code, (error.details() if isinstance(error, grpc.Call) else str(error)) or "")


class Forwarder:
    """Method handlers that forward to ``channel``; one cached handler per method."""

    def __init__(self, channel: grpc.Channel):
        self.channel = channel
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        self._handler_ids: set[int] = set()

    def handler(self, full_method: str) -> grpc.RpcMethodHandler | None:
        handler = self._handlers.get(full_method)
        if handler is None:
            kind = method_kind(full_method)
            if kind is None:
                return None
            handler = self._handlers[full_method] = self._build(full_method, *kind)
            self._handler_ids.add(id(handler))
        return handler

    def forwards(self, handler: grpc.RpcMethodHandler) -> bool:
        """Whether ``handler`` is one of this forwarder's (interceptors leave those to the other process)."""
        return id(handler) in self._handler_ids

    def _build(self, method: str, request_streaming: bool, response_streaming: bool) -> grpc.RpcMethodHandler:
        if not response_streaming:
            callable_ = (self.channel.stream_unary if request_streaming else self.channel.unary_unary)(method)

            def unary(request, context):
                future = callable_.future(request, timeout=_timeout(context), metadata=_metadata(context))
                context.add_callback(future.cancel)
                try:
                    response = future.result()
                except grpc.RpcError as error:
                    _relay_error(context, error)
                except grpc.FutureCancelledError:
                    context.abort(grpc.StatusCode.CANCELLED, "the caller cancelled the call")
                context.send_initial_metadata(tuple(future.initial_metadata() or ()))
                context.set_trailing_metadata(tuple(future.trailing_metadata() or ()))
                return response

            make = grpc.stream_unary_rpc_method_handler if request_streaming else grpc.unary_unary_rpc_method_handler
            return make(unary)

        callable_ = (self.channel.stream_stream if request_streaming else self.channel.unary_stream)(method)

        def streaming(request, context) -> Iterator[bytes]:
            call = callable_(request, timeout=_timeout(context), metadata=_metadata(context))
            context.add_callback(call.cancel)
            try:
                sent_initial = False
                for response in call:
                    if not sent_initial:
                        context.send_initial_metadata(tuple(call.initial_metadata() or ()))
                        sent_initial = True
                    yield response
                if not sent_initial:
                    context.send_initial_metadata(tuple(call.initial_metadata() or ()))
                context.set_trailing_metadata(tuple(call.trailing_metadata() or ()))
            except grpc.RpcError as error:
                _relay_error(context, error)

        make = grpc.stream_stream_rpc_method_handler if request_streaming else grpc.unary_stream_rpc_method_handler
        return make(streaming)


class LocalOnly(grpc.ServerInterceptor):
    """Apply ``interceptors`` (outermost first) to the calls this process answers, never to forwarded ones:
    the process they are forwarded to counts, logs and authorises them itself."""

    def __init__(self, interceptors: list[grpc.ServerInterceptor], forwarder: Forwarder):
        self.interceptors = interceptors
        self.forwarder = forwarder

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails):
        handler = continuation(handler_call_details)
        if handler is None or self.forwarder.forwards(handler):
            return handler
        for interceptor in reversed(self.interceptors):
            handler = interceptor.intercept_service(lambda _details, h=handler: h, handler_call_details)
        return handler
