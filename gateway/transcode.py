"""JSON ↔ protobuf with the standard proto3 JSON mapping, and path/query parameters → request fields.

Input accepts both the JSON (lowerCamelCase) and the proto (snake_case) field names, as
`json_format.ParseDict` does; output uses the JSON names (`preserving_proto_field_name=False`) and
prints fields with default values too, so clients see every field of a response. Unknown fields,
in bodies and in query strings alike, are a 400: a typo never passes silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from google.protobuf import descriptor_pool, json_format
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from gateway.errors import ApiError
from gateway.routes import Route
from quakestack.jsonmap import message_json


def invalid(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message)


def message_class(descriptor: Any) -> type[Message]:
    return GetMessageClass(descriptor)


def query_lists(query: Any) -> dict[str, list[str]]:
    """A multidict query string (`?a=1&a=2`) as name → every value."""
    out: dict[str, list[str]] = {}
    for key, value in query.items():
        out.setdefault(key, []).append(value)
    return out


def parse_json_body(raw: bytes) -> Any:
    """The decoded JSON body; an empty body means `{}` (POST with nothing to say)."""
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid(f"request body is not valid JSON: {exc}") from None


def _nest(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """`a.b=1` → `{"a": {"b": 1}}`; a name that is both a leaf and a parent is an error."""
    out: dict[str, Any] = {}
    for path, value in pairs:
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise invalid(f"parameter {path!r} conflicts with {part!r}")
            node = child
        if leaf in node:
            raise invalid(f"parameter {path!r} given twice")
        node[leaf] = value
    return out


def _field_for(message: Message, path: str) -> Any:
    """The descriptor of a dotted field path (JSON or proto names), or None."""
    descriptor = message.DESCRIPTOR
    field = None
    for part in path.split("."):
        if descriptor is None:
            return None
        fields = {f.name: f for f in descriptor.fields} | {f.json_name: f for f in descriptor.fields}
        field = fields.get(part)
        if field is None:
            return None
        descriptor = field.message_type
    return field


def _merge(target: Message, values: dict[str, Any], what: str) -> None:
    if not values:
        return
    scratch = type(target)()
    try:
        json_format.ParseDict(values, scratch)
    except json_format.ParseError as exc:
        raise invalid(f"{what}: {exc}{_enum_hint(str(exc))}") from None
    target.MergeFrom(scratch)


def _enum_hint(error: str) -> str:
    """`Invalid enum value X for enum type quakestack.v1.CatalogFormat` → the valid names, spelled out."""
    found = re.search(r"for enum type ([\w.]+)", error)
    if not found:
        return ""
    try:
        enum = descriptor_pool.Default().FindEnumTypeByName(found.group(1))
    except KeyError:
        return ""
    return "; valid: " + ", ".join(v.name for v in enum.values if v.number != 0)


def query_values(message: Message, query: Mapping[str, list[str]], skip: Iterable[str] = ()) -> dict[str, Any]:
    """Query parameters as a nested JSON dict: repeated fields take every value, others exactly one."""
    skipped = set(skip)
    pairs = []
    for name, values in query.items():
        if name in skipped:
            continue
        field = _field_for(message, name)
        if field is None:
            raise invalid(f"unknown query parameter {name!r}")
        if field.is_repeated:
            pairs.append((name, list(values)))
        elif len(values) != 1:
            raise invalid(f"query parameter {name!r} given {len(values)} times")
        else:
            pairs.append((name, values[0]))
    return _nest(pairs)


def build_request(route: Route, path_params: Mapping[str, str], query: Mapping[str, list[str]],
                  body: bytes) -> Message:
    """The RPC's request: body (per the rule's `body`), then query parameters, then path parameters.

    Path parameters win over the same field in the body, as in grpc-gateway and Envoy.
    """
    request = message_class(route.method.input_type)()
    if route.body == "*":
        document = parse_json_body(body)
        if not isinstance(document, dict):
            raise invalid("request body must be a JSON object")
        _merge(request, document, "request body")
    elif route.body:
        document = parse_json_body(body)
        _merge(request, _nest([(route.body, document)]), "request body")
    elif body.strip():
        raise invalid(f"{route.http_method} {route.template} takes no request body")
    if route.body != "*":
        _merge(request, query_values(request, query), "query")
    elif query:
        raise invalid(f"{route.template} takes its fields in the body, not the query string")
    _merge(request, _nest(path_params.items()), "path")
    return request


def upload_header(route: Route, query: Mapping[str, list[str]]) -> Message:
    """The first message of a streamed upload, its header fields taken from the query string."""
    assert route.upload is not None
    header_field = route.upload.header_field
    header = message_class(header_field.message_type)()
    _merge(header, query_values(header, query), "query")
    request = message_class(route.method.input_type)()
    getattr(request, header_field.name).CopyFrom(header)
    return request


def upload_chunk(route: Route, data: bytes) -> Message:
    assert route.upload is not None
    return message_class(route.method.input_type)(**{route.upload.chunk_field.name: data})


def to_json(message: Message, response_body: str = "") -> Any:
    """A response message as JSON; `response_body` selects one field, as the annotation may say."""
    document = message_json(message)  # the convention the CLI's --json shares
    if response_body:
        field = message.DESCRIPTOR.fields_by_name[response_body]
        return document.get(field.json_name)
    return document
