"""The web console's static files under /console/, and GET /v1/whoami that tells the page what its token may do.

The console is plain files (gateway/console/static/) that talk to the public REST API only, so it
can never do more than the API allows. The files need no token: the page asks for one and sends it
with each API call. A strict Content-Security-Policy keeps the page from loading anything that is
not served here (no CDN, nothing fetched from elsewhere at run time).
"""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

import grpc
from aiohttp import web

from gateway.auth import Authenticator
from gateway.errors import ApiError

STATIC_DIR = Path(__file__).resolve().parent / "console" / "static"
PREFIX = "/console/"
CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".png": "image/png",
         ".svg": "image/svg+xml", ".json": "application/json"}


def static_file(path: str, root: Path = STATIC_DIR) -> Path:
    """The file a /console/... path names, inside `root` only (404 for anything else, traversal included)."""
    relative = path[len(PREFIX):] or "index.html"
    parts = relative.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") or "\\" in p for p in parts):
        raise ApiError(grpc.StatusCode.NOT_FOUND, f"no console file {path}")
    target = (root / relative).resolve()
    if root.resolve() not in target.parents or not target.is_file():
        raise ApiError(grpc.StatusCode.NOT_FOUND, f"no console file {path}")
    return target


async def serve(request: web.Request) -> web.StreamResponse:
    path = request.path
    if path == "/console":
        return web.Response(status=308, headers={"Location": PREFIX})
    target = static_file(path)
    content_type = TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return web.Response(body=target.read_bytes(), headers={
        "Content-Type": content_type, "Cache-Control": "no-cache", "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff"})


def whoami(auth: Authenticator, authorization: str | None) -> dict[str, object]:
    """Who the presented token is and its role: `anonymous` without a token, 401 for an unknown one.

    Kept small and self-contained on purpose: when tokens grow real ids and roles, only this changes.
    The id is a fingerprint of the token, never the token. Without tokens configured, auth is off and
    anyone may write; with auth on and no token presented, the caller is anonymous and may do nothing.
    """
    if not auth.enabled or not authorization:
        return {"id": "anonymous", "role": "anonymous", "authEnabled": auth.enabled}
    auth.check("GET", authorization)  # raises 401 unless the token is known
    secret = authorization.partition(" ")[2].strip().encode()
    token = auth._lookup(secret)
    assert token is not None  # check() passed
    return {"id": "token-" + hashlib.sha256(secret).hexdigest()[:12],
            "role": "readonly" if token.read_only else "readwrite", "authEnabled": True}
