"""A tiny progress bar on stderr (stdlib only): redrawn in place on a terminal, a few lines in a log."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 28
LOG_INTERVAL_S = 5.0


class ProgressBar:
    """`[#######.....]  42% 1.2/3.0 MB  text` — `update(done, total, text)`, then `close()`.

    On a terminal it redraws one line (at most 10 times a second); elsewhere (CI logs, pipes) it
    prints a line every few seconds and at the end, so logs stay readable.
    """

    def __init__(self, label: str, stream: TextIO | None = None, *, enabled: bool = True):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = 0.0
        self._last_line = ""
        self._drawn = False
        self._shown = ""
        self.done = 0.0

    def render(self, done: float, total: float, text: str = "") -> str:
        frac = min(1.0, done / total) if total > 0 else 0.0
        filled = int(round(frac * WIDTH))
        bar = "#" * filled + "." * (WIDTH - filled)
        pct = f"{frac * 100:3.0f}%" if total > 0 else "  ?%"
        return f"{self.label} [{bar}] {pct} {text}".rstrip()

    def update(self, done: float, total: float, text: str = "", *, force: bool = False) -> None:
        if not self.enabled:
            return
        self.done = done
        now = time.monotonic()
        interval = 0.1 if self.tty else LOG_INTERVAL_S
        line = self.render(done, total, text)
        self._last_line = line
        if not force and self._drawn and now - self._last_draw < interval:
            return
        self._draw(line)
        self._last_draw = now

    def _draw(self, line: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._drawn = True
        self._shown = line

    def clear(self) -> None:
        """Erase the bar on a terminal so that a table row can be printed; the next update redraws it."""
        if self.enabled and self.tty and self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()

    def close(self, text: str | None = None) -> None:
        """Draw the final state (once) and end the line."""
        if not self.enabled:
            return
        if text is not None:
            self._last_line = text
        if self._last_line and (self.tty or self._last_line != self._shown):
            self._draw(self._last_line)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
        self._last_line = ""


def human_bytes(n: float) -> str:
    """1536 → '1.5 KB'."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
