"""The audit trail: one structured event per state-changing call, to the logs and to object storage.

Who (token id and role, never the token), what (the RPC), which resource (the identifying scalar
fields of the request and of the reply, e.g. a dataset name or the job id created), the outcome (the
gRPC code, refusals included) and the request id. Events are buffered and written as JSON lines to
`audit/<date>/<hour>-<host>-<pid>-<n>.jsonl` (objects are immutable: each flush writes a new one,
periodically and at shutdown), with the same writer as the inference logs.
"""

from __future__ import annotations

from typing import Any

import structlog
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from quakestack.auth import Identity
from quakestack.inference.feedback import InferenceLog
from quakestack.layout import AUDIT_PREFIX
from quakestack.storage import ObjectStore

log = structlog.get_logger()
MAX_VALUE_CHARS = 200
_SCALARS = {FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64,
            FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_BOOL}


def _scalars(message: Message, only_ids: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for descriptor, value in message.ListFields():
        if descriptor.type not in _SCALARS or descriptor.is_repeated:
            continue
        if only_ids and not (descriptor.name.endswith("id") or descriptor.name in ("version", "object_key")):
            continue
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            value = value[:MAX_VALUE_CHARS] + "..."
        out[descriptor.name] = value
    return out


def resource_of(request: Any, response: Any) -> dict[str, Any]:
    """The identifying fields: the request's top-level scalars, then ids in the reply (and one level down)."""
    resource: dict[str, Any] = {}
    if isinstance(request, Message):
        resource.update(_scalars(request))
    if isinstance(response, Message):
        resource.update(_scalars(response, only_ids=True))
        for descriptor, value in response.ListFields():
            if descriptor.type == FieldDescriptor.TYPE_MESSAGE and not descriptor.is_repeated:
                resource.update({k: v for k, v in _scalars(value, only_ids=True).items() if k not in resource})
    return resource


class AuditTrail:
    """Logs each event at once and queues it for the object-storage JSONL (None store: logs only)."""

    def __init__(self, service: str, store: ObjectStore | None, flush_interval_s: float):
        self.service = service
        self.sink = InferenceLog(store, 1.0, interval_s=flush_interval_s, prefix=AUDIT_PREFIX) if store else None

    def record(self, identity: Identity, rpc: str, outcome: str, request_id: str,
               resource: dict[str, Any]) -> None:
        role = identity.role.label if identity.role is not None else "anonymous"
        event = {"actor": identity.id, "role": role, "rpc": rpc, "resource": resource, "outcome": outcome,
                 "request_id": request_id, "service": self.service}
        log.info("audit", **event)
        if self.sink is not None:
            self.sink.record("audit", **event)

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()
