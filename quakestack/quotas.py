"""Per-token limits: request rate (token buckets), stored bytes (a ledger in the metadata store), queued jobs.

The limits themselves are part of each token's entry (quakestack.auth), so one place configures
who may call and how much. The rate is enforced per process (each service and the gateway keep
their own buckets); stored bytes are counted in the metadata store's `usage` table, updated after each
finished upload.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from quakestack.auth import Identity
from quakestack.errors import ResourceExhausted
from quakestack.metadata.usage import UsageLedger


class RateLimiter:
    """A token bucket per identity: `rps` per second, bursts of up to max(1, rps) calls."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # id -> (tokens, last refill)
        self._lock = threading.Lock()

    def check(self, identity: Identity) -> int | None:
        """None when the call may go ahead, else the whole seconds to wait (the Retry-After)."""
        rate = identity.limits.requests_per_s
        if rate is None:
            return None
        capacity = max(1.0, rate)
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(identity.id, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[identity.id] = (tokens - 1.0, now)
                return None
            self._buckets[identity.id] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))


def storage_quota_guard(ledger: UsageLedger, identity: Identity) -> Callable[[int], None]:
    """A per-chunk check for one upload: raises RESOURCE_EXHAUSTED as the running total crosses the quota."""
    limit = identity.limits.stored_bytes
    if limit is None:
        return lambda _total: None
    used = ledger.used(identity.id)

    def check(total: int) -> None:
        if used + total > limit:
            raise ResourceExhausted(f"storage quota of token {identity.id} is {limit} bytes and {used} are "
                                    "used; this upload would cross it, nothing of it was kept")

    return check


def check_queued_jobs(identity: Identity, active_of_owner: int) -> None:
    """RESOURCE_EXHAUSTED when the caller already has its quota of queued or running jobs."""
    limit = identity.limits.queued_jobs
    if limit is not None and active_of_owner >= limit:
        raise ResourceExhausted(f"token {identity.id} already has {active_of_owner} queued or running jobs "
                                f"(quota {limit}); wait for one to finish or cancel one")
