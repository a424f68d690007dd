"""The gateway of the real stack over real HTTP: every annotated RPC reaches its backend, errors map,
uploads stream into storage, server streams answer as SSE/NDJSON."""

from __future__ import annotations

import http.client as httpclient
import json
import os
import urllib.parse

import pytest
from google.protobuf.descriptor import FieldDescriptor

from gateway.backends import SERVICE_BACKENDS
from gateway.routes import Kind, Route, build_routes
from quakestack.stack import Stack
from quakestack.storage import ObjectStore
from tests.gateway.helpers import http, read_sse_events
from tests.helpers import sample_value, scrape

ROUTES = build_routes()


def _dummy(route: Route, field_path: str) -> str:
    descriptor = route.method.input_type
    field = None
    for part in field_path.split("."):
        field = descriptor.fields_by_name[part]
        descriptor = field.message_type
    assert field is not None
    return "1" if field.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
                                     FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64) else "gw-dummy"


def _url(stack: Stack, route: Route) -> str:
    path = route.template
    for var in route.variables:
        start = path.index("{")
        path = path[:start] + urllib.parse.quote(_dummy(route, var.field_path), safe="") + path[path.index("}") + 1:]
    return stack.endpoints().gateway + path


def _started(stack: Stack, route: Route) -> float:
    text = scrape(stack.endpoints().metrics[SERVICE_BACKENDS[route.service.full_name]])
    return sample_value(text, "grpc_server_started_total", grpc_service=route.service.full_name,
                        grpc_method=route.method.name)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.http_method} {r.template}")
def test_every_annotated_rpc_reaches_its_backend(stack: Stack, route: Route) -> None:
    """Generated from the descriptors: a new annotated RPC is tested without touching this file."""
    before = _started(stack, route)
    url, body, headers = _url(stack, route), None, {"x-request-id": f"gen-{route.method.name}"}
    if route.kind is Kind.UPLOAD:  # the header's first text field (UploadFile's filename, ImportModel's name)
        first = next(f for f in route.upload.header_field.message_type.fields if f.type == f.TYPE_STRING)
        url += f"?{first.json_name}=gen-test.bin"
        body, headers["Content-Type"] = b"generated test payload", "application/octet-stream"
    elif route.body:
        body, headers["Content-Type"] = b"{}", "application/json"
    if route.kind is Kind.SERVER_STREAM:
        headers["Accept"] = "application/x-ndjson"
    reply = http(route.http_method, url, body, headers, timeout=30)
    assert reply.headers["x-request-id"] == f"gen-{route.method.name}"
    assert _started(stack, route) == before + 1, f"{route.method.name} never reached its backend: {reply}"
    oip = route.service.full_name == "inference.GRPCInferenceService"  # the protocol's own JSON (gateway.oip)
    if reply.status >= 400:
        error = reply.json()
        keys = {"code", "message", "details"} | ({"error"} if oip else set())
        assert set(error) == keys and error["code"] != "UNAVAILABLE", error
    elif route.kind is Kind.SERVER_STREAM:
        assert reply.headers["content-type"].startswith("application/x-ndjson")
    else:
        assert isinstance(reply.json(), (dict, list) if oip else dict)


def test_real_error_mapping(stack: Stack) -> None:
    base = stack.endpoints().gateway
    reply = http("GET", base + "/v1/dataset-jobs")  # UNIMPLEMENTED until DataService grows jobs
    if reply.status != 200:
        assert (reply.status, reply.json()["code"]) == (501, "UNIMPLEMENTED")
    reply = http("POST", base + "/v1/uploads?filename=..%2Fx", b"data", {"Content-Type": "application/octet-stream"})
    assert (reply.status, reply.json()["code"]) == (400, "INVALID_ARGUMENT")
    reply = http("GET", base + "/v1/no-such-thing")
    assert (reply.status, reply.json()) == (404, {"code": "NOT_FOUND", "message": "no route for GET /v1/no-such-thing",
                                                  "details": []})
    reply = http("PUT", base + "/v1/datasets")
    assert reply.status == 405 and reply.headers["allow"] == "GET, POST" and reply.json()["code"]
    reply = http("POST", base + "/v1/datasets", b'{"noSuchField": 1}', {"Content-Type": "application/json"})
    assert (reply.status, reply.json()["code"]) == (400, "INVALID_ARGUMENT")
    reply = http("GET", base + "/v1/datasets?noSuchParam=1")
    assert reply.status == 400


