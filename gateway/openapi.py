"""OpenAPI 3.0 document generated from the same route table and descriptors the gateway serves.

Schemas follow the proto3 JSON mapping: lowerCamelCase names, enums as their names, 64-bit
integers as strings, bytes as base64, Timestamp as an RFC 3339 string, Struct/Value free-form,
oneof members mutually exclusive. Every operation documents the JSON error body as its `default`
response, so 4xx/5xx answers (501 while an RPC is unimplemented) conform too.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway import oip
from gateway.routes import Kind, Route
from gateway.streams import NDJSON, OCTET_STREAM, SSE, is_file_stream

FD = FieldDescriptor
INT32 = {FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32}
UINT32 = {FD.TYPE_UINT32, FD.TYPE_FIXED32}
INT64 = {FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64, FD.TYPE_UINT64, FD.TYPE_FIXED64}
NUMBER = {"anyOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]}
WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}},
                            "additionalProperties": True},
    "google.protobuf.DoubleValue": NUMBER, "google.protobuf.FloatValue": NUMBER,
    "google.protobuf.Int64Value": {"type": "string", "format": "int64"},
    "google.protobuf.UInt64Value": {"type": "string", "format": "uint64"},
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    "google.protobuf.UInt32Value": {"type": "integer", "format": "int64", "minimum": 0},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "format": "byte"},
}
ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error: the gRPC status code name, a message and google.rpc.Status details.",
    "required": ["code", "message", "details"],
    "properties": {
        "code": {"type": "string", "example": "NOT_FOUND",
                 "description": "gRPC status code name (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ...)."},
        "message": {"type": "string", "description": "What went wrong, as the service said it (the same text the "
                                                     "CLI prints and the service logs)."},
        "details": {"type": "array", "items": {"type": "object", "additionalProperties": True},
                    "description": "google.rpc.Status details, e.g. BadRequest field violations."},
    },
}
FILE_DESCRIPTION = (
    "A file: `application/octet-stream` (the default, unless `Accept` names SSE or NDJSON) answers the "
    "bytes with `Content-Length` and `Content-Disposition`; send `Want-Repr-Digest: sha-256=1` for a "
    "`Repr-Digest` (RFC 9530) and `X-Checksum-Sha256` (hex) header.")
FILE_HEADERS = {
    "Content-Length": {"description": "Size of the file in bytes.", "schema": {"type": "integer"}},
    "Repr-Digest": {"description": "sha-256 of the file (RFC 9530), when asked for with Want-Repr-Digest.",
                    "schema": {"type": "string"}},
    "X-Checksum-Sha256": {"description": "sha256 of the file, hex, when asked for with Want-Repr-Digest.",
                          "schema": {"type": "string"}},
}


class SchemaBuilder:
    """Collects one component schema per message reachable from the routes.

    `comments` (the protos' comments by full name) become descriptions of messages, fields and enum
    values; `field_extras` (by field full name) are merged into a field's schema (e.g. the
    hyper-parameters of every architecture, known only at run time).
    """

    def __init__(self, comments: dict[str, str] | None = None,
                 field_extras: dict[str, dict[str, Any]] | None = None) -> None:
        self.components: dict[str, dict[str, Any]] = {}
        self.comments = comments or {}
        self.field_extras = field_extras or {}

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        if descriptor.full_name in WELL_KNOWN:
            return dict(WELL_KNOWN[descriptor.full_name])
        if descriptor.full_name not in self.components:
            self.components[descriptor.full_name] = {}  # placeholder first: recursive messages terminate
            self.components[descriptor.full_name] = self.message(descriptor)
        return {"$ref": f"#/components/schemas/{descriptor.full_name}"}

    def message(self, descriptor: Descriptor) -> dict[str, Any]:
        properties = {f.json_name: self.described_field(f) for f in descriptor.fields}
        schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        if self.comments.get(descriptor.full_name):
            schema["description"] = self.comments[descriptor.full_name]
        oneofs = {}
        for oneof in descriptor.oneofs:
            names = [f.json_name for f in oneof.fields]
            if len(names) == 1 and oneof.name == "_" + oneof.fields[0].name:
                continue  # proto3 `optional`: a synthetic oneof, nothing to exclude
            oneofs[oneof.name] = names
        if oneofs:
            # Described, not encoded as `not: {required: [...]}`: generators choke on `not`, and
            # the gateway answers 400 when two members of one oneof are set.
            schema["x-oneofs"] = oneofs
            oneof_text = "Oneofs (set at most one member of each): " + "; ".join(
                f"`{name}`: {', '.join(members)}" for name, members in oneofs.items()) + "."
            schema["description"] = "\n\n".join(x for x in (schema.get("description", ""), oneof_text) if x)
        return schema

    def described_field(self, field: FieldDescriptor) -> dict[str, Any]:
        """A property's schema with its proto comment (a `$ref` wrapped in allOf: siblings of $ref are ignored)."""
        schema = self.field(field)
        text = self.comments.get(field.full_name, "")
        if field.enum_type is not None:
            values = [f"`{v.name}`: {self.comments[key]}" for v in field.enum_type.values
                      if (key := f"{field.enum_type.full_name}.{v.name}") in self.comments]
            if values:
                text = "\n\n".join(x for x in (text, "Values: " + "; ".join(values)) if x)
        extra = self.field_extras.get(field.full_name, {})
        if "description" in extra:
            text = "\n\n".join(x for x in (text, extra["description"]) if x)
        if "$ref" in schema and (text or extra):
            schema = {"allOf": [schema]}
        schema = {**schema, **{k: v for k, v in extra.items() if k != "description"}}
        if text:
            schema["description"] = text
        return schema

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.scalar(value)}
        schema = self.scalar(field)
        if field.is_repeated:
            return {"type": "array", "items": schema}
        return schema

    def scalar(self, field: FieldDescriptor) -> dict[str, Any]:
        t = field.type
        if t == FD.TYPE_MESSAGE or t == FD.TYPE_GROUP:
            return self.ref(field.message_type)
        if t == FD.TYPE_ENUM:
            return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        if t in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
            return dict(NUMBER)
        if t in INT32:
            return {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
        if t in UINT32:
            return {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1}
        if t in INT64:
            return {"type": "string", "format": "int64" if t not in (FD.TYPE_UINT64, FD.TYPE_FIXED64) else "uint64",
                    "pattern": r"^-?[0-9]+$"}
        if t == FD.TYPE_BOOL:
            return {"type": "boolean"}
        if t == FD.TYPE_BYTES:
            return {"type": "string", "format": "byte"}
        return {"type": "string"}


def _leaf_fields(descriptor: Descriptor, prefix: str = "", depth: int = 0) -> list[tuple[str, FieldDescriptor]]:
    """Fields a query string can set: scalars, enums, repeated scalars, and nested ones as `a.b`."""
    out = []
    for f in descriptor.fields:
        name = prefix + f.json_name
        if f.message_type is None or f.message_type.full_name in WELL_KNOWN:
            if f.message_type is None or not f.is_repeated:
                out.append((name, f))
        elif not f.is_repeated and not f.message_type.GetOptions().map_entry and depth < 3:
            out += _leaf_fields(f.message_type, name + ".", depth + 1)
    return out


def _field_at(descriptor: Descriptor, path: str) -> FieldDescriptor:
    field = None
    for part in path.split("."):
        field = descriptor.fields_by_name[part]
        descriptor = field.message_type
    assert field is not None
    return field


def _path_parameters(route: Route, schemas: SchemaBuilder) -> list[dict[str, Any]]:
    out = []
    for var in route.variables:
        field = _field_at(route.method.input_type, var.field_path)
        schema = schemas.scalar(field)
        if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema:
            schema = {**schema, "minLength": 1, "pattern": "^.+$" if var.multi_segment else "^[^/]+$"}
        out.append({"name": var.field_path, "in": "path", "required": True, "schema": schema})
    return out


def _query_parameters(descriptor: Descriptor, bound: set[str], schemas: SchemaBuilder) -> list[dict[str, Any]]:
    """Every settable field not bound by the path or the body (nor nested under one that is)."""
    skip = {_json_path(descriptor, b) for b in bound}
    out = []
    for name, field in _leaf_fields(descriptor):
        if any(name == s or name.startswith(s + ".") for s in skip):
            continue
        out.append({"name": name, "in": "query", "required": False, "schema": schemas.field(field),
                    **({"style": "form", "explode": True} if field.is_repeated else {})})
    return out


def _json_path(descriptor: Descriptor, path: str) -> str:
    names = []
    for part in path.split("."):
        field = descriptor.fields_by_name[part]
        names.append(field.json_name)
        descriptor = field.message_type
    return ".".join(names)


ERROR_REF = {"$ref": "#/components/schemas/Error"}
NDJSON_DESCRIPTION = ("One JSON document per line, as `x-ndjson-line` describes: `{\"result\": message}`, "
                      "or `{\"error\": ...}` last.")


def _sse_event(name: str, data: dict[str, Any], description: str) -> dict[str, Any]:
    """One kind of Server-Sent Event: its `event` name and its `data`, a JSON document of the given schema."""
    return {"type": "object", "description": description, "required": ["event", "data"], "properties": {
        "event": {"type": "string", "enum": [name]},
        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
        "id": {"type": "string"}, "retry": {"type": "integer"}}}


def sse_event_schema(message: dict[str, Any]) -> dict[str, Any]:
    """What each event of a `text/event-stream` answer is (the schema of one event, as before OpenAPI 3.2).

    An event is read as {event, data[, id, retry]} (the SSE field names; `event` is `message` when the
    stream names none): `data` is one JSON message of the RPC's response type, then `end` with `{}`,
    or `error` with the error body instead when the stream fails after its first message.
    """
    return {"oneOf": [
        _sse_event("message", message, "One message of the stream (no `event:` line)."),
        _sse_event("error", ERROR_REF, "The stream failed after its first message; it ends here."),
        _sse_event("end", {"type": "object", "maxProperties": 0}, "The stream ended cleanly."),
    ]}


def ndjson_line_schema(message: dict[str, Any]) -> dict[str, Any]:
    """One line of an `application/x-ndjson` answer: a message, or the error that ended the stream."""
    return {"oneOf": [
        {"type": "object", "required": ["result"], "properties": {"result": message}, "additionalProperties": False},
        {"type": "object", "required": ["error"], "properties": {"error": ERROR_REF}, "additionalProperties": False},
    ]}


def operation(route: Route, schemas: SchemaBuilder) -> dict[str, Any]:
    """One OpenAPI operation for one route."""
    comment = schemas.comments.get(route.method.full_name, "")
    op: dict[str, Any] = {
        "operationId": f"{route.service.name}_{route.method.name}",
        "summary": first_sentence(comment) or f"{route.service.name}.{route.method.name}",
        "tags": [route.service.name],
        "parameters": _path_parameters(route, schemas),
    }
    bound = {v.field_path for v in route.variables}
    if route.kind is Kind.UPLOAD:
        assert route.upload is not None
        op["description"] = ("Streamed upload: the raw file is the request body; the header fields "
                             f"({route.upload.header_field.message_type.name}) are query parameters.")
        op["parameters"] += _query_parameters(route.upload.header_field.message_type, set(), schemas)
        op["requestBody"] = {"required": True, "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    elif route.body == "*":
        op["requestBody"] = {"required": False, "content": {
            "application/json": {"schema": schemas.ref(route.method.input_type)}}}
    else:
        if route.body:
            field = route.method.input_type.fields_by_name[route.body]
            op["requestBody"] = {"required": False, "content": {"application/json": {"schema": schemas.field(field)}}}
            bound.add(route.body)
        op["parameters"] += _query_parameters(route.method.input_type, bound, schemas)
    output = route.method.output_type
    out_schema = schemas.field(output.fields_by_name[route.response_body]) if route.response_body \
        else schemas.ref(output)
    if route.kind is Kind.SERVER_STREAM:
        op["description"] = (
            "Server stream. `text/event-stream` (default): one `data:` line of JSON per message, an "
            "`event: error` with the error body if the stream fails after its first message, then "
            "`event: end`. `application/x-ndjson`: one `{\"result\": message}` line per message and "
            "`{\"error\": {...}}` on failure. Errors before the first message are ordinary JSON errors.")
        content = {SSE: {"schema": sse_event_schema(out_schema)},
                   NDJSON: {"schema": {"type": "string", "description": NDJSON_DESCRIPTION},
                            "x-ndjson-line": ndjson_line_schema(out_schema)}}
        op["x-stream-message"] = out_schema
        ok = {"description": f"stream of {output.name}", "content": content}
        if is_file_stream(route):
            op["description"] = FILE_DESCRIPTION + " " + op["description"]
            ok["content"] = {OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}}, **content}
            ok["headers"] = FILE_HEADERS
    else:
        ok = {"description": output.name, "content": {"application/json": {"schema": out_schema}}}
    op["responses"] = {"200": ok, "default": {"description": "error", "content": {
        "application/json": {"schema": ERROR_REF}}}}
    op["description"] = "\n\n".join(x for x in (comment, f"gRPC `{route.grpc_path}`.", op.get("description", ""))
                                     if x)
    if oip.is_oip(route):
        _oip_bodies(op, route)
    return op


