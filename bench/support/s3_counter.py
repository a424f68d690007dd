"""A TCP proxy in front of the S3 endpoint that counts the HTTP requests one process sends, by kind.

The same count for any S3 client (this version's trainer or an older one): a request is a request line
(`GET /bucket/key?... HTTP/1.1`) in the client's byte stream. Health probes (`HEAD /bucket`) are told
apart from LISTs and object reads and writes, so an idle service's storage traffic is attributable.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter

REQUEST_LINE = re.compile(rb"(?:^|\r\n)(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP/1\.[01]\r\n")


def kind_of(method: str, target: str) -> str:
    """`bucket` (a request on a bucket itself: the health probe), `list`, or the method of an object request."""
    path, _, query = target.partition("?")
    if "/" not in path.strip("/"):
        return "list" if ("list-type" in query or "prefix" in query) else "bucket"
    return method.lower()


class S3RequestCounter:
    """Listens on 127.0.0.1:<port> (a free one) and forwards to `upstream` (host:port)."""

    def __init__(self, upstream: str):
        self.upstream_host, port = upstream.rsplit(":", 1)
        self.upstream_port = int(port)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="s3-counter", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> S3RequestCounter:
        self._thread.start()
        self._ready.wait(10)
        return self

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer, count=True), self._pipe(up_reader, writer, count=False),
                             return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool) -> None:
        tail = b""
        try:
            while data := await reader.read(65536):
                if count:  # a request line cut between two reads is found in the tail plus the next read, once
                    window = tail + data
                    found = [m for m in REQUEST_LINE.finditer(window) if m.end() > len(tail)]
                    with self._lock:
                        for match in found:
                            self.counts[kind_of(match.group(1).decode(), match.group(2).decode(errors="replace"))] += 1
                    tail = window[-512:]
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