def test_request_id_generated_or_echoed(stack: Stack) -> None:
    base = stack.endpoints().gateway
    assert http("GET", base + "/v1/models", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = http("GET", base + "/v1/models").headers["x-request-id"]
    assert len(generated) == 32
    log = (stack.log_dir / "gateway.log").read_text()
    assert '"request_id": "abc-123"' in log and '"route": "/v1/models"' in log


def _chunks(payload: bytes, size: int = 65536):
    for start in range(0, len(payload), size):
        yield payload[start:start + size]


def test_upload_streams_into_storage(stack: Stack, store: ObjectStore) -> None:
    payload = os.urandom(700_000)
    base = stack.endpoints().gateway
    reply = http("POST", base + f"/v1/uploads?filename=rest.mseed&sizeBytes={len(payload)}", _chunks(payload),
                 {"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"})
    assert reply.status == 200, reply.body
    result = reply.json()
    assert result["objectKey"].endswith("/rest.mseed") and result["sizeBytes"] == str(len(payload))
    assert store.get_bytes(result["objectKey"]) == payload
    reply = http("POST", base + "/v1/uploads?filename=x.bin", b"{}", {"Content-Type": "application/json"})
    assert reply.status == 415


def test_server_stream_errors_keep_their_status(stack: Stack) -> None:
    """WatchDatasetJob and DownloadCheckpoint fail before their first message: a plain JSON error."""
    base = stack.endpoints().gateway
    for path in ("/v1/dataset-jobs/nope:watch", "/v1/training-jobs/nope/checkpoints/1:download"):
        for accept in ("text/event-stream", "application/x-ndjson"):
            reply = http("GET", base + path, headers={"Accept": accept})
            if reply.status == 200:  # implemented and streaming: events (or an in-stream error) follow
                assert reply.headers["content-type"].startswith(accept)
                continue
            assert reply.headers["content-type"].startswith("application/json")
            assert reply.json()["code"] in {"NOT_FOUND", "UNIMPLEMENTED", "INVALID_ARGUMENT"}


def test_sse_reader_on_a_live_connection(stack: Stack) -> None:
    """read_sse_events works on an http.client response (what the progress test uses)."""
    parsed = urllib.parse.urlparse(stack.endpoints().gateway)
    conn = httpclient.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    conn.request("GET", "/v1/training-jobs/nope:progress", headers={"Accept": "text/event-stream"})
    response = conn.getresponse()
    try:
        if response.status == 200:
            events = list(read_sse_events(response))
            assert events and events[-1].event in {"end", "error"}
        else:
            assert json.loads(response.read())["code"]
    finally:
        conn.close()


def test_builtin_endpoints(stack: Stack) -> None:
    base = stack.endpoints().gateway
    assert http("GET", base + "/readyz").json()["ready"] is True
    spec = http("GET", base + "/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/v1/training-jobs/{job_id}:stop" in spec["paths"]
    docs = http("GET", base + "/docs")
    assert docs.status == 200 and b"/v1/uploads" in docs.body and b"http://" not in docs.body.replace(
        b"http://127", b"")
    metrics = http("GET", base + "/metrics").body.decode()
    assert sample_value(metrics, "quakestack_gateway_requests_total", route="/openapi.json", method="GET",
                        status="200") >= 1
    assert "quakestack_gateway_request_duration_seconds_bucket" in metrics
    assert http("POST", base + "/healthz").status == 405
