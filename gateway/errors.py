"""gRPC status → HTTP status and the one JSON error shape every failing response carries.

The table is DESIGN.md's; keeping it (and the body shape) here means handlers, the router and the
streaming writers all fail the same way: `{"code": "<GRPC_CODE_NAME>", "message": ..., "details": [...]}`.
"""

from __future__ import annotations

import base64
from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import status_pb2

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
STATUS_DETAILS_KEY = "grpc-status-details-bin"
RETRY_AFTER_KEY = "retry-after"  # a rate-limited backend's hint, passed on as the HTTP header


def http_status(code: grpc.StatusCode) -> int:
    """HTTP status for a gRPC code; UNKNOWN, INTERNAL, DATA_LOSS and anything new → 500."""
    return HTTP_STATUS.get(code, 500)


class ApiError(Exception):
    """An error answered as JSON; `http` overrides the mapped status (405, 413, 415 have no gRPC code)."""

    def __init__(self, code: grpc.StatusCode, message: str, *, http: int | None = None,
                 details: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None,
                 oip: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http = http if http is not None else http_status(code)
        self.details = details or []
        self.headers = headers or {}
        self.oip = oip  # an Open Inference Protocol route: the body also carries {"error": message}

    def body(self) -> dict[str, Any]:
        body = error_body(self.code, self.message, self.details)
        return {**body, "error": self.message} if self.oip else body


def error_body(code: grpc.StatusCode, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"code": code.name, "message": message, "details": details or []}


def _details(trailing: Any) -> list[dict[str, Any]]:
    """google.rpc.Status details from the trailers, each as JSON (`@type` plus fields) when decodable."""
    for key, value in trailing or ():
        if key != STATUS_DETAILS_KEY:
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except Exception:  # a malformed trailer must not turn an error into a crash
            return []
        out = []
        for any_msg in status.details:
            try:
                out.append(json_format.MessageToDict(any_msg))
            except (json_format.Error, TypeError, KeyError):
                out.append({"@type": any_msg.type_url, "value": base64.b64encode(any_msg.value).decode()})
        return out
    return []


def from_rpc_error(exc: grpc.RpcError) -> ApiError:
    """The backend's status as an ApiError (details decoded from `grpc-status-details-bin`)."""
    try:
        trailing = exc.trailing_metadata()  # type: ignore[attr-defined]
    except Exception:
        trailing = None
    code: grpc.StatusCode = exc.code()  # type: ignore[attr-defined]
    hints = [str(v) for k, v in trailing or () if k == RETRY_AFTER_KEY and str(v).isdigit()]
    headers = {"Retry-After": hints[0]} if hints else {}
    return ApiError(code, exc.details() or code.name, details=_details(trailing),  # type: ignore[attr-defined]
                    headers=headers)
