"""Streams over HTTP: server-streaming RPCs as SSE or NDJSON, client-streaming uploads from the body.

A server stream waits for its first message before committing to 200, so a call that fails at
once (unknown job, UNIMPLEMENTED) gets its mapped HTTP status and JSON error body like any unary
call. Errors after the first message can only travel in the stream: SSE `event: error`, NDJSON
`{"error": {...}}`. Each message is written (and so flushed to the socket) as it arrives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from aiohttp import web
from google.protobuf.message import Message

from gateway.errors import ApiError, from_rpc_error
from gateway.routes import Route
from gateway.transcode import query_lists, to_json, upload_chunk, upload_header

SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
KEEPALIVE_S = 15.0          # SSE comment while a stream is quiet, so idle proxies keep the connection
FIRST_MESSAGE_WAIT_S = 10.0  # past this, headers are sent anyway and a late error goes in-stream
UPLOAD_CHUNK = 256 * 1024


@dataclass(frozen=True)
class StreamFormat:
    """How messages, the final error and the clean end are framed."""

    content_type: str
    message: Callable[[Any], bytes]
    error: Callable[[dict[str, Any]], bytes]
    end: bytes
    keepalive: bytes | None


def _dumps(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _sse_message(doc: Any) -> bytes:
    """An SSE event; a message with a sequence number carries it as the event id, so a browser's EventSource
    resumes after it (Last-Event-ID) when the connection drops, as when a service restarts."""
    sequence = doc.get("sequence") if isinstance(doc, dict) else None
    prefix = f"id: {sequence}\n" if sequence not in (None, "", "0", 0) else ""
    return f"{prefix}data: {_dumps(doc)}\n\n".encode()


def resume_after(message: Message, last_event_id: str | None) -> None:
    """SSE's Last-Event-ID header as the request's `after_sequence`, where the RPC has that field."""
    if not last_event_id or "after_sequence" not in message.DESCRIPTOR.fields_by_name:
        return
    if not last_event_id.strip().isdigit():
        raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, f"Last-Event-ID {last_event_id[:40]!r} is not an event "
                       "sequence number")
    if not message.after_sequence:
        message.after_sequence = int(last_event_id)


SSE_FORMAT = StreamFormat(
    SSE,
    message=_sse_message,
    error=lambda body: f"event: error\ndata: {_dumps(body)}\n\n".encode(),
    end=b"event: end\ndata: {}\n\n",
    keepalive=b": keepalive\n\n",
)
NDJSON_FORMAT = StreamFormat(
    NDJSON,
    message=lambda doc: (_dumps({"result": doc}) + "\n").encode(),
    error=lambda body: (_dumps({"error": body}) + "\n").encode(),
    end=b"",
    keepalive=None,
)


def negotiate(accept: str | None) -> StreamFormat:
    """NDJSON when the client asks for it (ahead of SSE), otherwise SSE (also for `*/*` or no Accept)."""
    ranked = []
    for index, part in enumerate((accept or "").split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        ranked.append((-q, index, media.lower()))
    for _, _, media in sorted(ranked):
        if media == NDJSON:
            return NDJSON_FORMAT
        if media == SSE:
            return SSE_FORMAT
    return SSE_FORMAT


async def write_stream(request: web.Request, messages: AsyncIterator[Message], fmt: StreamFormat,
                       response_body: str = "", headers: dict[str, str] | None = None) -> web.StreamResponse:
    """Relay `messages` as `fmt`; an AioRpcError before the first message raises ApiError instead."""
    iterator = aiter(messages)
    pending: asyncio.Future[Message] = asyncio.ensure_future(anext(iterator))
    response: web.StreamResponse | None = None
    try:
        done, _ = await asyncio.wait({pending}, timeout=FIRST_MESSAGE_WAIT_S)
        if done:
            try:
                pending.result()
            except StopAsyncIteration:
                pass
            except grpc.aio.AioRpcError as exc:
                raise from_rpc_error(exc) from None
        response = web.StreamResponse(status=200, headers={
            "Content-Type": f"{fmt.content_type}; charset=utf-8", "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no", **(headers or {})})
        await response.prepare(request)
        end = fmt.end
        while True:
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_S)
            if not done:
                if fmt.keepalive:
                    await response.write(fmt.keepalive)
                continue
            try:
                message = pending.result()
            except StopAsyncIteration:
                break
            except grpc.aio.AioRpcError as exc:
                await response.write(fmt.error(from_rpc_error(exc).body()))
                end = b""  # the error is the final event
                break
            await response.write(fmt.message(to_json(message, response_body)))
            pending = asyncio.ensure_future(anext(iterator))
        if end:
            await response.write(end)
        await response.write_eof()
        return response
    finally:
        if not pending.done():
            pending.cancel()


OCTET_STREAM = "application/octet-stream"
DIGEST_HEADERS = ("Want-Repr-Digest", "Want-Digest")


def is_file_stream(route: Route) -> bool:
    """A server stream of one `bytes chunk` field (checkpoints, artifacts): a file, served as one."""
    fields = route.method.output_type.fields
    return route.method.server_streaming and len(fields) == 1 and fields[0].name == "chunk" and \
        fields[0].type == fields[0].TYPE_BYTES


def wants_file(accept: str | None) -> bool:
    """The file unless the client asks for SSE or NDJSON by name (ahead of application/octet-stream)."""
    text = (accept or "").lower()
    if OCTET_STREAM in text:
        return text.find(OCTET_STREAM) < min((i for i in (text.find(SSE), text.find(NDJSON)) if i >= 0),
                                             default=len(text))
    return SSE not in text and NDJSON not in text


def wants_sha256(request: web.Request) -> bool:
    """RFC 9530 `Want-Repr-Digest: sha-256=1` (or the older `Want-Digest: sha-256`)."""
    return any("sha-256" in request.headers.get(h, "").lower() for h in DIGEST_HEADERS)


async def write_file(request: web.Request, messages: AsyncIterator[Message], filename: str,
                     headers: dict[str, str] | None = None) -> web.Response:
    """Collect a chunk stream and answer it as application/octet-stream with its length (and sha256 if asked).

    Checkpoints and artifacts are bounded by the gRPC message limit per chunk and are megabytes in
    all; holding one lets every error keep its HTTP status and lets Content-Length be exact.
    """
    import base64
    import hashlib

    parts = []
    try:
        async for message in messages:
            parts.append(message.chunk)
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None
    data = b"".join(parts)
    extra = {"Content-Disposition": f'attachment; filename="{filename}"', **(headers or {})}
    if wants_sha256(request):
        digest = hashlib.sha256(data).digest()
        extra["Repr-Digest"] = f"sha-256=:{base64.b64encode(digest).decode()}:"
        extra["X-Checksum-Sha256"] = digest.hex()
    return web.Response(body=data, content_type=OCTET_STREAM, headers=extra)


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes `limit` bytes (declared or counted)."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    parts, total = [], 0
    async for data in request.content.iter_chunked(UPLOAD_CHUNK):
        total += len(data)
        if total > limit:
            raise too_large(limit)
        parts.append(data)
    return b"".join(parts)


def too_large(limit: int) -> ApiError:
    return ApiError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"request body exceeds {limit} bytes", http=413)


class _BodyPump:
    """Hands body chunks from the event loop to gRPC's request-consumer thread, counting bytes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, chunks: AsyncIterator[bytes], limit: int):
        self.loop = loop
        self.chunks = chunks
        self.limit = limit
        self.total = 0
        self.too_large = False
        self.call: grpc.Future | None = None
        self.ready = threading.Event()
        self.pending: concurrent.futures.Future[bytes] | None = None

    def requests(self, first: Message, make_chunk: Callable[[bytes], Message]) -> Iterator[Message]:
        yield first
        self.ready.wait()
        assert self.call is not None
        while True:
            self.pending = asyncio.run_coroutine_threadsafe(anext(self.chunks), self.loop)  # type: ignore[arg-type]
            try:
                data = self.pending.result()
            except StopAsyncIteration:
                return
            except BaseException:  # the client went away, or the call ended and stop() cancelled the read
                self.call.cancel()
                return
            self.total += len(data)
            if self.total > self.limit:
                self.too_large = True
                self.call.cancel()  # the service sees CANCELLED and discards the partial object
                return
            yield make_chunk(data)

    def stop(self) -> None:
        if self.pending is not None:
            self.pending.cancel()


