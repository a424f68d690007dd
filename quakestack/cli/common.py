"""What every CLI command shares: service addresses, output (tables or --json), gRPC error lines.

Commands are plain functions taking a `Ctx`, so the demo runs the very same code as the command line.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

import grpc
from google.protobuf.message import Message

from quakestack.client import settings_channel
from quakestack.config import Settings
from quakestack.jsonmap import message_json
from quakestack.v1 import common_pb2


class CliError(Exception):
    """A user error found by the CLI itself (bad flag value, missing file): one line, exit 1."""


MODEL_REF_HELP = "NAME, NAME@VERSION or NAME@ALIAS (default: the latest version)"


def split_model_ref(text: str) -> tuple[str, str]:
    """(name, version or alias) of a registered model as every command takes it: NAME@REF, or NAME:REF as
    earlier versions wrote it (names hold neither character)."""
    for separator in "@:":
        if separator in text:
            name, _, ref = text.partition(separator)
            return name, ref
    return text, ""


@dataclass
class Ctx:
    """Where the services are and how to print; channels are opened once and reused."""

    settings: Settings
    as_json: bool = False
    out: TextIO | None = None
    err: TextIO | None = None
    quiet: bool = False
    # what keeps running on the server if this command is interrupted, and the command to follow it again
    following: tuple[str, str] | None = None
    _channels: dict[str, grpc.Channel] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _interrupted: threading.Event = field(default_factory=threading.Event)

    @property
    def stdout(self) -> TextIO:
        return self.out or sys.stdout

    @property
    def stderr(self) -> TextIO:
        return self.err or sys.stderr

    def channel(self, service: str) -> grpc.Channel:
        """The channel to `data`, `trainer` or `inference`, from settings (or --data/--trainer/--inference)."""
        with self._lock:
            if self._interrupted.is_set():
                raise CliError("interrupted")
            if service not in self._channels:
                self._channels[service] = settings_channel(self.settings,
                                                           getattr(self.settings, f"{service}_addr"))
            return self._channels[service]

    def close(self) -> None:
        with self._lock:
            channels = list(self._channels.values())
            self._channels.clear()
        for ch in channels:
            ch.close()

    @property
    def interrupted(self) -> bool:
        return self._interrupted.is_set()

    def interrupt(self) -> None:
        """Ctrl-C (from the main thread): say what keeps running, then cancel the calls in flight by closing
        the channels; what the command thread reports after that is the cancellation, not the user's error."""
        self._interrupted.set()
        if getattr(self.stderr, "isatty", lambda: False)():
            self.stderr.write("\r\x1b[2K")  # a progress bar may hold the line
        print(interrupted_line(self), file=self.stderr, flush=True)
        self.close()

    # -- output -------------------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        """Human output (suppressed with --json so that stdout stays one JSON document)."""
        if not self.as_json and not self.quiet:
            print(text, file=self.stdout, flush=True)

    def emit(self, value: Any) -> None:
        """One JSON document or JSON line on stdout (only with --json)."""
        if self.as_json:
            print(json.dumps(value, default=str), file=self.stdout, flush=True)

    def note(self, text: str) -> None:
        """Side remarks (progress summaries) on stderr, never mixed into JSON on stdout."""
        if not self.quiet:
            print(text, file=self.stderr, flush=True)


def to_dict(message: Message) -> dict[str, Any]:
    """Protobuf → the JSON document REST answers too (protobuf's JSON mapping: camelCase, ISO-8601 times)."""
    return message_json(message)


def state_name(value: int) -> str:
    """JOB_STATE_RUNNING → RUNNING."""
    return common_pb2.JobState.Name(value).removeprefix("JOB_STATE_")


def metrics_dict(metrics: Sequence[common_pb2.Metric]) -> dict[str, float]:
    """Scalar metrics by name (structured ones such as confusion matrices are left out)."""
    return {m.name: m.value for m in metrics if not m.values}


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain left-aligned text table."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a table, or '-' when missing."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def duration(seconds: float | None) -> str:
    """Seconds as 1h02m, 3m05s or 12s."""
    if seconds is None or seconds < 0:
        return "-"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def rpc_error_line(exc: grpc.RpcError) -> str:
    """`error: NOT_FOUND: dataset 'x' does not exist`."""
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return f"error: {code.name if code else 'UNKNOWN'}: {details}"


INTERRUPTED = 130  # the shell's code for a command ended by SIGINT


def interrupted_line(ctx: Ctx) -> str:
    """What Ctrl-C leaves behind: the job that keeps running and how to follow it again, or nothing."""
    if ctx.following is None:
        return "interrupted; nothing was started on the server"
    what, command = ctx.following
    return f"interrupted; {what} keeps running on the server. Follow it again with: {command}"


@contextmanager
def errors_to_exit(ctx: Ctx) -> Iterator[list[int]]:
    """gRPC and CLI errors become one line on stderr and exit code 1; Ctrl-C one line and 130.

    The yielded list holds the exit code.
    """
    result = [0]
    try:
        yield result
    except (grpc.RpcError, CliError) as exc:
        result[0] = INTERRUPTED if ctx.interrupted else 1
        if not ctx.interrupted:  # after Ctrl-C the error is only the cancellation of the calls in flight
            print(rpc_error_line(exc) if isinstance(exc, grpc.RpcError) else f"error: {exc}", file=ctx.stderr,
                  flush=True)
    except KeyboardInterrupt:
        print(interrupted_line(ctx), file=ctx.stderr, flush=True)
        result[0] = INTERRUPTED
