"""schemathesis against /openapi.json: no 5xx (501 UNIMPLEMENTED aside) and no schema violation.

It runs on a stack of its own: generated requests create uploads, datasets and jobs that must not
leak into the shared session stack other tests count on. The stack holds a real dataset job and a
trained, evaluated training job whose ids schemathesis is given for the streaming routes, so those
answer 200 and each Server-Sent Event is checked against the schema /openapi.json declares.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import struct_pb2

from gateway.routes import build_routes
from gateway.streams import SSE
from quakestack.client import channel
from quakestack.config import load_settings
from quakestack.metadata.database import Database
from quakestack.stack import Stack, with_free_ports
from quakestack.storage import ObjectStore
from quakestack.v1 import (
    catalog_pb2_grpc,
    common_pb2,
    data_pb2,
    data_pb2_grpc,
    sweep_pb2,
    sweep_pb2_grpc,
    trainer_pb2,
    trainer_pb2_grpc,
)
from tests.catalog.annotation_helpers import cancelled_job, small_archive
from tests.datasets import publish_synthetic_dataset
from tests.gateway.helpers import http
from tests.helpers import wait_for

SEED = 20260101
# 501 is how an RPC that is not implemented yet answers (documented as the default error response);
# any other 5xx, 503 from a backend included, is a failure: the stack is up.
CONFIG = '[checks.not_a_server_error]\nexpected-statuses = ["2xx", "3xx", "4xx", "501"]\n'
RUN_SCHEMATHESIS = "from schemathesis.cli import schemathesis; schemathesis()"


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("schemathesis-stack")
    settings = with_free_ports(load_settings({})).replace(storage_dir=str(state / "s3"),
                                                          cache_dir=str(state / "cache"))
    running = Stack(settings, state_dir=state)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def real_ids(own_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A failed dataset job, and a 2-epoch training job with an evaluation: the streaming routes' real ids."""
    store = ObjectStore.from_settings(own_stack.settings)
    metadata = Database.from_settings(own_stack.settings)
    publish_synthetic_dataset(store, metadata, "st-data", tmp_path_factory.mktemp("st-datasets"), n_events=40,
                              n_noise=4)
    store.put_bytes("raw/st/bad.hdf5", b"not an hdf5 file")
    store.put_bytes("raw/st/bad.csv", b"not,a,stead,csv\n")
    with channel(own_stack.settings.data_addr) as data_ch, channel(own_stack.settings.trainer_addr) as trainer_ch:
        data = data_pb2_grpc.DataServiceStub(data_ch)
        source = data_pb2.DataSource(format=data_pb2.SOURCE_FORMAT_STEAD,
                                     waveforms=common_pb2.Location(object_key="raw/st/"))
        dataset_job = data.CreateDataset(data_pb2.CreateDatasetRequest(name="st-bad", sources=[source]),
                                         timeout=30).job.job_id
        trainer = trainer_pb2_grpc.TrainerServiceStub(trainer_ch)
        hp = struct_pb2.Struct()
        hp.update({"n_samples": 3000, "learning_rate": 0.005, "batch_size": 16, "epochs": 2})
        job_id = trainer.CreateTrainingJob(trainer_pb2.CreateTrainingJobRequest(
            dataset="st-data", architecture="convnetquake_ingv", hyper_parameters=hp), timeout=30).job.job_id

        def state(job_id: str) -> int:
            return trainer.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=job_id), timeout=10).job.state

        assert wait_for(lambda: state(job_id) == common_pb2.JOB_STATE_SUCCEEDED, 240, 0.5), state(job_id)
        evaluation = trainer.EvaluateModel(trainer_pb2.EvaluateModelRequest(
            checkpoint=trainer_pb2.CheckpointRef(job_id=job_id, epoch=1), dataset="st-data", split="test"),
            timeout=120)
        watch = data.GetDatasetJob(data_pb2.GetDatasetJobRequest(job_id=dataset_job), timeout=10).job
        assert wait_for(lambda: data.GetDatasetJob(data_pb2.GetDatasetJobRequest(job_id=dataset_job),
                                                   timeout=10).job.state == common_pb2.JOB_STATE_FAILED, 60), watch
        sweeps = sweep_pb2_grpc.SweepServiceStub(trainer_ch)  # a sweep cancelled before it ran: its watch ends
        sweep_id = sweeps.CreateSweep(sweep_pb2.CreateSweepRequest(
            dataset="st-data", architecture="convnetquake_ingv", hyper_parameters=hp, search_space=[
                sweep_pb2.SearchParameter(name="weight_decay", type=sweep_pb2.SEARCH_PARAMETER_TYPE_FLOAT,
                                          low=1e-6, high=1e-3, log=True)],
            objective=sweep_pb2.Objective(metric="val_loss")), timeout=30).sweep.sweep_id
        sweeps.CancelSweep(sweep_pb2.CancelSweepRequest(sweep_id=sweep_id), timeout=30)
        archive = small_archive(store, metadata, tmp_path_factory.mktemp("st-network"), "archives/st", "st-picker")
        annotation_job = cancelled_job(catalog_pb2_grpc.CatalogServiceStub(data_ch), archive, "st-picker")
    artifact = next(k for k in evaluation.artifact_keys if k.endswith(".png"))
    return {"dataset_job": dataset_job, "job_id": job_id, "epoch": 1,
            "artifact": artifact.split(f"jobs/{job_id}/", 1)[1], "annotation_job": annotation_job,
            "sweep": sweep_id}


