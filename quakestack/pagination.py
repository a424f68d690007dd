"""List pagination per AIP-158, written once for every List RPC (and a client helper that follows pages).

A page token is opaque to clients: base64url of a small JSON cursor — the RPC it was issued by, a
fingerprint of the request's other parameters (a token is only valid for the query it came from)
and the sort key of the last item returned — plus a checksum. The cursor is a key, not an offset,
so items created or deleted between two calls never make a later page repeat or skip the others.
A token that does not decode, fails its checksum, or belongs to another RPC or query is
INVALID_ARGUMENT; a negative page_size too; 0 means the default and sizes above the maximum are
coerced to it (AIP-158).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from quakestack.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

T = TypeVar("T")
Key = tuple[Any, ...]


@dataclass(frozen=True)
class PageRequest:
    """What a List request asks for: its size and token, checked against the RPC and its other parameters."""

    rpc: str
    size: int
    after: Key | None
    query: str

    def token_after(self, key: Key) -> str:
        """The next_page_token of a page whose last item has this sort key."""
        body = json.dumps({"r": self.rpc, "q": self.query, "k": list(key)}, separators=(",", ":"), sort_keys=True)
        raw = body.encode() + _checksum(body.encode())
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _checksum(body: bytes) -> bytes:
    return hashlib.sha256(b"quakestack-page-token\0" + body).digest()[:8]


def _fingerprint(query: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:16]


def page_request(rpc: str, page_size: int, page_token: str, query: dict[str, Any] | None = None, *,
                 default_size: int = DEFAULT_PAGE_SIZE, max_size: int = MAX_PAGE_SIZE) -> PageRequest:
    """Validate a request's page_size and page_token; `query` holds its other (filter) parameters."""
    if page_size < 0:
        raise InvalidArgument(f"page_size must be between 0 (default {default_size}) and {max_size}, got {page_size}")
    size = min(page_size or default_size, max_size)
    fingerprint = _fingerprint(query or {})
    if not page_token:
        return PageRequest(rpc, size, None, fingerprint)
    bad = f"page_token {page_token[:40]!r} is not a token {rpc} issued; start again without one"
    try:
        raw = base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4))
        body, checksum = raw[:-8], raw[-8:]
        if len(raw) <= 8 or _checksum(body) != checksum:
            raise InvalidArgument(bad)
        cursor = json.loads(body)
    except (binascii.Error, ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(bad) from e
    if not isinstance(cursor, dict) or cursor.get("r") != rpc or not isinstance(cursor.get("k"), list):
        raise InvalidArgument(bad)
    if cursor.get("q") != fingerprint:
        raise InvalidArgument(f"page_token was issued for a {rpc} with other parameters; "
                              "send the same parameters as the first call, or start again without a token")
    return PageRequest(rpc, size, tuple(cursor["k"]), fingerprint)


def paginate(items: Sequence[T], page: PageRequest, key: Callable[[T], Key], *,
             descending: bool = False) -> tuple[list[T], str]:
    """One page of items in key order (ascending, or descending) after the page's cursor, and the next token.

    Keys are tuples of strings and numbers, unique per item (add the item's id as the last part).
    """
    ordered = sorted(items, key=key, reverse=descending)
    if page.after is not None:
        after = list(page.after)
        ordered = [i for i in ordered if (list(key(i)) < after if descending else list(key(i)) > after)]
    chunk = ordered[:page.size]
    more = len(ordered) > page.size
    return chunk, page.token_after(key(chunk[-1])) if more else ""


def all_pages(call: Callable[..., Any], request: Any, field: str, **kwargs: Any) -> Iterator[Any]:
    """Client side: every item of a List RPC, following next_page_token (largest pages, fewest calls)."""
    request.page_size = MAX_PAGE_SIZE
    while True:
        response = call(request, **kwargs)
        yield from getattr(response, field)
        if not response.next_page_token:
            return
        request.page_token = response.next_page_token
