"""Conversions between stored records and protobuf well-known types: times and free-form structs.

Records on storage keep times as RFC 3339 text (job records, events, cards, manifests) or POSIX
seconds (in memory); the APIs answer google.protobuf.Timestamp. Every servicer converts through
here, so a time means the same instant in storage, gRPC and REST. A missing time is None (the
field stays unset), never the epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2


def utc_now_iso(timespec: str = "auto") -> str:
    """Now as RFC 3339 UTC text with a `+00:00` offset (events, model cards, logs)."""
    return datetime.now(timezone.utc).isoformat(timespec=timespec)


def iso_from_seconds(seconds: float | None, timespec: str = "auto") -> str | None:
    """POSIX seconds as RFC 3339 UTC text ending in `Z`, as protobuf's JSON mapping writes a Timestamp."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


def datetime_from_iso(text: str) -> datetime:
    """RFC 3339 text (`Z` or an offset; a naive time is taken as UTC) as an aware datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def seconds_from_iso(text: str | None) -> float | None:
    return None if not text else datetime_from_iso(text).timestamp()


def timestamp_from_seconds(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    """A Timestamp at nanosecond precision; None (field unset) when there is no time."""
    if seconds is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(round(seconds * 1e9)))
    return ts


def timestamp_from_iso(text: str | None) -> timestamp_pb2.Timestamp | None:
    """A Timestamp from stored RFC 3339 text; None when the record has none."""
    if not text:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(datetime_from_iso(text))
    return ts


def struct_from_dict(values: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(dict(values))
    return out


def dict_from_struct(value: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(value)


def seconds_from_timestamp(ts: timestamp_pb2.Timestamp) -> float:
    """POSIX seconds of a Timestamp (0.0 for an unset one, as proto3 reads it)."""
    return ts.seconds + ts.nanos / 1e9
