"""Faults: wrong credentials, storage killed and restarted, bad keys over RPC."""

from __future__ import annotations

import time

import grpc
import pytest

from quakestack.client import channel, health_status
from quakestack.embedded.seaweed import SeaweedServer
from quakestack.stack import Stack, with_free_ports
from quakestack.v1 import data_pb2, data_pb2_grpc
from tests.conftest import own_sqlite
from tests.helpers import json_log_lines, upload_requests, wait_for


def _data_process(settings, state_dir) -> Stack:
    own = Stack(settings, state_dir=state_dir)
    own.log_dir.mkdir(parents=True, exist_ok=True)
    own.start_process("data")
    return own


def test_wrong_credentials_not_serving_with_one_clear_line(stack: Stack, tmp_path) -> None:
    settings = with_free_ports(stack.settings).replace(s3_access_key="wrong", s3_secret_key="wrong-secret",
                                                       health_interval_s=0.3, database_url=own_sqlite(tmp_path))
    own = _data_process(settings, tmp_path)
    try:
        with channel(settings.data_addr) as ch:
            assert wait_for(lambda: health_status(ch) == "NOT_SERVING", 30)
            time.sleep(1.5)  # several probe intervals: still one line, still alive
            assert health_status(ch) == "NOT_SERVING"
            assert health_status(ch, "quakestack.v1.DataService") == "NOT_SERVING"
        assert own.processes["data"].poll() is None
        log_text = (own.log_dir / "data.log").read_text()
        errors = [line for line in json_log_lines(own.log_dir / "data.log") if line.get("level") == "error"]
        assert len(errors) == 1, errors
        assert "AccessDenied" in str(errors[0]["problems"]) or "InvalidAccessKeyId" in str(errors[0]["problems"])
        assert "Traceback" not in log_text
        assert "wrong-secret" not in log_text
    finally:
        assert own.stop()["data"] == 0


def test_storage_killed_then_restarted(stack: Stack, tmp_path) -> None:
    weed = SeaweedServer(tmp_path / "s3", log_path=tmp_path / "weed.log").start()
    settings = with_free_ports(stack.settings).replace(
        s3_endpoint=weed.endpoint, s3_access_key=weed.credentials.access_key,
        s3_secret_key=weed.credentials.secret_key, health_interval_s=0.3, s3_timeout_s=1.0,
        database_url=own_sqlite(tmp_path))
    own = _data_process(settings, tmp_path)
    try:
        own.wait_healthy(60, names=("data",))
        with channel(settings.data_addr) as ch:
            stub = data_pb2_grpc.DataServiceStub(ch)
            stub.UploadFile(upload_requests("before.bin", b"1" * 100), timeout=10)
            weed.kill()
            assert wait_for(lambda: health_status(ch) == "NOT_SERVING", 10)
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as excinfo:
                stub.UploadFile(upload_requests("during.bin", b"2" * 100), timeout=10)
            assert excinfo.value.code() == grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() - started < 10
            assert "storage unreachable" in excinfo.value.details()
            weed.start()
            assert wait_for(lambda: health_status(ch) == "SERVING", 30)
            response = stub.UploadFile(upload_requests("after.bin", b"3" * 100), timeout=10)
            assert response.size_bytes == 100
        assert own.processes["data"].poll() is None, "the service must survive without a restart"
    finally:
        own.stop()
        weed.stop()


@pytest.mark.parametrize("filename", ["../escape.bin", "/etc/passwd", "a/b.bin", "..", ""])
def test_bad_upload_names_are_invalid_argument(data_channel, filename: str) -> None:
    stub = data_pb2_grpc.DataServiceStub(data_channel)
    with pytest.raises(grpc.RpcError) as excinfo:
        stub.UploadFile(upload_requests(filename, b"x"), timeout=10)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_upload_checks_size_and_digest(data_channel, store) -> None:
    stub = data_pb2_grpc.DataServiceStub(data_channel)
    header = data_pb2.UploadFileHeader(filename="bad.bin", size_bytes=10, sha256="0" * 64)
    requests = iter([data_pb2.UploadFileRequest(header=header), data_pb2.UploadFileRequest(chunk=b"0123456789")])
    before = {o.key for o in store.list("raw/")}
    with pytest.raises(grpc.RpcError) as excinfo:
        stub.UploadFile(requests, timeout=10)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "sha256" in excinfo.value.details()
    assert {o.key for o in store.list("raw/")} == before, "a rejected upload leaves nothing behind"
    with pytest.raises(grpc.RpcError) as excinfo:
        stub.UploadFile(iter([data_pb2.UploadFileRequest(chunk=b"no header")]), timeout=10)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
