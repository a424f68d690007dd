"""Leases: exactly one scheduler replica supervises a job, by a conditional write on `lease.json`.

Created with `If-None-Match: *`; renewed, released or taken over (once expired) with
`If-Match: <etag>` of the version read, so of two replicas racing for a lease exactly one wins.
Every change of holder increments the fencing token; a holder whose renewal fails has lost the lease
and stops supervising. Expiry compares wall clocks: replicas' clocks must agree within the TTL.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass

from quakestack.errors import Conflict, NotFound
from quakestack.layout import lease_key
from quakestack.storage import ObjectStore


@dataclass
class Lease:
    job_id: str
    owner: str
    token: int
    expires_at: float
    etag: str

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


class Leases:
    """The leases one replica (owner) takes and keeps."""

    def __init__(self, store: ObjectStore, owner: str, ttl_s: float):
        self.store = store
        self.owner = owner
        self.ttl_s = ttl_s

    def read(self, job_id: str) -> Lease | None:
        try:
            raw, etag = self.store.get_with_etag(lease_key(job_id))
        except NotFound:
            return None
        value = json.loads(raw)
        return Lease(job_id, value["owner"], int(value["token"]), float(value["expires_at"]), etag)

    def _write(self, job_id: str, token: int, expires_at: float, etag: str | None) -> Lease:
        body = json.dumps({"owner": self.owner, "token": token, "expires_at": expires_at}).encode()
        new_etag = self.store.put_if(lease_key(job_id), body, etag=etag)
        return Lease(job_id, self.owner, token, expires_at, new_etag)

    def acquire(self, job_id: str) -> Lease | None:
        """The lease if it was free, expired or released; None when another live holder has it."""
        current = self.read(job_id)
        if current is not None and not current.expired and current.owner != self.owner:
            return None
        try:
            if current is None:
                return self._write(job_id, 1, time.time() + self.ttl_s, None)
            return self._write(job_id, current.token + 1, time.time() + self.ttl_s, current.etag)
        except Conflict:
            return None  # another replica won the race

    def renew(self, lease: Lease) -> Lease | None:
        """Extend our lease; None when it was taken over meanwhile (we lost it)."""
        try:
            return self._write(lease.job_id, lease.token, time.time() + self.ttl_s, lease.etag)
        except (Conflict, NotFound):
            return None

    def release(self, lease: Lease) -> None:
        """Give the lease up at once (expired now) so any replica may take the job later."""
        with contextlib.suppress(Conflict, NotFound):
            self._write(lease.job_id, lease.token, 0.0, lease.etag)
