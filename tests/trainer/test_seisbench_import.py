"""Importing SeisBench models (as `save` writes them) and refusing what cannot be imported or fine-tuned."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import seisbench.models as sbm
import torch

from quakestack.v1 import trainer_pb2
from tests.datasets import publish_synthetic_dataset
from tests.gateway.helpers import http
from tests.trainer.conftest import hyper
from tests.trainer.seisbench_helpers import import_model, invalid, saved


def test_import_registers_a_servable_version_with_its_provenance(registry, tmp_path) -> None:
    torch.manual_seed(1)
    model = sbm.PhaseNet(phases="PSN")
    model.save(tmp_path / "pn", weights_docstring="trained on network A")
    config, weights = (tmp_path / "pn.json").read_text(), (tmp_path / "pn.pt").read_bytes()
    version = import_model(registry, "imported-pn", "PhaseNet", config, weights)
    assert version.architecture == "seisbench:PhaseNet" and version.task == 4  # TASK_PICKING
    assert (version.input_spec.n_samples, version.input_spec.component_order,
            version.input_spec.sampling_rate_hz) == (3001, "ZNE", 100.0)
    assert version.hyper_parameters["phases"] == "PSN"
    provenance = dict(version.provenance)
    assert provenance["source"] == "imported" and provenance["file_sha256"] == version.weights_sha256
    assert provenance["docstring"] == "trained on network A" and provenance["seisbench_requirement"]
    assert version.source.job_id == ""


def test_bad_imports_are_invalid_argument(registry, tmp_path) -> None:
    config, weights = saved(sbm.PhaseNet(), tmp_path, "pn")
    eqt_config, eqt_weights = saved(sbm.EQTransformer(), tmp_path, "eqt")
    details = invalid(lambda: import_model(registry, "bad", "PhaseNet", config, eqt_weights))
    assert "not a PhaseNet" in details and "missing key(s)" in details and "unexpected key(s)" in details
    details = invalid(lambda: import_model(registry, "bad", "PhaseNet", config, weights[: len(weights) // 2]))
    assert "weights_only" in details and "truncated" in details
    details = invalid(lambda: import_model(registry, "bad", "GPD", config, weights))
    assert "'GPD' is not supported" in details and "EQTransformer, PhaseNet" in details
    named = json.dumps({**json.loads(config), "model_class": "seisbench.models.BasicPhaseAE"})
    assert "model_class" in invalid(lambda: import_model(registry, "bad", "PhaseNet", named, weights))
    assert "does not parse" in invalid(lambda: import_model(registry, "bad", "PhaseNet", config[:-5], weights))
    bad_args = json.dumps({**json.loads(config), "model_args": {"no_such_argument": 1}})
    assert "rejects" in invalid(lambda: import_model(registry, "bad", "PhaseNet", bad_args, weights))
    assert "sha256" in invalid(lambda: import_model(registry, "bad", "PhaseNet", config, weights, "0" * 64))
    assert "EQTransformer" in import_model(registry, "eqt-ok", "EQTransformer", eqt_config, eqt_weights).architecture
    models = [m.name for m in registry.ListModels(trainer_pb2.ListModelsRequest(), timeout=30).models]
    assert "bad" not in models


def test_fine_tuning_refuses_what_the_model_cannot_take(trainer, registry, store, metadata, dataset_root,
                                                         tmp_path) -> None:
    """A starting version fixes the architecture, its sampling rate and its window: a dataset that cannot give
    them, another architecture, or fine-tuning options on an architecture without parameter groups, are refused
    naming both sides."""
    publish_synthetic_dataset(store, metadata, "syn-short", dataset_root, n_events=40, n_noise=6, seed=8,
                              length_s=20.0)
    publish_synthetic_dataset(store, metadata, "syn-31s", dataset_root, n_events=40, n_noise=6, seed=8,
                              length_s=31.0)
    import_model(registry, "pn-100hz", "PhaseNet", *saved(sbm.PhaseNet(), tmp_path, "a"))
    import_model(registry, "pn-50hz", "PhaseNet", *saved(sbm.PhaseNet(sampling_rate=50), tmp_path, "b"))

    def create(dataset: str, model: str, architecture: str = "", **hp):
        return trainer.CreateTrainingJob(trainer_pb2.CreateTrainingJobRequest(
            dataset=dataset, architecture=architecture, hyper_parameters=hyper(epochs=1, **hp),
            initial_model=trainer_pb2.ModelRef(name=model)), timeout=30).job

    details = invalid(lambda: create("syn-short", "pn-100hz"))
    assert "3001-sample windows" in details and "'syn-short' has 2000-sample windows" in details
    details = invalid(lambda: create("syn-31s", "pn-50hz"))
    assert "takes 50 Hz" in details and "'syn-31s' is 100 Hz" in details
    details = invalid(lambda: create("syn-31s", "pn-100hz", architecture="phasenet"))
    assert "seisbench:PhaseNet" in details and "phasenet" in details
    assert "phases" in invalid(lambda: create("syn-31s", "pn-100hz", phases="PSN"))
    details = invalid(lambda: trainer.CreateTrainingJob(trainer_pb2.CreateTrainingJobRequest(
        dataset="syn-31s", architecture="phasenet", hyper_parameters=hyper(freeze="encoder")), timeout=30))
    assert "parameter groups" in details
    job = create("syn-31s", "pn-100hz", freeze="encoder", pretrained_lr_factor=0.1)
    assert job.architecture == "seisbench_phasenet"
    trainer.CancelTrainingJob(trainer_pb2.CancelTrainingJobRequest(job_id=job.job_id), timeout=30)


def test_rest_import_streams_the_weights_as_the_body(stack, tmp_path) -> None:
    """POST /v1/models:import: the header in the query, the .pt as an octet-stream body; a refusal is a 400."""
    config, weights = saved(sbm.PhaseNet(), tmp_path, "rest")
    url = stack.endpoints().gateway + "/v1/models:import?" + urlencode(
        {"name": "rest-pn", "seisbench_class": "PhaseNet", "config_json": config})
    reply = http("POST", url, weights, {"content-type": "application/octet-stream"})
    assert reply.status == 200, reply.body
    assert reply.json()["modelVersion"]["architecture"] == "seisbench:PhaseNet"
    bad = http("POST", url.replace("PhaseNet", "GPD"), weights, {"content-type": "application/octet-stream"})
    assert bad.status == 400 and "not supported" in bad.body.decode(), bad.body
