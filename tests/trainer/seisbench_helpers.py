"""Helpers for SeisBench fine-tuning tests: a model saved as SeisBench saves it, and imports of it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import grpc
import pytest
import seisbench.models as sbm

from quakestack.cli.models import import_requests
from quakestack.v1 import trainer_pb2, trainer_pb2_grpc


def saved(model: sbm.WaveformModel, directory: Path, name: str = "model") -> tuple[str, bytes]:
    """SeisBench's own `save`: the JSON text and the .pt bytes."""
    model.save(directory / name)
    return (directory / f"{name}.json").read_text(), (directory / f"{name}.pt").read_bytes()


def import_model(registry: trainer_pb2_grpc.ModelRegistryServiceStub, name: str, cls: str, config: str,
                 weights: bytes, sha256: str | None = None) -> trainer_pb2.ModelVersion:
    digest = hashlib.sha256(weights).hexdigest() if sha256 is None else sha256
    return registry.ImportModel(import_requests(name, cls, config, weights, digest), timeout=120).model_version


def invalid(fn) -> str:
    """The details of an INVALID_ARGUMENT the call must raise."""
    with pytest.raises(grpc.RpcError) as err:
        fn()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    return err.value.details()
