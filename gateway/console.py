"""The web console's static files under /console/ (GET /v1/whoami, in gateway.auth, tells the page its role).

The console is plain files (gateway/console/static/) that talk to the public REST API only, so it
can never do more than the API allows. The files need no token: the page asks for one and sends it
with each API call. A strict Content-Security-Policy keeps the page from loading anything that is
not served here (no CDN, nothing fetched from elsewhere at run time).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

import grpc
from aiohttp import web

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
