"""The inference service on two processes (inference_processes=2): the same answers, errors, deadlines,
request ids, auth, metrics and model versions whichever process a connection lands on; a killed data-plane
process is replaced, and nothing is left behind when the service stops or is killed."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import psutil
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

from quakestack.data.preprocess import normalize
from quakestack.inference.processes import SERVED_METHOD
from quakestack.metadata.database import Database
from quakestack.model_store import ModelStore, instantiate
from quakestack.oip import open_inference_pb2 as oip
from quakestack.oip import open_inference_pb2_grpc
from quakestack.stack import Stack
from quakestack.storage import ObjectStore
from quakestack.v1 import inference_pb2, inference_pb2_grpc
from tests.conftest import fresh_settings
from tests.data_plane import ask, data_plane_processes, wait_serving
from tests.helpers import sample_value, scrape, wait_for
from tests.inference.helpers import TINY_MAGNITUDE, predict_request, register, rpc_code

TOKEN = "procs-5ecret-a1b2c3"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
MODEL, SLOW = "two-mag", "two-slow"
CONNECTIONS = 12


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir = tmp_path_factory.mktemp("two-processes")
    running = Stack(fresh_settings(state_dir, health_interval_s=0.5, inference_processes=2,
                                   api_tokens=f"admin={TOKEN}:admin"), state_dir=state_dir)
    running.start(names=("inference",))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def registry(two: Stack) -> Iterator[ModelStore]:
    db = Database.from_settings(two.settings)
    yield ModelStore(ObjectStore.from_settings(two.settings), db)
    db.close()


@pytest.fixture(scope="module")
def connections(two: Stack, registry: ModelStore) -> Iterator[list[grpc.Channel]]:
    """Connections of their own (no shared subchannel), so the kernel spreads them over both processes."""
    wait_serving(two)  # before any connection opens: a connection stays with the process that accepted it
    register(registry, MODEL, "convnetquake_ingv", TINY_MAGNITUDE, normalization="std", seed=0)
    register(registry, MODEL, "convnetquake_ingv", TINY_MAGNITUDE, normalization="std", seed=1)
    register(registry, SLOW, "convnetquake_ingv", TINY_MAGNITUDE, normalization="std")
    chans = [grpc.insecure_channel(two.settings.inference_addr, options=[("grpc.use_local_subchannel_pool", 1)])
             for _ in range(CONNECTIONS)]
    stub = inference_pb2_grpc.InferenceServiceStub(chans[0])
    stub.LoadModel(inference_pb2.LoadModelRequest(name=MODEL, version="1"), timeout=60, metadata=AUTH)
    stub.LoadModel(inference_pb2.LoadModelRequest(name=SLOW, max_queue_delay_us=300_000), timeout=60, metadata=AUTH)
    yield chans
    for ch in chans:
        ch.close()


def _data_plane_processes(two: Stack) -> list[psutil.Process]:
    return data_plane_processes(two)


def _served_by(process: psutil.Process) -> int:
    return sum(r["windows"] for r in json.loads(ask(process, SERVED_METHOD)) if r["name"] == MODEL)


def _x(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, 3, 1000)) * 1000).astype(np.float32)


def _expected(registry: ModelStore, version: str, x: np.ndarray) -> np.ndarray:
    card = registry.get(MODEL, version)
    model = instantiate(card, registry.weights(card))
    with torch.inference_mode():
        return model(torch.from_numpy(normalize(x, card["normalization"])))["magnitude"].numpy()


def _predict(ch: grpc.Channel, x: np.ndarray, model: str = MODEL, **kw) -> inference_pb2.PredictResponse:
    return inference_pb2_grpc.InferenceServiceStub(ch).Predict(predict_request(model, x), **{
        "timeout": 30, "metadata": AUTH, **kw})


def _metrics(two: Stack) -> str:
    return scrape(f"http://127.0.0.1:{two.settings.inference_metrics_port}/metrics")


def test_both_processes_answer_with_the_same_model_ids_and_counts(two, registry, connections) -> None:
    assert len(_data_plane_processes(two)) == 1
    before = _metrics(two)
    x = _x(3, seed=7)
    expected = _expected(registry, "1", x)
    for ch in connections:
        for _ in range(3):
            request_id = uuid.uuid4().hex
            response = _predict(ch, x, metadata=(*AUTH, ("x-request-id", request_id)))
            assert response.request_id == request_id and response.model_version == 1
            np.testing.assert_allclose([p.magnitude for p in response.predictions], expected, rtol=1e-4, atol=1e-4)
        infer = oip.ModelInferRequest(model_name=MODEL, inputs=[oip.ModelInferRequest.InferInputTensor(
            name="waveforms", datatype="FP32", shape=list(x.shape))], raw_input_contents=[x.tobytes()])
        answer = open_inference_pb2_grpc.GRPCInferenceServiceStub(ch).ModelInfer(infer, timeout=30, metadata=AUTH)
        got = np.frombuffer(answer.raw_output_contents[0], "<f4")
        np.testing.assert_allclose(got, expected.reshape(-1), rtol=1e-4, atol=1e-4)
    calls = CONNECTIONS * 4
    # both processes served, and every count adds up to what was sent, whichever process answered
    listed = {m.name: m for m in inference_pb2_grpc.InferenceServiceStub(connections[0]).ListLoadedModels(
        inference_pb2.ListLoadedModelsRequest(), timeout=10, metadata=AUTH).models}
    served_elsewhere = _served_by(_data_plane_processes(two)[0])
    assert 0 < served_elsewhere < calls * 3
    assert listed[MODEL].windows_served == calls * 3
    after = _metrics(two)
    for method in ("Predict", "ModelInfer"):
        done = sample_value(after, "grpc_server_handled_total", grpc_method=method, grpc_code="OK") \
            - sample_value(before, "grpc_server_handled_total", grpc_method=method, grpc_code="OK")
        assert done == CONNECTIONS * (3 if method == "Predict" else 1)
    assert sample_value(after, "quakestack_inference_windows_total", model=MODEL) \
        - sample_value(before, "quakestack_inference_windows_total", model=MODEL) == calls * 3


def test_a_swap_or_unload_is_seen_on_every_connection_once_it_returned(two, registry, connections) -> None:
    stub = inference_pb2_grpc.InferenceServiceStub(connections[0])
    x = _x(2, seed=3)
    stub.LoadModel(inference_pb2.LoadModelRequest(name=MODEL, version="2"), timeout=60, metadata=AUTH)
    expected = _expected(registry, "2", x)
    for ch in connections:  # at once: a data-plane process not yet holding version 2 forwards the call
        response = _predict(ch, x)
        assert response.model_version == 2
        np.testing.assert_allclose([p.magnitude for p in response.predictions], expected, rtol=1e-4, atol=1e-4)
    stub.UnloadModel(inference_pb2.UnloadModelRequest(name=MODEL), timeout=60, metadata=AUTH)
    assert {rpc_code(lambda c=ch: _predict(c, x)) for ch in connections} == {grpc.StatusCode.NOT_FOUND}
    stub.LoadModel(inference_pb2.LoadModelRequest(name=MODEL, version="1"), timeout=60, metadata=AUTH)
    assert {_predict(ch, x).model_version for ch in connections} == {1}


def test_errors_deadlines_and_tokens_are_the_same_on_every_connection(two, connections) -> None:
    before = _metrics(two)
    bad = _x(1, seed=1)
    bad[0, 1, 10] = np.nan
    for ch in connections:
        assert rpc_code(lambda c=ch: _predict(c, bad)) == grpc.StatusCode.INVALID_ARGUMENT
        assert rpc_code(lambda c=ch: _predict(c, _x(1, 1)[:, :2])) == grpc.StatusCode.INVALID_ARGUMENT
        assert rpc_code(lambda c=ch: _predict(c, _x(1, 1), model="absent")) == grpc.StatusCode.NOT_FOUND
        assert rpc_code(lambda c=ch: _predict(c, _x(1, 1), metadata=())) == grpc.StatusCode.UNAUTHENTICATED
        stub = inference_pb2_grpc.InferenceServiceStub(ch)
        assert rpc_code(lambda s=stub: s.ListLoadedModels(inference_pb2.ListLoadedModelsRequest(), timeout=10)) \
            == grpc.StatusCode.UNAUTHENTICATED
        # the slow model waits 300 ms for a batch: a 50 ms deadline drops the request while it is queued
        assert rpc_code(lambda c=ch: _predict(c, _x(1, 1), model=SLOW, timeout=0.05)) \
            == grpc.StatusCode.DEADLINE_EXCEEDED
    def delta(name: str, **labels: str) -> float:
        return sample_value(_metrics(two), name, **labels) - sample_value(before, name, **labels)

    # the drop is counted as the server's own wait ends, which may be just after the client's
    assert wait_for(lambda: delta("quakestack_inference_requests_total", model=SLOW, outcome="deadline")
                    == CONNECTIONS, 5.0)
    assert delta("quakestack_inference_windows_total", model=SLOW) == 0
    assert delta("grpc_server_handled_total", grpc_method="Predict", grpc_code="InvalidArgument") \
        == 2 * CONNECTIONS
    assert delta("grpc_server_handled_total", grpc_method="Predict", grpc_code="Unauthenticated") == CONNECTIONS


def test_a_cancelled_forwarded_stream_ends_in_the_primary(two, connections) -> None:
    """Health/Watch streams are forwarded by a data-plane process: the caller's cancel reaches the primary,
    which ends the call (each counted once there), so no forwarded call outlives its caller."""
    def ended() -> float:
        text = _metrics(two)
        return sum(sample_value(text, "grpc_server_handled_total", grpc_method="Watch", grpc_code=code)
                   for code in ("OK", "Cancelled"))

    before = ended()
    for ch in connections:
        watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()
    assert wait_for(lambda: ended() - before == CONNECTIONS, 10.0)


def test_a_killed_data_plane_process_is_replaced(two, connections) -> None:
    (victim,) = _data_plane_processes(two)
    victim.send_signal(signal.SIGKILL)
    assert wait_for(lambda: [p.pid for p in _data_plane_processes(two)] not in ([], [victim.pid]), 15.0)

    def all_answer() -> bool:
        return all(rpc_code(lambda c=ch: _predict(c, _x(1, 2), timeout=5)) == grpc.StatusCode.OK
                   for ch in connections)

    assert wait_for(all_answer, 20.0, interval_s=0.5)


def test_sigterm_stops_every_process_and_sigkill_leaves_none(two) -> None:
    workers = _data_plane_processes(two)
    primary = two.processes["inference"]
    primary.send_signal(signal.SIGTERM)
    assert primary.wait(timeout=60) == 0
    assert wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in workers), 10.0)
    primary = two.start_process("inference")
    two.wait_healthy(60, ("inference",))
    workers = wait_serving(two)
    run_dir = Path(workers[0].cmdline()[-3])
    os.kill(primary.pid, signal.SIGKILL)
    primary.wait(timeout=10)
    assert wait_for(lambda: not any(psutil.pid_exists(p.pid) and p.status() != psutil.STATUS_ZOMBIE
                                    for p in workers), 10.0)
    # the killed primary could not remove its run directory; the next one to start removes it
    assert run_dir.is_dir()
    two.start_process("inference")
    two.wait_healthy(60, ("inference",))
    assert not run_dir.exists()
    wait_serving(two)
