"""Model lifecycle and Predict on the real stack: correctness, batching, back-pressure, swaps, errors."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import torch

from quakestack.client import health_status
from quakestack.data.preprocess import normalize
from quakestack.model_store import instantiate
from quakestack.v1 import inference_pb2
from tests.helpers import sample_value, scrape
from tests.inference.helpers import TINY_MAGNITUDE, predict_request, register, rpc_code

GOOD = grpc.StatusCode.OK


def _x(n: int, seed: int = 0, length: int = 1000) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, 3, length)) * 1000).astype(np.float32)


def _forward(registry, name: str, version: str, x: np.ndarray) -> dict[str, np.ndarray]:
    card = registry.get(name, version)
    model = instantiate(card, registry.weights(card))
    with torch.inference_mode():
        out = model(torch.from_numpy(normalize(x, card["normalization"])))
    return {k: v.numpy() for k, v in out.items()}


@pytest.fixture(scope="module")
def magnitude(registry, inference) -> str:
    register(registry, "tiny-mag", "convnetquake_ingv", TINY_MAGNITUDE, normalization="std")
    inference.LoadModel(inference_pb2.LoadModelRequest(name="tiny-mag", max_queue_delay_us=20_000), timeout=60)
    return "tiny-mag"


def test_predict_equals_in_process_forward(registry, inference, inference_channel, magnitude) -> None:
    x = _x(5)
    response = inference.Predict(predict_request(magnitude, x), timeout=30)
    expected = _forward(registry, magnitude, "1", x)["magnitude"]
    got = np.array([p.magnitude for p in response.predictions])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert response.model_version == 1 and response.model == magnitude and response.request_id
    assert not response.predictions[0].HasField("detection_probability")
    listed = {m.name: m for m in inference.ListLoadedModels(inference_pb2.ListLoadedModelsRequest()).models}
    assert listed[magnitude].memory_bytes > 0 and listed[magnitude].windows_served >= 5
    assert listed[magnitude].input_spec.n_samples == 1000 and listed[magnitude].device == "cpu"
    assert health_status(inference_channel, f"quakestack.v1.InferenceService/{magnitude}") == "SERVING"


def test_uncertainty_and_class_outputs(registry, inference) -> None:
    register(registry, "tiny-magnet", "magnet", {"n_samples": 3000, "conv1_channels": 4, "conv2_channels": 4,
                                                 "lstm_hidden": 4})
    register(registry, "tiny-cnq", "convnetquake", {"n_layers": 4, "channels": 4})
    for name in ("tiny-magnet", "tiny-cnq"):
        inference.LoadModel(inference_pb2.LoadModelRequest(name=name), timeout=60)
    x = _x(3, length=3000)
    out = inference.Predict(predict_request("tiny-magnet", x), timeout=30)
    ref = _forward(registry, "tiny-magnet", "1", x)
    np.testing.assert_allclose([p.magnitude_std for p in out.predictions], np.exp(0.5 * ref["magnitude_log_var"]),
                               rtol=1e-4)
    x = _x(4)
    out = inference.Predict(predict_request("tiny-cnq", x), timeout=30)
    ref = _forward(registry, "tiny-cnq", "1", x)
    probs = torch.softmax(torch.from_numpy(ref["logits"]), -1).numpy()
    assert list(out.class_names) == ["noise", "event"]
    np.testing.assert_allclose([list(p.class_probabilities) for p in out.predictions], probs, atol=1e-5)
    np.testing.assert_allclose([p.detection_probability for p in out.predictions], probs[:, 1], atol=1e-5)
    assert [p.location_cluster for p in out.predictions] == ref["cluster_logits"].argmax(-1).tolist()


def test_concurrent_clients_are_batched(stack, registry, inference, magnitude) -> None:
    url = stack.endpoints().metrics["inference"]
    before = scrape(url)
    xs = [_x(1 + i % 3, seed=100 + i) for i in range(32)]
    expected = _forward(registry, magnitude, "1", np.concatenate(xs))["magnitude"]
    barrier = threading.Barrier(32)

    def call(i: int):
        barrier.wait()
        return inference.Predict(predict_request(magnitude, xs[i]), timeout=30)

    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(call, range(32)))
    got = np.concatenate([[p.magnitude for p in r.predictions] for r in responses])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)  # each answer is its own request's
    after = scrape(url)

    def batches(text: str, le: str | None = None) -> float:
        if le is None:
            return sample_value(text, "quakestack_inference_batch_size_count", model=magnitude)
        return sample_value(text, "quakestack_inference_batch_size_bucket", model=magnitude, le=le)

    n_batches = batches(after) - batches(before)
    singles = batches(after, "1.0") - batches(before, "1.0")
    assert n_batches < 32 and n_batches - singles >= 1, (n_batches, singles)


def test_full_queue_is_resource_exhausted(registry, inference) -> None:
    register(registry, "tiny-slow", "convnetquake_ingv", TINY_MAGNITUDE)
    inference.LoadModel(inference_pb2.LoadModelRequest(name="tiny-slow", max_batch_size=1, max_queue_size=2),
                        timeout=60)
    x = _x(200)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: rpc_code(lambda: inference.Predict(predict_request("tiny-slow", x),
                                                                            timeout=60)), range(8)))
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes and GOOD in codes, codes


def test_expired_deadline_is_dropped_before_compute(stack, registry, inference) -> None:
    register(registry, "tiny-wait", "convnetquake_ingv", TINY_MAGNITUDE)
    inference.LoadModel(inference_pb2.LoadModelRequest(name="tiny-wait", max_batch_size=64,
                                                       max_queue_delay_us=1_500_000), timeout=60)
    url = stack.endpoints().metrics["inference"]
    dropped = sample_value(scrape(url), "quakestack_inference_requests_total", model="tiny-wait", outcome="deadline")
    code = rpc_code(lambda: inference.Predict(predict_request("tiny-wait", _x(1)), timeout=0.3))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(1.5)
    after = scrape(url)
    assert sample_value(after, "quakestack_inference_requests_total", model="tiny-wait", outcome="deadline") \
        == dropped + 1
    assert sample_value(after, "quakestack_inference_windows_total", model="tiny-wait") == 0


def test_new_version_swaps_in_under_load(registry, inference, magnitude) -> None:
    register(registry, magnitude, "convnetquake_ingv", TINY_MAGNITUDE, normalization="std", seed=1)
    x = _x(2, seed=5)
    expected = {v: _forward(registry, magnitude, str(v), x)["magnitude"] for v in (1, 2)}
    stop = threading.Event()
    results: list[tuple[int, list[float]]] = []
    errors: list[grpc.StatusCode] = []

    def client() -> None:
        while not stop.is_set():
            try:
                r = inference.Predict(predict_request(magnitude, x), timeout=30)
                results.append((r.model_version, [p.magnitude for p in r.predictions]))
            except grpc.RpcError as exc:
                errors.append(exc.code())

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    loaded = inference.LoadModel(inference_pb2.LoadModelRequest(name=magnitude, version="2"), timeout=60)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert loaded.model.version == 2
    assert not errors and {v for v, _ in results} == {1, 2}
    for version, mags in results:
        np.testing.assert_allclose(mags, expected[version], rtol=1e-4, atol=1e-4)
    assert results[-1][0] == 2


@pytest.mark.parametrize("case", ["shape", "components", "rate", "order", "nan", "bytes", "extra"])
def test_bad_inputs_are_invalid_argument(inference, magnitude, case: str) -> None:
    x = _x(2)
    request = {
        "shape": lambda: predict_request(magnitude, _x(2, length=900)),
        "components": lambda: predict_request(magnitude, x[:, :1], components="Z"),
        "rate": lambda: predict_request(magnitude, x, rate=50.0),
        "order": lambda: predict_request(magnitude, x, components="ENZ"),
        "nan": lambda: predict_request(magnitude, np.where(np.arange(1000) == 7, np.nan, x).astype(np.float32)),
        "bytes": lambda: inference_pb2.PredictRequest(model=magnitude, windows={**_waveform_fields(x),
                                                                                "data": b"\0" * 10}),
        "extra": lambda: inference_pb2.PredictRequest(model=magnitude, windows=_waveform_fields(x),
                                                      extra_inputs=[{"name": "p_arrival_sample", "values": [1, 2]}]),
    }[case]()
    with pytest.raises(grpc.RpcError) as info:
        inference.Predict(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    if case == "shape":
        assert "[N, 3, 1000]" in info.value.details()
    if case == "rate":
        assert "100" in info.value.details()


def _waveform_fields(x: np.ndarray) -> dict:
    return {"data": x.tobytes(), "shape": list(x.shape), "sampling_rate_hz": 100.0, "component_order": "ZNE"}


def test_oversized_request_is_resource_exhausted(stack, inference, magnitude) -> None:
    n = stack.settings.max_message_mb * 1024 * 1024 // (3 * 1000 * 4) + 1
    x = np.zeros((n, 3, 1000), np.float32)
    assert rpc_code(lambda: inference.Predict(predict_request(magnitude, x), timeout=60)) == \
        grpc.StatusCode.RESOURCE_EXHAUSTED


def test_unknown_models_and_unload(registry, inference, inference_channel) -> None:
    nf = grpc.StatusCode.NOT_FOUND
    assert rpc_code(lambda: inference.LoadModel(inference_pb2.LoadModelRequest(name="no-such"), timeout=30)) == nf
    assert rpc_code(lambda: inference.Predict(predict_request("no-such", _x(1)), timeout=30)) == nf
    assert rpc_code(lambda: inference.UnloadModel(inference_pb2.UnloadModelRequest(name="no-such"), timeout=30)) == nf
    register(registry, "tiny-gone", "convnetquake_ingv", TINY_MAGNITUDE)
    inference.LoadModel(inference_pb2.LoadModelRequest(name="tiny-gone"), timeout=60)
    assert rpc_code(lambda: inference.LoadModel(inference_pb2.LoadModelRequest(name="tiny-gone", version="9"),
                                                timeout=30)) == nf
    inference.UnloadModel(inference_pb2.UnloadModelRequest(name="tiny-gone"), timeout=30)
    assert health_status(inference_channel, "quakestack.v1.InferenceService/tiny-gone") == "NOT_SERVING"
    assert rpc_code(lambda: inference.Predict(predict_request("tiny-gone", _x(1)), timeout=30)) == nf
    assert rpc_code(lambda: inference.UnloadModel(inference_pb2.UnloadModelRequest(name="tiny-gone"),
                                                  timeout=30)) == nf


def test_predict_echoes_the_request_id_in_its_trailers_on_success_and_failure(inference, magnitude) -> None:
    """The data plane's unary calls echo x-request-id with the status (one batch), not in initial metadata."""
    response, call = inference.Predict.with_call(predict_request(magnitude, _x(1)),
                                                 metadata=[("x-request-id", "predict-rid-1")], timeout=30)
    assert ("x-request-id", "predict-rid-1") in call.trailing_metadata()
    assert response.request_id == "predict-rid-1"
    assert "x-request-id" not in dict(call.initial_metadata())
    with pytest.raises(grpc.RpcError) as err:
        inference.Predict(predict_request("no-such", _x(1)), metadata=[("x-request-id", "predict-rid-2")],
                          timeout=30)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert ("x-request-id", "predict-rid-2") in err.value.trailing_metadata()
    _, generated = inference.Predict.with_call(predict_request(magnitude, _x(1)), timeout=30)
    assert len(dict(generated.trailing_metadata())["x-request-id"]) == 32