async def upload(request: web.Request, route: Route, rpc: grpc.StreamUnaryMultiCallable, limit: int,
                 timeout: float | None, metadata: tuple[tuple[str, str], ...]) -> Message:
    """Feed a client stream: the header (from the query) first, then the body in chunks as they arrive.

    Counting as the bytes stream enforces the body limit without buffering the file; over it, the
    call is cancelled (the service discards the partial object) and the client gets 413. The call
    runs on the synchronous gRPC API: grpc.aio reports "Internal error from Core" instead of the
    service's status when the service rejects an upload while chunks are still being written.
    """
    content_type = request.headers.get("Content-Type", "application/octet-stream").split(";")[0].strip().lower()
    if content_type != "application/octet-stream":
        raise ApiError(grpc.StatusCode.INVALID_ARGUMENT,
                       f"upload bodies are application/octet-stream, not {content_type}", http=415)
    header = upload_header(route, query_lists(request.query))
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    loop = asyncio.get_running_loop()
    pump = _BodyPump(loop, aiter(request.content.iter_chunked(UPLOAD_CHUNK)), limit)
    call = rpc.future(pump.requests(header, lambda data: upload_chunk(route, data)), timeout=timeout,
                      metadata=metadata)
    pump.call = call
    pump.ready.set()
    finished = loop.create_future()
    call.add_done_callback(lambda _: loop.call_soon_threadsafe(
        lambda: finished.done() or finished.set_result(None)))
    try:
        await finished
    except asyncio.CancelledError:
        call.cancel()
        raise
    finally:
        pump.stop()
    if pump.too_large:
        raise too_large(limit)
    try:
        return call.result()
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from None
