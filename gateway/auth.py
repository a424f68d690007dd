"""Bearer API tokens: read-write or read-only (`token:ro`), from settings or a file.

A read-only token may call GET routes (reads and streams) only. Tokens are compared with
`hmac.compare_digest` against every configured token, so timing tells nothing about which one
nearly matched; they never reach a log line or an error message.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

import grpc

from gateway.errors import ApiError
from quakestack.config import Settings

READ_METHODS = frozenset({"GET", "HEAD"})
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="quakestack"'}


@dataclass(frozen=True)
class Token:
    secret: bytes
    read_only: bool

    def __repr__(self) -> str:  # never show the secret, even in a traceback
        return f"Token(read_only={self.read_only})"


def parse_tokens(text: str, separator: str) -> list[Token]:
    """`a,b:ro` (or one per line) → tokens; a trailing `:ro` marks a read-only token."""
    tokens = []
    for item in text.split(separator):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        secret, ro = (item[:-3], True) if item.endswith(":ro") else (item, False)
        if secret:
            tokens.append(Token(secret.encode(), ro))
    return tokens


def load_tokens(settings: Settings) -> list[Token]:
    """Tokens from QUAKESTACK_API_TOKENS plus QUAKESTACK_API_TOKENS_FILE (both may be set)."""
    tokens = parse_tokens(settings.api_tokens, ",")
    if settings.api_tokens_file:
        tokens += parse_tokens(Path(settings.api_tokens_file).read_text(), "\n")
    return tokens


class Authenticator:
    """Decides per request; with no tokens configured, every request passes (local loopback use)."""

    def __init__(self, tokens: list[Token]):
        self.tokens = tokens

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def _lookup(self, presented: bytes) -> Token | None:
        found = None
        for token in self.tokens:
            if hmac.compare_digest(token.secret, presented):
                found = token
        return found

    def check(self, http_method: str, authorization: str | None) -> None:
        """Raise 401 for a missing or unknown token, 403 for a read-only token on a non-GET route."""
        if not self.enabled:
            return
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(grpc.StatusCode.UNAUTHENTICATED, "a bearer token is required", headers=CHALLENGE)
        token = self._lookup(value.strip().encode())
        if token is None:
            raise ApiError(grpc.StatusCode.UNAUTHENTICATED, "invalid bearer token",
                           headers={"WWW-Authenticate": CHALLENGE["WWW-Authenticate"] + ', error="invalid_token"'})
        if token.read_only and http_method not in READ_METHODS:
            raise ApiError(grpc.StatusCode.PERMISSION_DENIED, "this token is read-only")
