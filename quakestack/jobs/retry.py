"""Waiting out an outage of storage or the metadata database: a worker must not lose what it reports."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from quakestack.errors import Unavailable


def with_retries(fn: Callable[[], Any], retry_for_s: float) -> Any:
    """Call fn, waiting out Unavailable (storage or database down, restarting, locked) for up to retry_for_s."""
    deadline = time.monotonic() + retry_for_s
    delay = 0.2
    while True:
        try:
            return fn()
        except Unavailable:
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
