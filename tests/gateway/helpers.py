"""HTTP helpers for the gateway tests: plain requests, SSE parsing, a second gateway process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quakestack.config import settings_env
from quakestack.embedded.seaweed import free_ports
from tests.helpers import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(method: str, url: str, body: bytes | Iterable[bytes] | None = None, headers: dict[str, str] | None = None,
         timeout: float = 30) -> Reply:
    """One request with urllib; error statuses are returned, not raised. An iterable body is sent chunked."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


@dataclass
class SseEvent:
    """One Server-Sent Event: its type (`message` unless named), its JSON data and its id."""

    event: str
    data: Any
    id: str | None = None


def _parse_sse(lines: Iterable[str]) -> Iterator[SseEvent]:
    event, data, event_id = "message", [], None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent(event, json.loads("\n".join(data)), event_id)
            event, data, event_id = "message", [], None
        elif line.startswith(":"):
            continue  # keepalive comment
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value
    if data:
        yield SseEvent(event, json.loads("\n".join(data)), event_id)


def read_sse_events(response: Any) -> Iterator[SseEvent]:
    """Events of a text/event-stream response as they arrive (a lazy iterator: `list()` reads all).

    `response` is anything that iterates over byte lines as they come off the socket: a urllib /
    http.client response, or `requests.Response.iter_lines()`. Stop early to leave a long stream.
    """
    return _parse_sse(line.decode() if isinstance(line, bytes) else line for line in response)


async def aread_sse_events(response: Any) -> AsyncIterator[SseEvent]:
    """The same for an aiohttp ClientResponse: `async for event in aread_sse_events(resp)`."""
    buffer: list[str] = []
    async for raw in response.content:
        line = raw.decode()
        buffer.append(line)
        if not line.strip():
            for event in _parse_sse(buffer):
                yield event
            buffer = []
    for event in _parse_sse(buffer):
        yield event


class GatewayProcess:
    """A second `python -m gateway` with its own settings, on a free port, against given backends."""

    def __init__(self, settings: Any, log_path: Path, **env_changes: str):
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
        env.update(settings_env(settings))
        env.update({"QUAKESTACK_GATEWAY_PORT": str(self.port), "PYTHONUNBUFFERED": "1", **env_changes})
        self.env = env
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> GatewayProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "gateway"], env=self.env, cwd=str(REPO_ROOT),
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log_path.read_text()[-2000:]}")
            try:
                return http("GET", self.url + "/healthz", timeout=2).status == 200
            except OSError:
                return False

        if not wait_for(up, 30, 0.1):
            self.__exit__()
            raise RuntimeError("second gateway did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