def streaming_operations(ids: dict[str, Any]) -> str:
    """schemathesis configuration: the streaming routes get real ids (every other route stays generated)."""
    values = {
        "/v1/training-jobs/{job_id}:progress": {"job_id": ids["job_id"]},
        "/v1/training-jobs/{job_id}/checkpoints/{epoch}:download": {"job_id": ids["job_id"], "epoch": ids["epoch"]},
        "/v1/training-jobs/{job_id}/artifacts/{path}": {"job_id": ids["job_id"], "path": ids["artifact"]},
        "/v1/dataset-jobs/{job_id}:watch": {"job_id": ids["dataset_job"]},
        "/v1/annotation-jobs/{job_id}:watch": {"job_id": ids["annotation_job"]},
        "/v1/sweeps/{sweep_id}:watch": {"sweep_id": ids["sweep"]},
        "/v1/catalogs/{job_id}": {"job_id": ids["annotation_job"]},
        "/v1/catalogs/{job_id}/artifacts/{path}": {"job_id": ids["annotation_job"], "path": "eval/none/x.png"},
    }
    assert set(values) == {r.openapi_path for r in build_routes() if r.kind.name == "SERVER_STREAM"}
    out = ""
    for path, params in values.items():
        out += f"\n[[operations]]\ninclude-path = {json.dumps(path)}\n[operations.parameters]\n"
        out += "".join(f"{json.dumps('path.' + k)} = {json.dumps(v)}\n" for k, v in params.items())
    return out


def run_schemathesis(schema: str, tmp_path: Path, config_text: str, *extra: str) -> str:
    config = tmp_path / "schemathesis.toml"
    config.write_text(config_text)
    command = [sys.executable, "-c", RUN_SCHEMATHESIS, "--config-file", str(config), "run", schema,
               "--seed", str(SEED), "--max-examples", "10", "--mode", "positive",
               "--checks", "not_a_server_error,response_schema_conformance", "--workers", "2",
               "--generation-database", "none", "--request-timeout", "20", "--no-color", *extra]
    result = subprocess.run(command, capture_output=True, text=True, timeout=150, cwd=tmp_path)
    return f"exit {result.returncode}\n" + result.stdout + result.stderr


@pytest.mark.timeout(420)
def test_schemathesis_finds_no_server_error_or_schema_violation(own_stack: Stack, real_ids: dict[str, Any],
                                                                 tmp_path: Path) -> None:
    gateway = own_stack.endpoints().gateway
    # the streaming routes answer 200 with these ids, as SSE when asked: what schemathesis will check
    reply = http("GET", f"{gateway}/v1/training-jobs/{real_ids['job_id']}:progress", headers={"Accept": SSE})
    assert reply.status == 200 and reply.headers["content-type"].startswith(SSE), reply.body[:300]
    assert b"event: end" in reply.body
    output = run_schemathesis(gateway + "/openapi.json", tmp_path, CONFIG + streaming_operations(real_ids),
                              "--phases", "examples,coverage,fuzzing")
    assert output.startswith("exit 0\n"), output[-6000:]
    assert "Tested: 35" in output or "passed" in output


def _string_events(content: dict[str, Any]) -> None:
    content[SSE] = {"schema": {"type": "string"}}  # how /openapi.json declared every event stream before


def _messages_need_a_missing_field(content: dict[str, Any]) -> None:
    message = content[SSE]["schema"]["oneOf"][0]["properties"]["data"]
    message["contentSchema"] = {"type": "object", "required": ["noSuchField"]}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("break_schema", [_string_events, _messages_need_a_missing_field])
def test_schemathesis_catches_a_wrong_sse_declaration(own_stack: Stack, real_ids: dict[str, Any], tmp_path: Path,
                                                      break_schema) -> None:
    """The check above can fail: each event, and the JSON message in its data, is validated."""
    gateway = own_stack.endpoints().gateway
    document = http("GET", gateway + "/openapi.json").json()
    path = "/v1/training-jobs/{job_id}:progress"
    break_schema(document["paths"][path]["get"]["responses"]["200"]["content"])
    schema = tmp_path / "openapi-broken-events.json"
    schema.write_text(json.dumps(document))
    output = run_schemathesis(str(schema), tmp_path, CONFIG + streaming_operations(real_ids), "--url", gateway,
                              "--include-path", path, "--phases", "examples,fuzzing")
    assert not output.startswith("exit 0\n"), output[-4000:]
    assert "SSE event violates schema" in output, output[-4000:]
