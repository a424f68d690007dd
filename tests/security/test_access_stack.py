"""A stack with tokens: every RPC (enumerated from the servers' own descriptors) and every REST route
refuses no token and a too-weak token and accepts the right one; quotas, rate limits, rotation, the
audit trail, no secret in any log, and the inference service's least-privilege S3 identity."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from minio import Minio
from minio.error import S3Error

from gateway.routes import Kind, build_routes
from quakestack.auth import OPEN_SERVICES, RPC_ROLES, Role, is_state_changing
from quakestack.client import channel, reflected_services
from quakestack.metadata.database import Database
from quakestack.stack import SERVICES, Stack
from quakestack.storage import ObjectStore
from quakestack.v1 import common_pb2, data_pb2, data_pb2_grpc, trainer_pb2, trainer_pb2_grpc
from tests.conftest import REPO_ROOT, fresh_settings
from tests.datasets import publish_synthetic_dataset
from tests.gateway.helpers import http
from tests.helpers import json_log_lines, upload_requests, wait_for
from tests.trainer.conftest import hyper

ADMIN, RW, RO = "adm-5ecret-a1b2c3", "rw-5ecret-d4e5f6", "ro-5ecret-g7h8i9"
QUOTA, RATE, ROTATED = "qt-5ecret-j1k2l3", "rt-5ecret-m4n5o6", "rot-5ecret-p7q8r9"
JOBS = "jb-5ecret-s1t2u3"
QUOTA_BYTES = 300_000
TOKEN_OF = {Role.READONLY: RO, Role.READWRITE: RW, Role.ADMIN: ADMIN}
ACCEPTED_ANYWAY = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir = tmp_path_factory.mktemp("secured")
    tokens_file = state_dir / "tokens"
    tokens_file.write_text(f"# rotated without restart\nquota={QUOTA} stored_bytes={QUOTA_BYTES}\n"
                           f"rate={RATE}:ro rps=1\njobs={JOBS}:rw queued_jobs=1\n")
    settings = fresh_settings(state_dir, health_interval_s=0.5, audit_flush_s=0.5,
                              api_tokens=f"admin1={ADMIN}:admin,writer={RW},reader={RO}:ro",
                              api_tokens_file=str(tokens_file))
    running = Stack(settings, state_dir=state_dir)
    running.start()
    yield running
    running.stop()


def _md(token: str | None) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")] if token else []


def _methods(addr: str) -> list[tuple[str, object]]:
    """Every RPC the server registered, from its own reflected descriptors."""
    out = []
    with channel(addr) as ch:
        pool = DescriptorPool(ProtoReflectionDescriptorDatabase(ch))
        for service in reflected_services(ch):
            if service in OPEN_SERVICES:
                continue
            for method in pool.FindServiceByName(service).methods:
                out.append((f"{service}/{method.name}", method))
    return out


def _call(ch: grpc.Channel, rpc: str, method, token: str | None, timeout: float = 10) -> grpc.StatusCode:
    path, md = "/" + rpc, _md(token)
    try:
        if method.client_streaming and method.server_streaming:
            list(ch.stream_stream(path)(iter([]), metadata=md, timeout=timeout))
        elif method.client_streaming:
            ch.stream_unary(path)(iter([]), metadata=md, timeout=timeout)
        elif method.server_streaming:
            list(ch.unary_stream(path)(b"", metadata=md, timeout=timeout))
        else:
            ch.unary_unary(path)(b"", metadata=md, timeout=timeout)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_every_registered_rpc_is_classified(secured: Stack) -> None:
    for name in SERVICES:
        methods = _methods(getattr(secured.settings, f"{name}_addr"))
        assert methods, name
        missing = [rpc for rpc, _ in methods if rpc not in RPC_ROLES]
        assert not missing, f"RPCs without an access rule in quakestack.auth.RPC_ROLES: {missing}"


def test_every_rpc_refuses_missing_and_weak_tokens_and_accepts_the_right_one(secured: Stack) -> None:
    for name in SERVICES:
        addr = getattr(secured.settings, f"{name}_addr")
        with channel(addr) as ch:
            for rpc, method in _methods(addr):
                required = RPC_ROLES[rpc]
                assert _call(ch, rpc, method, None) == grpc.StatusCode.UNAUTHENTICATED, rpc
                assert _call(ch, rpc, method, "not-a-token") == grpc.StatusCode.UNAUTHENTICATED, rpc
                if required > Role.READONLY:
                    weaker = TOKEN_OF[Role(required - 1)]
                    assert _call(ch, rpc, method, weaker) == grpc.StatusCode.PERMISSION_DENIED, rpc
                assert _call(ch, rpc, method, TOKEN_OF[required]) not in ACCEPTED_ANYWAY, rpc


def _fill(template: str) -> str:
    def value(match: re.Match[str]) -> str:
        pattern = match.group(1).partition("=")[2] or "*"
        return pattern.replace("**", "x").replace("*", "x")

    return re.sub(r"\{([^}]*)\}", value, template)


def _rest(secured: Stack, route, token: str | None) -> int:
    url = secured.endpoints().gateway + _fill(route.template)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = None
    if route.kind is Kind.UPLOAD:
        url += "?filename=enum.bin"
        headers["Content-Type"] = "application/octet-stream"
        body = b"x"
    elif route.http_method in ("POST", "PUT", "PATCH"):
        headers["Content-Type"] = "application/json"
        body = b"{}"
    if route.kind is Kind.SERVER_STREAM:
        headers["Accept"] = "application/x-ndjson"
    try:
        return http(route.http_method, url, body, headers, timeout=15).status
    except TimeoutError:
        return 0  # a stream that stayed open: it was let through


def test_every_route_answers_401_403_and_lets_the_right_token_through(secured: Stack) -> None:
    routes = build_routes()
    assert routes
    for route in routes:
        rpc = route.grpc_path.lstrip("/")
        required = RPC_ROLES[rpc]
        assert _rest(secured, route, None) == 401, route.template
        if required > Role.READONLY:
            assert _rest(secured, route, TOKEN_OF[Role(required - 1)]) == 403, route.template
        assert _rest(secured, route, TOKEN_OF[required]) not in (401, 403), route.template


def test_whoami(secured: Stack) -> None:
    url = secured.endpoints().gateway + "/v1/whoami"
    assert http("GET", url).json() == {"id": "anonymous", "role": "anonymous", "authEnabled": True}
    assert http("GET", url, headers={"Authorization": f"Bearer {RO}"}).json() == {
        "id": "reader", "role": "readonly", "authEnabled": True}
    assert http("GET", url, headers={"Authorization": f"Bearer {ADMIN}"}).json()["role"] == "admin"
    assert http("GET", url, headers={"Authorization": "Bearer wrong"}).status == 401


def _payload(n: int, seed: int) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * (n // 32) + b"z" * (n % 32)


def test_storage_quota_stops_the_upload_that_crosses_it(secured: Stack) -> None:
    store = ObjectStore.from_settings(secured.settings)
    with channel(secured.settings.data_addr) as ch:
        stub = data_pb2_grpc.DataServiceStub(ch)
        kept = []
        for i in range(2):
            payload = _payload(100_000, i)
            reply = stub.UploadFile(upload_requests(f"quota-{i}.bin", payload), metadata=_md(QUOTA), timeout=30)
            assert reply.sha256 == hashlib.sha256(payload).hexdigest()
            kept.append((reply.object_key, reply.sha256))
        with pytest.raises(grpc.RpcError) as err:
            stub.UploadFile(upload_requests("quota-over.bin", _payload(250_000, 9)), metadata=_md(QUOTA), timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "quota" in err.value.details()
    for key, digest in kept:
        assert hashlib.sha256(store.get_bytes(key)).hexdigest() == digest
    assert not [o.key for o in store.list("raw/") if o.key.endswith("/quota-over.bin")]
    # the same over REST: 429, and a small upload that still fits goes through
    url = secured.endpoints().gateway + "/v1/uploads?filename=quota-rest.bin"
    headers = {"Authorization": f"Bearer {QUOTA}", "Content-Type": "application/octet-stream"}
    assert http("POST", url, _payload(150_000, 3), headers).status == 429
    assert http("POST", url, _payload(50_000, 4), headers).status == 200


def test_request_rate_limit_gives_429_with_retry_after(secured: Stack) -> None:
    url = secured.endpoints().gateway + "/v1/models"
    replies = [http("GET", url, headers={"Authorization": f"Bearer {RATE}"}) for _ in range(4)]
    limited = [r for r in replies if r.status == 429]
    assert limited and replies[0].status == 200
    assert limited[0].headers["retry-after"].isdigit() and int(limited[0].headers["retry-after"]) >= 1
    assert limited[0].json()["code"] == "RESOURCE_EXHAUSTED"
    time.sleep(1.1)
    with channel(secured.settings.trainer_addr) as ch:
        stub = trainer_pb2_grpc.ModelRegistryServiceStub(ch)
        codes, trailers = [], []
        for _ in range(4):
            try:
                stub.ListModels(trainer_pb2.ListModelsRequest(), metadata=_md(RATE), timeout=10)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.append(exc.code())
                trailers.append(dict(exc.trailing_metadata() or ()))
    assert codes[0] == grpc.StatusCode.OK and grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert trailers[0]["retry-after"].isdigit()


def test_tokens_rotate_without_restart(secured: Stack) -> None:
    tokens_file = Path(secured.settings.api_tokens_file)
    original = tokens_file.read_text()
    url = secured.endpoints().gateway + "/v1/models"
    auth = {"Authorization": f"Bearer {ROTATED}"}

    def grpc_code() -> grpc.StatusCode:
        with channel(secured.settings.trainer_addr) as ch:
            try:
                trainer_pb2_grpc.ModelRegistryServiceStub(ch).ListModels(trainer_pb2.ListModelsRequest(),
                                                                  metadata=_md(ROTATED), timeout=10)
            except grpc.RpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

    assert http("GET", url, headers=auth).status == 401
    tmp = tokens_file.with_suffix(".new")
    tmp.write_text(original + f"rotated={ROTATED}:ro\n")
    os.replace(tmp, tokens_file)
    try:
        assert wait_for(lambda: http("GET", url, headers=auth).status == 200, 10, 0.3)
        assert wait_for(lambda: grpc_code() == grpc.StatusCode.OK, 10, 0.3)
    finally:
        tmp.write_text(original)
        os.replace(tmp, tokens_file)
    assert wait_for(lambda: http("GET", url, headers=auth).status == 401, 10, 0.3)
    assert wait_for(lambda: grpc_code() == grpc.StatusCode.UNAUTHENTICATED, 10, 0.3)


def test_queued_jobs_quota(secured: Stack, tmp_path_factory: pytest.TempPathFactory) -> None:
    store = ObjectStore.from_settings(secured.settings)
    with closing(Database.from_settings(secured.settings)) as metadata:
        publish_synthetic_dataset(store, metadata, "quota-jobs", tmp_path_factory.mktemp("ds"), n_events=60,
                                  n_noise=10)
    request = trainer_pb2.CreateTrainingJobRequest(dataset="quota-jobs", architecture="convnetquake_ingv",
                                                   hyper_parameters=hyper(n_samples=3000, epochs=50))
    with channel(secured.settings.trainer_addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        first = stub.CreateTrainingJob(request, metadata=_md(JOBS), timeout=30).job
        try:
            with pytest.raises(grpc.RpcError) as err:
                stub.CreateTrainingJob(request, metadata=_md(JOBS), timeout=30)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "queued" in err.value.details()
            url = secured.endpoints().gateway + "/v1/training-jobs"
            body = json.dumps({"dataset": "quota-jobs", "architecture": "convnetquake_ingv"}).encode()
            reply = http("POST", url, body, {"Authorization": f"Bearer {JOBS}", "Content-Type": "application/json"})
            assert reply.status == 429
            other = stub.CreateTrainingJob(request, metadata=_md(RW), timeout=30).job  # another token's quota
            stub.CancelTrainingJob(trainer_pb2.CancelTrainingJobRequest(job_id=other.job_id), metadata=_md(RW),
                                   timeout=30)
        finally:
            stub.CancelTrainingJob(trainer_pb2.CancelTrainingJobRequest(job_id=first.job_id), metadata=_md(JOBS),
                                   timeout=30)

        def state() -> str:
            job = stub.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=first.job_id), metadata=_md(RO),
                                      timeout=10).job
            return common_pb2.JobState.Name(job.state)

        assert wait_for(lambda: state() == "JOB_STATE_CANCELLED", 60, 0.3)
        again = stub.CreateTrainingJob(request, metadata=_md(JOBS), timeout=30).job
        stub.CancelTrainingJob(trainer_pb2.CancelTrainingJobRequest(job_id=again.job_id), metadata=_md(JOBS),
                               timeout=30)


def test_cli_sends_the_client_token(secured: Stack) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
    env["QUAKESTACK_TRAINER_ADDR"] = secured.settings.trainer_addr
    command = [sys.executable, "-m", "quakestack", "models", "ls", "--json"]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert refused.returncode != 0 and "UNAUTHENTICATED" in refused.stderr + refused.stdout
    ok = subprocess.run(command, env={**env, "QUAKESTACK_CLIENT_TOKEN": RO}, capture_output=True, text=True,
                        timeout=60, cwd=REPO_ROOT)
    assert ok.returncode == 0, ok.stderr
    assert RO not in ok.stderr + ok.stdout + refused.stderr + refused.stdout


def _audit_events(secured: Stack) -> list[dict]:
    return [line for name in SERVICES for line in json_log_lines(secured.log_dir / f"{name}.log")
            if line.get("event") == "audit"]


def test_audit_event_for_every_state_changing_rpc(secured: Stack) -> None:
    """The enumeration tests above called every RPC; each state-changing one left events, refusals included."""
    registered = {rpc for name in SERVICES for rpc, _ in _methods(getattr(secured.settings, f"{name}_addr"))}
    changing = {rpc for rpc in registered if is_state_changing(rpc)}
    assert {"quakestack.v1.DataService/DeleteDataset", "quakestack.v1.InferenceService/LoadModel"} <= changing
    events = _audit_events(secured)
    for rpc in changing:
        outcomes = {e["outcome"] for e in events if e["rpc"] == rpc}
        assert "UNAUTHENTICATED" in outcomes and "PERMISSION_DENIED" in outcomes, (rpc, outcomes)
        assert outcomes - {"UNAUTHENTICATED", "PERMISSION_DENIED"}, (rpc, outcomes)
    assert not [e for e in events if not is_state_changing(e["rpc"])]
    denied = [e for e in events if e["rpc"] == "quakestack.v1.DataService/DeleteDataset"
              and e["outcome"] == "PERMISSION_DENIED"]
    assert denied[0]["actor"] == "writer" and denied[0]["role"] == "readwrite" and denied[0]["request_id"]
    uploads = [e for e in events if e["rpc"] == "quakestack.v1.DataService/UploadFile" and e["outcome"] == "OK"]
    assert any(e["actor"] == "quota" and e["resource"]["object_key"].startswith("raw/") for e in uploads)
    # the event carries the call's request id: the client's, or the one echoed back to it
    with channel(secured.settings.data_addr) as ch:
        stub = data_pb2_grpc.DataServiceStub(ch)
        echoed = []
        for metadata in ([("x-request-id", "audit-probe-1")], []):
            with pytest.raises(grpc.RpcError) as err:
                stub.DeleteDataset(data_pb2.DeleteDatasetRequest(name="no-such-set"),
                                   metadata=[*_md(ADMIN), *metadata], timeout=10)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            echoed.append(dict(err.value.initial_metadata())["x-request-id"])
    assert echoed[0] == "audit-probe-1"
    for request_id in echoed:
        assert wait_for(lambda rid=request_id: [e for e in _audit_events(secured) if e["request_id"] == rid
                                                and e["actor"] == "admin1" and e["outcome"] == "NOT_FOUND"
                                                and e["resource"] == {"name": "no-such-set"}], 10, 0.2)
    events = _audit_events(secured)
    # and the same events on object storage, as JSON lines under audit/<date>/
    store = ObjectStore.from_settings(secured.settings)

    def stored() -> list[dict]:
        lines = []
        for obj in store.list("audit/"):
            assert re.match(r"^audit/\d{4}-\d{2}-\d{2}/.+\.jsonl$", obj.key), obj.key
            lines += [json.loads(x) for x in store.get_bytes(obj.key).decode().splitlines()]
        return lines

    assert wait_for(lambda: {e["request_id"] for e in events} <= {e["request_id"] for e in stored()}, 15, 0.5)


def test_inference_identity_cannot_delete_datasets(secured: Stack) -> None:
    """A real refused DeleteObject against the embedded SeaweedFS, with the inference service's own keys."""
    assert secured.seaweed is not None
    store = ObjectStore.from_settings(secured.settings)
    store.put_bytes("datasets/protected/manifest.json", b'{"name": "protected"}')
    creds = secured.seaweed.service_credentials["inference"]
    client = Minio(secured.settings.s3_endpoint, creds.access_key, creds.secret_key, secure=False)
    bucket = secured.settings.s3_bucket
    assert client.get_object(bucket, "datasets/protected/manifest.json").read() == b'{"name": "protected"}'
    with pytest.raises(S3Error) as err:
        client.remove_object(bucket, "datasets/protected/manifest.json")
    assert err.value.code == "AccessDenied"
    with pytest.raises(S3Error):
        client.put_object(bucket, "datasets/protected/manifest.json", io.BytesIO(b"{}"), 2)
    assert store.get_bytes("datasets/protected/manifest.json") == b'{"name": "protected"}'
    client.put_object(bucket, "inference-logs/probe.jsonl", io.BytesIO(b"{}\n"), 3)  # what it may write
    client.remove_object(bucket, "inference-logs/probe.jsonl")


def test_no_secret_in_any_log(secured: Stack) -> None:
    """Every log of this stack (services, gateway, storage), grepped for every token and S3 key."""
    assert secured.seaweed is not None
    secrets_ = [ADMIN, RW, RO, QUOTA, RATE, ROTATED, JOBS, secured.seaweed.credentials.secret_key,
                secured.seaweed.credentials.access_key]
    for creds in secured.seaweed.service_credentials.values():
        secrets_ += [creds.access_key, creds.secret_key]
    logs = sorted(secured.log_dir.glob("*.log"))
    assert {p.name for p in logs} >= {"data.log", "trainer.log", "inference.log", "gateway.log", "s3.log"}
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in secrets_:
            assert secret not in text, f"a configured secret appears in {path.name}"
