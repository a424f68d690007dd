"""Gateway pieces without a stack: templates, routing, transcoding, error mapping, stream framing, OpenAPI."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from gateway.auth import GatewayAuth
from gateway.errors import ApiError, error_body, http_status
from gateway.openapi import build_openapi
from gateway.routes import Kind, Router, build_routes, compile_template
from gateway.streams import NDJSON, SSE, negotiate, write_stream
from gateway.transcode import build_request, to_json
from quakestack.auth import Authorizer, TokenSet
from quakestack.v1 import data_pb2, trainer_pb2
from tests.gateway.helpers import aread_sse_events

ROUTES = build_routes()
ROUTER = Router(ROUTES)

MAPPING = {
    "OK": 200, "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409, "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504, "UNKNOWN": 500,
    "INTERNAL": 500, "DATA_LOSS": 500,
}


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda c: c.name)
def test_status_mapping_covers_every_code(code: grpc.StatusCode) -> None:
    assert http_status(code) == MAPPING[code.name]
    assert error_body(code, "m") == {"code": code.name, "message": "m", "details": []}


@pytest.mark.parametrize(("template", "path", "params"), [
    ("/v1/training-jobs/{job_id}:stop", "/v1/training-jobs/j-1:stop", {"job_id": "j-1"}),
    ("/v1/models/{name}/versions/{version}", "/v1/models/m/versions/3", {"name": "m", "version": "3"}),
    ("/v1/{name=datasets/*}", "/v1/datasets/abc", {"name": "datasets/abc"}),
    ("/v1/{path=**}:get", "/v1/a/b/c:get", {"path": "a/b/c"}),
    ("/v1/files/**", "/v1/files/x/y", {}),
])
def test_templates_compile(template: str, path: str, params: dict[str, str]) -> None:
    regex, variables, _ = compile_template(template)
    found = regex.match(path)
    assert found is not None
    assert {v.field_path: found.group(v.group) for v in variables} == params
    if "**" not in template:
        assert regex.match(path + "/extra") is None


def test_router_prefers_verb_routes_and_decodes_params() -> None:
    match = ROUTER.match("GET", "/v1/dataset-jobs/abc:watch")
    assert not isinstance(match, list)
    assert match.route.method.name == "WatchDatasetJob" and match.params == {"job_id": "abc"}
    match = ROUTER.match("GET", "/v1/dataset-jobs/a%20b")
    assert not isinstance(match, list) and match.params == {"job_id": "a b"}
    assert ROUTER.match("PUT", "/v1/datasets") == ["GET", "POST"]
    assert ROUTER.match("GET", "/v1/nope") == []


def test_every_annotated_rpc_has_a_route_and_bidi_has_none() -> None:
    names = {r.method.name for r in ROUTES}
    assert "Annotate" not in names
    assert {"UploadFile", "StreamTrainingProgress", "DownloadCheckpoint", "Predict"} <= names
    kinds = {r.method.name: r.kind for r in ROUTES}
    assert kinds["UploadFile"] is Kind.UPLOAD and kinds["WatchDatasetJob"] is Kind.SERVER_STREAM


def _route(name: str):
    return next(r for r in ROUTES if r.method.name == name)


def test_query_params_nested_repeated_and_enum() -> None:
    request = build_request(_route("ListTrainingJobs"), {}, {"pageSize": ["5"], "state": ["JOB_STATE_RUNNING"]}, b"")
    assert request.page_size == 5 and request.state == 2
    request = build_request(_route("ListDatasetJobs"), {}, {"page_size": ["7"]}, b"")  # proto names work too
    assert request.page_size == 7
    with pytest.raises(ApiError) as err:
        build_request(_route("ListDatasets"), {}, {"bogus": ["1"]}, b"")
    assert err.value.http == 400


def test_query_nested_and_repeated_fields() -> None:
    from gateway.transcode import query_values

    message = data_pb2.CreateDatasetRequest()
    values = query_values(message, {"window.lengthS": ["30"], "filters.magnitudeTypes": ["ml", "md"]})
    assert values == {"window": {"lengthS": "30"}, "filters": {"magnitudeTypes": ["ml", "md"]}}


def test_body_path_override_and_unknown_fields() -> None:
    route = _route("StopTrainingJob")
    request = build_request(route, {"job_id": "from-path"}, {}, b'{"jobId": "from-body"}')
    assert request.job_id == "from-path"
    for bad in (b'{"nope": 1}', b"[1]", b"{not json"):
        with pytest.raises(ApiError) as err:
            build_request(route, {"job_id": "x"}, {}, bad)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(ApiError):
        build_request(_route("DownloadCheckpoint"), {"job_id": "j", "epoch": "not-a-number"}, {}, b"")


def test_json_output_is_the_standard_mapping() -> None:
    job = trainer_pb2.TrainingJob(job_id="j", state=2, epochs=3)
    job.create_time.FromSeconds(0)
    out = to_json(trainer_pb2.GetTrainingJobResponse(job=job))
    assert out["job"]["jobId"] == "j" and out["job"]["state"] == "JOB_STATE_RUNNING"
    assert out["job"]["createTime"] == "1970-01-01T00:00:00Z"
    assert to_json(data_pb2.UploadFileResponse(size_bytes=5))["sizeBytes"] == "5"


@pytest.mark.parametrize(("accept", "expected"), [
    (None, SSE), ("*/*", SSE), ("text/event-stream", SSE), ("application/x-ndjson", NDJSON),
    ("text/event-stream;q=0.5, application/x-ndjson", NDJSON),
])
def test_stream_format_negotiation(accept: str | None, expected: str) -> None:
    assert negotiate(accept).content_type == expected


def test_tokens_parse_and_check() -> None:
    auth = GatewayAuth(Authorizer(TokenSet("rw, ro:ro ,adm:admin"), enabled=True))
    assert "rw" not in repr(auth.authorizer.tokens.env_tokens)
    auth.check("quakestack.v1.ModelRegistryService/RegisterModel", "Bearer rw")
    auth.check("quakestack.v1.ModelRegistryService/ListModels", "Bearer ro")
    auth.check("quakestack.v1.DataService/DeleteDataset", "Bearer adm")
    for rpc, header, status in [("quakestack.v1.ModelRegistryService/ListModels", None, 401),
                                ("quakestack.v1.ModelRegistryService/ListModels", "Bearer nope", 401),
                                ("quakestack.v1.ModelRegistryService/ListModels", "Basic rw", 401),
                                ("quakestack.v1.ModelRegistryService/RegisterModel", "Bearer ro", 403),
                                ("quakestack.v1.DataService/DeleteDataset", "Bearer ro", 403),
                                ("quakestack.v1.DataService/DeleteDataset", "Bearer rw", 403)]:
        with pytest.raises(ApiError) as err:
            auth.check(rpc, header)
        assert err.value.http == status
        if status == 401:
            assert err.value.headers["WWW-Authenticate"].startswith("Bearer")
    # no tokens configured: auth is off
    GatewayAuth(Authorizer(TokenSet(""), enabled=False)).check("quakestack.v1.DataService/DeleteDataset", None)


async def _serve_stream(messages, accept: str) -> tuple[int, str, bytes]:
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await write_stream(request, messages(), negotiate(accept))
        except ApiError as exc:
            return web.json_response(exc.body(), status=exc.http)

    app = web.Application()
    app.router.add_get("/s", handler)
    async with TestServer(app) as server, ClientSession() as session, \
            session.get(server.make_url("/s"), headers={"Accept": accept}) as response:
        return response.status, response.headers["Content-Type"], await response.read()


def _failing_after(count: int):
    async def messages():
        for i in range(count):
            yield trainer_pb2.StreamTrainingProgressResponse(sequence=i + 1)
        raise grpc.aio.AioRpcError(grpc.StatusCode.INTERNAL, grpc.aio.Metadata(), grpc.aio.Metadata(), "boom")
    return messages


def test_error_mid_stream_is_the_final_event() -> None:
    status, ctype, body = asyncio.run(_serve_stream(_failing_after(2), SSE))
    assert status == 200 and ctype.startswith(SSE)
    text = body.decode()
    assert text.count("data: ") == 3
    assert text.endswith('event: error\ndata: {"code":"INTERNAL","message":"boom","details":[]}\n\n')

    status, ctype, body = asyncio.run(_serve_stream(_failing_after(2), NDJSON))
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert status == 200 and ctype.startswith(NDJSON)
    assert [line["result"]["sequence"] for line in lines[:2]] == ["1", "2"]
    assert lines[2] == {"error": {"code": "INTERNAL", "message": "boom", "details": []}}


def test_error_before_the_first_message_keeps_its_status() -> None:
    status, _, body = asyncio.run(_serve_stream(_failing_after(0), SSE))
    assert status == 500 and json.loads(body)["code"] == "INTERNAL"


def test_sse_helper_parses_events_in_order() -> None:
    async def messages():
        for i in range(3):
            yield trainer_pb2.StreamTrainingProgressResponse(sequence=i + 1)

    async def run() -> list:
        app = web.Application()

        async def handler(request: web.Request) -> web.StreamResponse:
            return await write_stream(request, messages(), negotiate(SSE))

        app.router.add_get("/s", handler)
        async with TestServer(app) as server, ClientSession() as session, \
                session.get(server.make_url("/s")) as response:
            return [e async for e in aread_sse_events(response)]

    events = asyncio.run(run())
    assert [e.data["sequence"] for e in events if e.event == "message"] == ["1", "2", "3"]
    assert events[-1].event == "end"


def test_openapi_schemas_follow_the_json_mapping() -> None:
    doc = build_openapi(ROUTES)
    schemas = doc["components"]["schemas"]
    job = schemas["quakestack.v1.TrainingJob"]["properties"]
    assert job["createTime"] == {"type": "string", "format": "date-time"}
    assert job["state"]["type"] == "string" and "JOB_STATE_RUNNING" in job["state"]["enum"]
    assert job["hyperParameters"]["type"] == "object"
    assert schemas["quakestack.v1.UploadFileResponse"]["properties"]["sizeBytes"]["type"] == "string"
    assert schemas["quakestack.v1.Waveforms"]["properties"]["data"]["format"] == "byte"
    assert schemas["quakestack.v1.DatasetJob"]["properties"]["skipped"]["additionalProperties"]["type"] == "string"
    assert "x-oneofs" in schemas["quakestack.v1.EvaluateModelRequest"]
    assert set(doc["paths"]) == {r.openapi_path for r in ROUTES}
    progress = doc["paths"]["/v1/training-jobs/{job_id}:progress"]["get"]
    assert set(progress["responses"]["200"]["content"]) == {SSE, NDJSON}
    for verbs in doc["paths"].values():
        for op in verbs.values():
            assert op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    upload = doc["paths"]["/v1/uploads"]["post"]
    assert "application/octet-stream" in upload["requestBody"]["content"]
    assert {p["name"] for p in upload["parameters"]} == {"filename", "sizeBytes", "sha256", "archiveKey", "uploadId"}