def first_sentence(text: str) -> str:
    """The summary of an operation: its comment's first sentence, without the full stop."""
    head = text.strip().split("\n\n", 1)[0].replace("\n", " ")
    for i, ch in enumerate(head):
        if ch in ".;" and (i + 1 == len(head) or head[i + 1] == " "):
            return head[:i]
    return head


def _oip_bodies(op: dict[str, Any], route: Route) -> None:
    """The Open Inference Protocol's own JSON bodies (gateway.oip) instead of the proto3 JSON mapping."""
    request_schema, response_schema = oip.OPENAPI[route.method.name]
    if request_schema is None:
        op.pop("requestBody", None)
    else:
        op["requestBody"] = {"required": route.method.name == "ModelInfer",
                             "content": {"application/json": {"schema": request_schema}}}
    op["responses"]["200"]["content"] = {"application/json": {"schema": response_schema}}
    op["description"] += oip.DESCRIPTION


def build_openapi(routes: list[Route], *, auth: bool = True, title: str = "quakestack REST API",
                  version: str = "v1", comments: dict[str, str] | None = None,
                  field_extras: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The document served at /openapi.json."""
    schemas = SchemaBuilder(comments, field_extras)
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(routes, key=lambda r: (r.openapi_path, r.http_method)):
        paths.setdefault(route.openapi_path, {})[route.http_method.lower()] = operation(route, schemas)
    components: dict[str, Any] = {"schemas": {"Error": ERROR_SCHEMA, **dict(sorted(schemas.components.items()))}}
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version,
                 "description": "Transcoded from the quakestack.v1 gRPC services' google.api.http annotations."},
        "paths": paths,
        "components": components,
    }
    if auth:
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document
