"""The gateway side of quakestack.auth: the same tokens and roles, answered as 401 / 403 / 429.

The gateway checks each route's RPC against the shared role table before calling a backend and
then forwards the caller's `Authorization` as `authorization` metadata, so the services check (and
audit) the caller, never the gateway. Tokens never reach a log line or an error message.
"""

from __future__ import annotations

import grpc

from gateway.errors import ApiError
from quakestack.auth import ANONYMOUS, Authorizer, Identity
from quakestack.errors import QuakestackError, Unauthenticated
from quakestack.quotas import RateLimiter

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="quakestack"'}


def _api_error(exc: QuakestackError, authorization: str | None) -> ApiError:
    headers = {}
    if isinstance(exc, Unauthenticated):
        extra = ', error="invalid_token"' if authorization else ""
        headers = {"WWW-Authenticate": CHALLENGE["WWW-Authenticate"] + extra}
    return ApiError(exc.code, str(exc), headers=headers)


class GatewayAuth:
    """Authorizer plus the per-token request rate, raising ApiError for the HTTP answer."""

    def __init__(self, authorizer: Authorizer, limiter: RateLimiter | None = None):
        self.authorizer = authorizer
        self.limiter = limiter or RateLimiter()

    @property
    def enabled(self) -> bool:
        return self.authorizer.enabled

    def check(self, rpc: str, authorization: str | None) -> Identity:
        try:
            identity = self.authorizer.authorize(rpc, authorization)
        except QuakestackError as exc:
            raise _api_error(exc, authorization) from None
        retry_after = self.limiter.check(identity)
        if retry_after is not None:
            raise ApiError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"request rate of token {identity.id} over its limit; retry in {retry_after} s",
                           headers={"Retry-After": str(retry_after)})
        return identity

    def whoami(self, authorization: str | None) -> dict[str, object]:
        """The console's view: who the presented token is (anonymous without one); 401 for a wrong one."""
        identity = ANONYMOUS
        if self.enabled and authorization:
            try:
                identity = self.authorizer.identify(authorization)
            except QuakestackError as exc:
                raise _api_error(exc, authorization) from None
        role = identity.role.label if identity.role is not None else "anonymous"
        return {"id": identity.id, "role": role, "authEnabled": self.enabled}

