"""Feedback logs, the memory budget (LRU eviction of idle models) and alias autoload."""

from __future__ import annotations

import json
import time

import grpc
import numpy as np
import pytest

from quakestack.client import channel, health_status
from quakestack.errors import ResourceExhausted
from quakestack.inference.manager import ModelManager
from quakestack.runtime.app import build_server
from quakestack.v1 import inference_pb2
from services.inference.servicer import DEFINITION
from tests.helpers import wait_for
from tests.inference.helpers import TINY_MAGNITUDE, predict_request, register


def test_feedback_is_logged_to_object_storage(store, registry, inference) -> None:
    register(registry, "tiny-fb", "convnetquake_ingv", TINY_MAGNITUDE)
    inference.LoadModel(inference_pb2.LoadModelRequest(name="tiny-fb"), timeout=60)
    x = np.ones((2, 3, 1000), np.float32)
    request_id = inference.Predict(predict_request("tiny-fb", x), timeout=30).request_id
    inference.SubmitFeedback(inference_pb2.SubmitFeedbackRequest(request_id=request_id, window_index=1,
                                                                 true_magnitude=3.2), timeout=30)

    def logged() -> list[dict]:
        lines = []
        for info in store.list("inference-logs/"):
            lines += [json.loads(line) for line in store.get_bytes(info.key).decode().splitlines()]
        return [line for line in lines if line.get("request_id") == request_id and line["kind"] == "feedback"]

    assert wait_for(lambda: bool(logged()), timeout_s=15, interval_s=0.5)
    assert logged()[0]["true_magnitude"] == 3.2 and logged()[0]["window_index"] == 1
    with pytest.raises(grpc.RpcError) as info:
        inference.SubmitFeedback(inference_pb2.SubmitFeedbackRequest(request_id=request_id), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_memory_budget_evicts_least_recently_used(registry) -> None:
    for name in ("lru-a", "lru-b", "lru-c"):
        register(registry, name, "convnetquake_ingv", TINY_MAGNITUDE)
    probe = ModelManager(registry, memory_budget_bytes=1 << 30)
    size = probe.load("lru-a").memory_bytes
    probe.close()
    ready: dict[str, bool] = {}
    manager = ModelManager(registry, memory_budget_bytes=2 * size + size // 2,
                           on_ready=lambda name, ok: ready.__setitem__(name, ok))
    try:
        manager.load("lru-a")
        manager.load("lru-b")
        manager.predict("lru-a", np.ones((1, 3, 1000), np.float32), timeout_s=30)  # b is now the LRU
        manager.load("lru-c")
        assert [r.name for r in manager.list()] == ["lru-a", "lru-c"] and ready["lru-b"] is False
        tight = ModelManager(registry, memory_budget_bytes=size // 2)
        with pytest.raises(ResourceExhausted):
            tight.load("lru-a")
    finally:
        manager.close()


def test_alias_models_load_at_start(stack, registry) -> None:
    register(registry, "auto-prod", "convnetquake_ingv", TINY_MAGNITUDE, aliases=["production"])
    settings = stack.settings.replace(inference_grpc_port=0, inference_metrics_port=0)
    server = build_server(DEFINITION, settings).start()
    try:
        with channel(f"127.0.0.1:{server.port}") as ch:
            name = "quakestack.v1.InferenceService/auto-prod"
            assert wait_for(lambda: health_status(ch, name) == "SERVING", timeout_s=30, interval_s=0.2)
            from quakestack.v1 import inference_pb2_grpc

            models = inference_pb2_grpc.InferenceServiceStub(ch).ListLoadedModels(
                inference_pb2.ListLoadedModelsRequest(), timeout=10).models
            assert [(m.name, m.version) for m in models if m.name == "auto-prod"] == [("auto-prod", 1)]
    finally:
        server.stop(grace_s=1)
    time.sleep(0.1)
