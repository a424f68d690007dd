"""The access interceptor: who calls (bearer token), may they (role table), how often (rate), and the audit.

It sits inside ObservabilityInterceptor, so a refused call still has its request id, its log line
and its metrics. The caller's identity is set for the handler's thread (quotas read it); every call
of a state-changing RPC, refused or not, leaves one audit event.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import grpc
import structlog

from quakestack.audit import AuditTrail, resource_of
from quakestack.auth import ANONYMOUS, Authorizer, Identity, is_state_changing, reset_identity, set_identity
from quakestack.errors import QuakestackError, ResourceExhausted
from quakestack.quotas import RateLimiter
from quakestack.runtime.interceptor import bound_log_context, current_request_id, request_id_from

log = structlog.get_logger()
AUTHORIZATION_KEY = "authorization"
RETRY_AFTER_KEY = "retry-after"


def _metadata_value(metadata: Any, key: str) -> str | None:
    for k, v in metadata or ():
        if k == key:
            return v
    return None


def _code_of(exc: BaseException | None, context: grpc.ServicerContext) -> str:
    if isinstance(exc, GeneratorExit):  # the client went away mid-stream
        return "CANCELLED"
    if exc is None:
        code = context.code()
        return code.name if isinstance(code, grpc.StatusCode) else "OK"
    if isinstance(exc, QuakestackError):
        return exc.code.name
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


class AccessInterceptor(grpc.ServerInterceptor):
    def __init__(self, authorizer: Authorizer, audit: AuditTrail, limiter: RateLimiter | None = None):
        self.authorizer = authorizer
        self.audit = audit
        self.limiter = limiter or RateLimiter()

    def decide(self, rpc: str, metadata: Any) -> tuple[Identity, QuakestackError | None, int | None]:
        """The caller, the refusal (if any) and, for a rate refusal, the seconds to wait."""
        try:
            identity = self.authorizer.authorize(rpc, _metadata_value(metadata, AUTHORIZATION_KEY))
        except QuakestackError as exc:
            return self._known_caller(metadata), exc, None
        retry_after = self.limiter.check(identity)
        if retry_after is not None:
            return identity, ResourceExhausted(f"request rate of token {identity.id} over its limit; "
                                               f"retry in {retry_after} s"), retry_after
        return identity, None, None

    def _known_caller(self, metadata: Any) -> Identity:
        """For the audit of a refusal: the token's id when it is valid (PERMISSION_DENIED), else anonymous."""
        try:
            return self.authorizer.identify(_metadata_value(metadata, AUTHORIZATION_KEY))
        except QuakestackError:
            return ANONYMOUS

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        rpc = handler_call_details.method.lstrip("/")
        metadata = handler_call_details.invocation_metadata
        identity, refusal, retry_after = self.decide(rpc, metadata)
        audited = is_state_changing(rpc)
        # outside ObservabilityInterceptor (tests of this one alone) the id comes from the metadata
        request_id = request_id_from(metadata) if audited else ""
        if handler.request_streaming and handler.response_streaming:
            attr = "stream_stream"
        elif handler.request_streaming:
            attr = "stream_unary"
        elif handler.response_streaming:
            attr = "unary_stream"
        else:
            attr = "unary_unary"
        behavior = getattr(handler, attr)
        call = _AccessCall(self, rpc, identity, refusal, retry_after, audited, request_id)
        wrapped = call.streaming(behavior) if handler.response_streaming else call.unary(behavior)
        return handler._replace(**{attr: wrapped})


class _AccessCall:
    """One call's decision applied around its handler."""

    def __init__(self, owner: AccessInterceptor, rpc: str, identity: Identity, refusal: QuakestackError | None,
                 retry_after: int | None, audited: bool, request_id: str):
        self.owner, self.rpc, self.identity = owner, rpc, identity
        self.refusal, self.retry_after, self.audited, self.request_id = refusal, retry_after, audited, request_id

    def _refuse(self, context: grpc.ServicerContext) -> None:
        if self.refusal is None:
            return
        if self.retry_after is not None:
            kept = tuple(context.trailing_metadata() or ())  # the request id of a data-plane call
            context.set_trailing_metadata((*kept, (RETRY_AFTER_KEY, str(self.retry_after))))
        raise self.refusal

    def _audit(self, request: Any, response: Any, exc: BaseException | None, context: grpc.ServicerContext) -> None:
        if not self.audited:
            return
        # the id ObservabilityInterceptor bound for this call (the one echoed to the client and logged)
        request_id = current_request_id() or self.request_id
        try:
            self.owner.audit.record(self.identity, self.rpc, _code_of(exc, context), request_id,
                                    resource_of(request, response))
        except Exception:  # noqa: BLE001 - the audit never changes a call's outcome; the failure is logged
            log.exception("audit event not recorded", rpc=self.rpc)

    def unary(self, behavior: Callable) -> Callable:
        def wrapper(request, context: grpc.ServicerContext):
            token = set_identity(self.identity)
            response, error = None, None
            try:
                with bound_log_context(caller=self.identity.id):
                    self._refuse(context)
                    response = behavior(request, context)
                    return response
            except BaseException as exc:
                error = exc
                raise
            finally:
                reset_identity(token)
                self._audit(request, response, error, context)

        return wrapper

    def streaming(self, behavior: Callable) -> Callable:
        def wrapper(request, context: grpc.ServicerContext):
            token = set_identity(self.identity)
            error = None
            try:
                with bound_log_context(caller=self.identity.id):
                    self._refuse(context)
                    yield from behavior(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                with contextlib.suppress(ValueError):  # a generator closed from another context
                    reset_identity(token)
                self._audit(request, None, error, context)

        return wrapper
