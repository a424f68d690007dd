"""Library errors that carry their gRPC status, so servicers just raise and the runtime maps.

One exception type per status keeps the mapping in one place (the server interceptor) instead of
a try/except in every RPC.
"""

from __future__ import annotations

import grpc


class QuakestackError(Exception):
    """Base class: `code` is the gRPC status the runtime answers with; the message is the detail."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidArgument(QuakestackError, ValueError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(QuakestackError, LookupError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(QuakestackError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(QuakestackError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(QuakestackError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(QuakestackError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(QuakestackError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(QuakestackError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(QuakestackError):
    code = grpc.StatusCode.UNAUTHENTICATED


class Conflict(QuakestackError):
    """A conditional write lost its race (S3 412 PreconditionFailed): someone else wrote first."""

    code = grpc.StatusCode.ABORTED
