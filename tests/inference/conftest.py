"""Fixtures of the inference tests: the session stack's InferenceService and the model registry."""

from __future__ import annotations

import pytest

from quakestack.model_store import ModelStore
from quakestack.v1 import inference_pb2_grpc


@pytest.fixture(scope="session")
def registry(store, metadata) -> ModelStore:
    return ModelStore(store, metadata)


@pytest.fixture(scope="session")
def inference(inference_channel) -> inference_pb2_grpc.InferenceServiceStub:
    return inference_pb2_grpc.InferenceServiceStub(inference_channel)
