"""The control record: what the user wants of a running job, read by its worker between batches.

`control.json` holds the target epoch count, stop and cancel flags and the current attempt (a worker
whose attempt is not the current one has been replaced and leaves). Changes are read-modify-write
with `If-Match`, so concurrent updates from several replicas never overwrite each other.
"""

from __future__ import annotations

import json
from typing import Any

from quakestack.errors import Conflict, NotFound
from quakestack.layout import control_key
from quakestack.storage import ObjectStore

DEFAULTS: dict[str, Any] = {"epochs": 0, "stop": False, "cancel": False, "attempt": 0}


def read_control(store: ObjectStore, job_id: str) -> dict[str, Any]:
    try:
        return {**DEFAULTS, **json.loads(store.get_bytes(control_key(job_id)))}
    except NotFound:
        return dict(DEFAULTS)


def create_control(store: ObjectStore, job_id: str, **values: Any) -> None:
    store.put_if(control_key(job_id), json.dumps({**DEFAULTS, **values}).encode())


def update_control(store: ObjectStore, job_id: str, **changes: Any) -> dict[str, Any]:
    """Apply changes atomically (retrying lost races); returns the record written."""
    while True:
        try:
            raw, etag = store.get_with_etag(control_key(job_id))
            value: dict[str, Any] = {**DEFAULTS, **json.loads(raw)}
        except NotFound:
            raw, etag, value = b"", None, dict(DEFAULTS)
        value.update(changes)
        try:
            store.put_if(control_key(job_id), json.dumps(value).encode(), etag=etag)
            return value
        except Conflict:
            continue
