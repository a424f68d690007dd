"""The route table, built from the `google.api.http` annotations of the quakestack.v1 descriptors.

The descriptors are the one place that defines the REST API: an annotated RPC is a route, with no
per-RPC code here. aiohttp's router is not used for these paths because it gives ':' and '{' meaning
of its own; Google path templates (`/v1/jobs/{job_id}:stop`, `{name=models/*}`, `**`) are compiled
to regular expressions here instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import unquote

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import FieldDescriptor, FileDescriptor, MethodDescriptor, ServiceDescriptor

from quakestack.oip import open_inference_pb2
from quakestack.v1 import catalog_pb2, data_pb2, inference_pb2, sweep_pb2, trainer_pb2

FILES: tuple[FileDescriptor, ...] = (data_pb2.DESCRIPTOR, trainer_pb2.DESCRIPTOR, sweep_pb2.DESCRIPTOR,
                                     inference_pb2.DESCRIPTOR, open_inference_pb2.DESCRIPTOR, catalog_pb2.DESCRIPTOR)
VERBS = ("get", "put", "post", "delete", "patch")


class Kind(str, Enum):
    """How an RPC is carried over HTTP."""

    UNARY = "unary"
    SERVER_STREAM = "server_stream"   # SSE or NDJSON response
    UPLOAD = "upload"                 # client stream fed from the raw request body


@dataclass(frozen=True)
class PathVar:
    """One `{field.path=pattern}` variable: the regex group and the request field it sets."""

    group: str
    field_path: str
    multi_segment: bool


@dataclass(frozen=True)
class Route:
    """One HTTP binding of one RPC."""

    method: MethodDescriptor
    http_method: str
    template: str
    regex: re.Pattern[str]
    variables: tuple[PathVar, ...]
    body: str
    response_body: str
    kind: Kind
    literal_chars: int = 0
    upload: UploadShape | None = None

    @property
    def service(self) -> ServiceDescriptor:
        return self.method.containing_service

    @property
    def grpc_path(self) -> str:
        return f"/{self.service.full_name}/{self.method.name}"

    @property
    def openapi_path(self) -> str:
        """The template with `{a.b=**}` shortened to `{a.b}`, as OpenAPI path parameters are written."""
        return re.sub(r"\{([^}=]+)=[^}]*\}", r"{\1}", self.template)


@dataclass(frozen=True)
class UploadShape:
    """A client-streaming request that is `oneof { Header header; bytes chunk; }`."""

    header_field: FieldDescriptor
    chunk_field: FieldDescriptor


class TemplateError(ValueError):
    """An annotation whose path template cannot be parsed; raised at start, never per request."""


_SEGMENT = re.compile(r"\{[^}]*\}|[^/{}]+")  # top-level segments; a variable may hold several


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[PathVar, ...], int]:
    """Google API path template → anchored regex over the raw (still %-encoded) path.

    Grammar: `/` segments [`:` verb]; a segment is a literal, `*`, `**` or `{field[=segments]}`.
    Returns the regex, its variables and the count of literal characters (more = more specific).
    """
    if not template.startswith("/") or template.count("{") != template.count("}"):
        raise TemplateError(f"{template}: must start with '/' and close every '{{'")
    path, verb = template, ""
    last_slash = template.rfind("/")
    colon = template.rfind(":")
    if colon > last_slash and "}" not in template[colon:]:
        path, verb = template[:colon], template[colon + 1:]
    variables: list[PathVar] = []
    parts: list[str] = []
    literal = len(verb)
    for raw in _SEGMENT.findall(path[1:]):
        if raw.startswith("{"):
            inner = raw[1:-1]
            name, _, pattern = inner.partition("=")
            pattern = pattern or "*"
            group = f"v{len(variables)}"
            multi = "**" in pattern
            variables.append(PathVar(group, name, multi))
            parts.append(f"(?P<{group}>{_segments_regex(pattern, template)})")
        else:
            parts.append(_segments_regex(raw, template))
            literal += len(raw.replace("*", ""))
    regex = "^/" + "/".join(parts) + (re.escape(":" + verb) if verb else "") + "$"
    return re.compile(regex), tuple(variables), literal


def _segments_regex(pattern: str, template: str) -> str:
    out = []
    for segment in pattern.split("/"):
        if segment == "*":
            out.append("[^/]+")
        elif segment == "**":
            out.append(".+")
        elif segment and not set(segment) & set("{}*"):
            out.append(re.escape(segment))
        else:
            raise TemplateError(f"{template}: bad segment {segment!r}")
    return "/".join(out)


def upload_shape(method: MethodDescriptor) -> UploadShape | None:
    """The header/chunk fields when the request is a oneof of one message and one bytes field."""
    for oneof in method.input_type.oneofs:
        messages = [f for f in oneof.fields if f.type == FieldDescriptor.TYPE_MESSAGE]
        chunks = [f for f in oneof.fields if f.type == FieldDescriptor.TYPE_BYTES]
        if len(oneof.fields) == 2 and len(messages) == 1 and len(chunks) == 1:
            return UploadShape(messages[0], chunks[0])
    return None


def _bindings(rule: http_pb2.HttpRule) -> list[tuple[str, str, str, str]]:
    out = []
    for one in (rule, *rule.additional_bindings):
        pattern = one.WhichOneof("pattern")
        if pattern is None:
            continue
        if pattern == "custom":
            out.append((one.custom.kind.upper(), one.custom.path, one.body, one.response_body))
        else:
            out.append((pattern.upper(), getattr(one, pattern), one.body, one.response_body))
    return out


def routes_for(method: MethodDescriptor) -> list[Route]:
    """Every HTTP binding of one RPC; none for unannotated or bidirectional RPCs."""
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return []
    if method.client_streaming and method.server_streaming:
        return []
    shape = None
    if method.client_streaming:
        shape = upload_shape(method)
        if shape is None:
            return []
        kind = Kind.UPLOAD
    else:
        kind = Kind.SERVER_STREAM if method.server_streaming else Kind.UNARY
    routes = []
    for verb, template, body, response_body in _bindings(options.Extensions[annotations_pb2.http]):
        regex, variables, literal = compile_template(template)
        routes.append(Route(method, verb, template, regex, variables, body, response_body, kind, literal, shape))
    return routes


def build_routes(files: tuple[FileDescriptor, ...] = FILES) -> list[Route]:
    """Every route of every service, most specific first (verb suffixes and literals before variables)."""
    routes = [r for f in files for s in f.services_by_name.values() for m in s.methods
              for r in routes_for(m)]
    return sorted(routes, key=lambda r: (-r.literal_chars, len(r.variables)))


@dataclass
class Match:
    route: Route
    params: dict[str, str] = field(default_factory=dict)


class Router:
    """First matching route by specificity; 404 when no template matches, 405 when only the verb differs."""

    def __init__(self, routes: list[Route]):
        self.routes = routes

    def match(self, http_method: str, raw_path: str) -> Match | list[str]:
        """The match, or the verbs allowed on this path (empty: unknown path)."""
        allowed: list[str] = []
        for route in self.routes:
            found = route.regex.match(raw_path)
            if found is None:
                continue
            if route.http_method != http_method:
                allowed.append(route.http_method)
                continue
            params = {v.field_path: unquote(found.group(v.group)) for v in route.variables}
            return Match(route, params)
        return sorted(set(allowed))
