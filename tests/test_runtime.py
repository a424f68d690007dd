"""The service runtime on the real stack: health, reflection, metrics, request ids, shutdown."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time

import grpc
import pytest

from quakestack.client import channel, health_status, reflected_services
from quakestack.runtime.interceptor import code_label
from quakestack.stack import Stack
from quakestack.v1 import data_pb2, data_pb2_grpc, inference_pb2, inference_pb2_grpc
from tests.helpers import json_log_lines, sample_value, scrape, upload_requests, wait_for

EXPECTED = {
    "data": {"quakestack.v1.DataService", "quakestack.v1.CatalogService"},
    "trainer": {"quakestack.v1.TrainerService", "quakestack.v1.ModelRegistryService", "quakestack.v1.SweepService"},
    "inference": {"quakestack.v1.InferenceService", "inference.GRPCInferenceService"},
}


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_health_and_reflection(stack: Stack, service: str) -> None:
    with channel(getattr(stack.settings, f"{service}_addr")) as ch:
        assert health_status(ch) == "SERVING"
        for name in EXPECTED[service]:
            assert health_status(ch, name) == "SERVING"
        assert health_status(ch, "quakestack.v1.NoSuchService") == "NOT_FOUND"
        listed = set(reflected_services(ch))
    assert EXPECTED[service] | {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= listed


def _handled(text: str, kind: str, service: str, method: str, code: str) -> float:
    return sample_value(text, "grpc_server_handled_total", grpc_type=kind, grpc_service=service,
                        grpc_method=method, grpc_code=code)


def _call_code(fn) -> grpc.StatusCode:
    try:
        result = fn()
        if hasattr(result, "__iter__") and not isinstance(result, bytes | str) and not hasattr(result, "ByteSize"):
            list(result)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_metrics_for_every_rpc_kind(stack: Stack, data_channel, inference_channel) -> None:
    data_url = stack.endpoints().metrics["data"]
    inference_url = stack.endpoints().metrics["inference"]
    data_stub = data_pb2_grpc.DataServiceStub(data_channel)
    inference_stub = inference_pb2_grpc.InferenceServiceStub(inference_channel)
    calls = [
        ("unary", "quakestack.v1.DataService", "GetDataset", data_url,
         lambda: data_stub.GetDataset(data_pb2.GetDatasetRequest(name="no-such-dataset"), timeout=10)),
        ("client_stream", "quakestack.v1.DataService", "UploadFile", data_url,
         lambda: data_stub.UploadFile(upload_requests("m.bin", b"z" * 200_000), timeout=10)),
        ("server_stream", "quakestack.v1.DataService", "WatchDatasetJob", data_url,
         lambda: data_stub.WatchDatasetJob(data_pb2.WatchDatasetJobRequest(job_id="nope"), timeout=10)),
        ("bidi_stream", "quakestack.v1.InferenceService", "Annotate", inference_url,
         lambda: inference_stub.Annotate(iter([inference_pb2.AnnotateRequest(
             config=inference_pb2.AnnotateConfig(model="no-such-model"))]), timeout=10)),
    ]
    for kind, service, method, url, fn in calls:
        before = scrape(url)
        code = _call_code(fn)
        label = code_label(code)
        after = scrape(url)
        labels = {"grpc_type": kind, "grpc_service": service, "grpc_method": method}
        assert sample_value(after, "grpc_server_started_total", **labels) == \
            sample_value(before, "grpc_server_started_total", **labels) + 1, method
        assert _handled(after, kind, service, method, label) == _handled(before, kind, service, method, label) + 1
        assert sample_value(after, "grpc_server_handling_seconds_count", **labels) == \
            sample_value(before, "grpc_server_handling_seconds_count", **labels) + 1
        if method == "UploadFile":
            assert code == grpc.StatusCode.OK
            received = sample_value(after, "grpc_server_msg_received_total", **labels) - \
                sample_value(before, "grpc_server_msg_received_total", **labels)
            assert received == 1 + 4  # header + 200 kB in 64 kB chunks


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) missing")
@pytest.mark.parametrize("service", ["data", "trainer", "inference"])
def test_promtool_accepts_the_metrics(stack: Stack, service: str) -> None:
    text = scrape(stack.endpoints().metrics[service])
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "grpc_server_handled_total" in text and "quakestack_storage_up 1.0" in text


def test_gateway_serves_health_and_metrics(stack: Stack) -> None:
    base = stack.endpoints().gateway
    assert '"ok"' in scrape(base + "/healthz")
    assert '"ready": true' in scrape(base + "/readyz")
    assert "python_info" in scrape(base + "/metrics")


def test_request_id_propagates_into_logs(stack: Stack, data_channel) -> None:
    stub = data_pb2_grpc.DataServiceStub(data_channel)
    response, call = stub.UploadFile.with_call(upload_requests("rid.bin", b"r" * 10),
                                               metadata=[("x-request-id", "req-test-4242")], timeout=10)
    assert ("x-request-id", "req-test-4242") in call.initial_metadata()
    log_path = stack.log_dir / "data.log"

    def logged() -> list[dict]:
        return [line for line in json_log_lines(log_path) if line.get("request_id") == "req-test-4242"]

    assert wait_for(lambda: bool(logged()), 5)
    line = logged()[-1]
    assert line["service"] == "data" and line["rpc"] == "quakestack.v1.DataService/UploadFile"
    assert line["grpc_code"] == "OK"
    # a call without an id gets a generated one
    _, call = stub.UploadFile.with_call(upload_requests("rid2.bin", b"r"), timeout=10)
    generated = dict(call.initial_metadata())["x-request-id"]
    assert len(generated) == 32


def test_graceful_shutdown_drains_in_flight_calls(stack: Stack, tmp_path) -> None:
    """SIGTERM during a slow upload: the call finishes OK, new calls are refused, exit 0."""
    settings = stack.settings.replace(max_message_mb=1)
    from quakestack.stack import with_free_ports

    settings = with_free_ports(settings)
    own = Stack(settings, state_dir=tmp_path)
    own.log_dir.mkdir(parents=True)
    proc = own.start_process("data")
    own.wait_healthy(60, names=("data",))
    result: dict = {}
    with channel(settings.data_addr) as ch:
        stub = data_pb2_grpc.DataServiceStub(ch)
        oversized = [data_pb2.UploadFileRequest(chunk=b"x" * (2 << 20))]
        with pytest.raises(grpc.RpcError) as excinfo:
            stub.UploadFile(iter(oversized), timeout=10)
        assert excinfo.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        def slow_upload() -> None:
            try:
                result["response"] = stub.UploadFile(upload_requests("slow.bin", b"s" * 40_000, chunk=4000,
                                                                     pause_s=0.2), timeout=30)
            except grpc.RpcError as exc:
                result["error"] = exc.code()

        worker = threading.Thread(target=slow_upload)
        worker.start()
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert wait_for(lambda: "shutting down" in (own.log_dir / "data.log").read_text(), 5)
        worker.join(30)
        assert "error" not in result, result
        assert result["response"].size_bytes == 40_000
    assert proc.wait(30) == 0
    with channel(settings.data_addr) as ch:
        assert health_status(ch, timeout_s=1) == "UNAVAILABLE"
