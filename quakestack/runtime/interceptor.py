"""One server interceptor for every RPC kind: Prometheus metrics, request ids, error mapping.

go-grpc-prometheus names and labels; `x-request-id` taken from metadata (or generated), echoed in
the initial metadata and bound to every log line of the call; library errors (QuakestackError)
become their gRPC status here, so servicers only raise.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import structlog

from quakestack import metrics
from quakestack.errors import QuakestackError

REQUEST_ID_KEY = "x-request-id"
# the hot path: its successful calls log at debug unless QUAKESTACK_LOG_DATA_PLANE_CALLS (failures always log)
DATA_PLANE_RPCS = frozenset({"quakestack.v1.InferenceService/Predict", "inference.GRPCInferenceService/ModelInfer"})
log = structlog.get_logger()


def code_label(code: grpc.StatusCode) -> str:
    """go-grpc-prometheus spells codes as Go does: OK, InvalidArgument, DeadlineExceeded, ..."""
    return "OK" if code == grpc.StatusCode.OK else "".join(p.capitalize() for p in code.name.split("_"))


def request_id_from(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and value and len(value) <= 128 and value.isprintable():
            return value
    return uuid.uuid4().hex


class _Call:
    """Bookkeeping of one RPC: labels, start time, request id, and the code it ended with."""

    def __init__(self, grpc_type: str, service: str, method: str, request_id: str, quiet_ok: bool = False):
        self.labels = (grpc_type, service, method)
        self.rpc = f"{service}/{method}"
        self.request_id = request_id
        self.quiet_ok = quiet_ok
        self.start = time.perf_counter()
        metrics.GRPC_STARTED.labels(*self.labels).inc()

    def begin(self, request: Any, context: grpc.ServicerContext, request_streaming: bool) -> Any:
        """Echo the request id and count what arrives; returns the request (or counted iterator)."""
        context.send_initial_metadata(((REQUEST_ID_KEY, self.request_id),))
        if request_streaming:
            return _counted(request, self)
        self.received()
        return request

    def received(self) -> None:
        metrics.GRPC_MSG_RECEIVED.labels(*self.labels).inc()

    def sent(self) -> None:
        metrics.GRPC_MSG_SENT.labels(*self.labels).inc()

    @contextlib.contextmanager
    def outcome(self, context: grpc.ServicerContext) -> Iterator[None]:
        """Bind the request id to the call's log lines, map library errors, record the final code."""
        error: BaseException | None = None
        try:
            with structlog.contextvars.bound_contextvars(request_id=self.request_id, rpc=self.rpc):
                yield
        except QuakestackError as exc:
            error = exc
            context.abort(exc.code, str(exc))
        except GeneratorExit as exc:  # the client went away mid-stream
            error = exc
            raise
        except Exception as exc:
            error = exc
            if context.code() is None:
                log.exception("rpc failed")
            raise
        finally:
            self.finish(_ended_code(context, error), _ended_message(context, error))

    def finish(self, code: grpc.StatusCode, message: str = "") -> None:
        metrics.GRPC_HANDLED.labels(*self.labels, code_label(code)).inc()
        metrics.GRPC_HANDLING_SECONDS.labels(*self.labels).observe(time.perf_counter() - self.start)
        if code in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
            level = log.debug if self.quiet_ok else log.info
        else:
            level = log.warning
        with structlog.contextvars.bound_contextvars(request_id=self.request_id, rpc=self.rpc):
            # a failed call carries the message the client saw, so grepping the log for it finds the call
            extra = {"message": message} if message and code != grpc.StatusCode.OK else {}
            level("rpc finished", grpc_code=code.name,
                  duration_ms=round((time.perf_counter() - self.start) * 1e3, 3), **extra)


def _ended_message(context: grpc.ServicerContext, exc: BaseException | None) -> str:
    """The status message the client receives (library errors' text, or what the servicer set)."""
    if isinstance(exc, QuakestackError):
        return str(exc)
    details = getattr(context, "details", None)
    try:
        text = details() if callable(details) else ""
    except Exception:  # noqa: BLE001 - an older grpc context without details(): no message, never a failure
        text = ""
    if isinstance(text, bytes):  # grpc keeps details encoded
        text = text.decode("utf-8", "replace")
    return text or ""


def _ended_code(context: grpc.ServicerContext, exc: BaseException | None) -> grpc.StatusCode:
    if isinstance(exc, QuakestackError):
        return exc.code
    if isinstance(exc, GeneratorExit):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if exc is None:
        return grpc.StatusCode.OK
    return grpc.StatusCode.CANCELLED if not context.is_active() else grpc.StatusCode.UNKNOWN


class ObservabilityInterceptor(grpc.ServerInterceptor):
    """Wraps each handler; the wrapping differs by kind only in how messages are counted.

    `quiet_rpcs` (full method names) log their successful calls at debug: the data plane's hot path.
    So do grpc.* (health, reflection), which probes call all the time.
    """

    def __init__(self, quiet_rpcs: frozenset[str] = frozenset()):
        self.quiet_rpcs = quiet_rpcs

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        _, service, method = handler_call_details.method.split("/")
        request_id = request_id_from(handler_call_details.invocation_metadata)
        if handler.request_streaming and handler.response_streaming:
            kind, attr = "bidi_stream", "stream_stream"
        elif handler.request_streaming:
            kind, attr = "client_stream", "stream_unary"
        elif handler.response_streaming:
            kind, attr = "server_stream", "unary_stream"
        else:
            kind, attr = "unary", "unary_unary"
        behavior = getattr(handler, attr)
        wrap = _wrap_streaming if handler.response_streaming else _wrap_unary
        quiet = service.startswith("grpc.") or f"{service}/{method}" in self.quiet_rpcs
        wrapped = wrap(behavior, kind, service, method, request_id, handler.request_streaming, quiet)
        return handler._replace(**{attr: wrapped})


def _counted(requests: Iterator[Any], call: _Call) -> Iterator[Any]:
    for request in requests:
        call.received()
        yield request


def _wrap_unary(behavior, kind, service, method, request_id, request_streaming, quiet):
    def wrapper(request, context: grpc.ServicerContext):
        call = _Call(kind, service, method, request_id, quiet)
        with call.outcome(context):
            response = behavior(call.begin(request, context, request_streaming), context)
            call.sent()
            return response

    return wrapper


def _wrap_streaming(behavior, kind, service, method, request_id, request_streaming, quiet):
    def wrapper(request, context: grpc.ServicerContext):
        call = _Call(kind, service, method, request_id, quiet)
        with call.outcome(context):
            for response in behavior(call.begin(request, context, request_streaming), context):
                call.sent()
                yield response

    return wrapper
