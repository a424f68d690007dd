"""The tracking tools users own, against the real stack: a job's TensorBoard event files read back by TensorBoard's
own reader, and the MLflow export read back by MlflowClient from a real `mlflow server` (in .venv-mlflow: the
mlflow package stays out of the project's environment; the export itself speaks MLflow's REST API)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from quakestack.cli.common import Ctx
from quakestack.cli.experiments import export_mlflow
from quakestack.cli.train import tensorboard
from quakestack.embedded.seaweed import free_ports
from quakestack.jsonmap import whole_numbers_as_ints
from quakestack.layout import tensorboard_key
from quakestack.metadata.jobs import JobStore
from quakestack.protoconv import dict_from_struct
from quakestack.tracking.mlflow_export import MlflowExporter, param_text
from quakestack.tracking.mlflow_rest import MlflowRest
from quakestack.tracking.records import Sweep, Trial
from quakestack.tracking.source import GrpcSource
from quakestack.tracking.tensorboard import epoch_scalars, hparam_values, render_event_file
from quakestack.v1 import trainer_pb2
from tests.trainer.conftest import create_job, finished, state_name, wait_for_job
from tests.trainer.tensorboard_reader import read_run

REPO_ROOT = Path(__file__).resolve().parents[2]
MLFLOW_PYTHON = REPO_ROOT / ".venv-mlflow" / "bin" / "python"
CLIENT = Path(__file__).with_name("mlflow_client.py")
EPOCHS = 2
MODEL = "tracked-mag"
TOKEN = "test-token-never-printed-4f1c"


@pytest.fixture(scope="module")
def tracked(trainer, registry, magnitude_dataset, metadata) -> dict:
    """One finished 2-epoch job with an evaluation and a registered version (alias production)."""
    job = create_job(trainer, magnitude_dataset, epochs=EPOCHS)
    final = wait_for_job(trainer, job.job_id, finished)
    assert state_name(final.state) == "SUCCEEDED", final.error
    evaluation = trainer.EvaluateModel(trainer_pb2.EvaluateModelRequest(
        checkpoint=trainer_pb2.CheckpointRef(job_id=job.job_id), split="val"), timeout=120)
    registry.RegisterModel(trainer_pb2.RegisterModelRequest(
        name=MODEL, source=trainer_pb2.CheckpointRef(job_id=job.job_id), aliases=["production"]), timeout=60)
    view = JobStore(metadata).get(job.job_id)
    return {"job": final, "job_id": job.job_id, "evaluation_id": evaluation.evaluation_id, "view": view,
            "epochs": JobStore(metadata).all_events(job.job_id, ("epoch",))}


def test_a_jobs_tensorboard_files_read_back_with_every_epoch_and_its_hyper_parameters(tracked, stack, store,
                                                                                      tmp_path) -> None:
    job_id, epochs, view = tracked["job_id"], tracked["epochs"], tracked["view"]
    logdir = tmp_path / "logs"
    files = tensorboard(Ctx(stack.settings, quiet=True), [job_id], logdir)  # `quakestack train tensorboard -o`
    assert [f.relative_to(logdir.resolve()).as_posix() for f in files] == [f"{job_id}/events.out.tfevents.{job_id}"]

    run = read_run(logdir / job_id)
    expected: dict[str, list[tuple[int, float]]] = {}
    for event in epochs:
        for tag, value in epoch_scalars(event).items():
            expected.setdefault(tag, []).append((int(event["epoch"]), value))
    assert {"train_loss", "val_loss", "learning_rate", "samples_per_s", "rmse", "r2"} <= set(expected)
    assert set(run["scalars"]) == set(expected)
    for tag, values in expected.items():
        assert [step for step, _ in run["scalars"][tag]] == list(range(1, EPOCHS + 1)), tag  # every epoch, once
        assert [v for _, v in run["scalars"][tag]] == pytest.approx([v for _, v in values], rel=1e-6), tag
    spec = view.record.spec
    assert run["hparams"] == hparam_values(spec)
    assert run["hparams"]["learning_rate"] == pytest.approx(0.005) and run["hparams"]["n_samples"] == 3000
    assert run["group"] == job_id and run["end"] == "STATUS_SUCCESS"
    # the stored object is the event log rendered: a retried or resumed worker writes the same bytes
    assert store.get_bytes(tensorboard_key(job_id)) == render_event_file(job_id, spec, view.record.create_time,
                                                                         epochs, "SUCCEEDED")

    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    mux = EventMultiplexer().AddRunsFromDirectory(str(logdir))  # what `tensorboard --logdir` loads
    mux.Reload()
    assert list(mux.Runs()) == [job_id]

    stored = store.get_bytes(tensorboard_key(job_id))  # a job of an earlier version, with no event file stored:
    store.delete(tensorboard_key(job_id))              # the archive renders one from its events
    try:
        tensorboard(Ctx(stack.settings, quiet=True), [job_id], tmp_path / "rendered")
        assert read_run(tmp_path / "rendered" / job_id) == run
    finally:
        store.put_bytes(tensorboard_key(job_id), stored)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server (SQLite backend, proxied artifacts), stopped at the end."""
    if not MLFLOW_PYTHON.exists():
        pytest.skip("no .venv-mlflow with mlflow: run scripts/setup.sh --dev")
    folder = tmp_path_factory.mktemp("mlflow")
    port = free_ports(1)[0]
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen([str(MLFLOW_PYTHON), "-m", "mlflow", "server",
                               "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                               "--artifacts-destination", str(folder / "artifacts"),
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((folder / "server.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # its own session: the server and its uvicorn worker (a SIGTERM takes
        server.wait(10)                        # 4 s of graceful shutdown, and nothing it holds is kept)
        log.close()


def _read_mlflow(uri: str, experiment: str, tmp_path: Path) -> dict:
    out = tmp_path / f"{experiment}.json"
    done = subprocess.run([str(MLFLOW_PYTHON), str(CLIENT), uri, experiment, str(out)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def test_the_mlflow_export_reads_back_through_mlflow_client(tracked, stack, store, mlflow_server, tmp_path) -> None:
    job_id, epochs, job = tracked["job_id"], tracked["epochs"], tracked["job"]
    command = [sys.executable, "-m", "quakestack", "experiments", "export-mlflow", "--tracking-uri", mlflow_server,
               "--job", job_id, "--model", MODEL, "--trainer", stack.settings.trainer_addr, "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=REPO_ROOT,
                          env={**os.environ, "MLFLOW_TRACKING_TOKEN": TOKEN})
    assert done.returncode == 0, done.stderr[-3000:]
    assert TOKEN not in done.stdout + done.stderr
    first = json.loads(done.stdout)
    assert first["runs_created"] == 1 and first["versions_created"] == 1 and first["aliases_set"] == 1
    again = export_mlflow(Ctx(stack.settings, quiet=True), mlflow_server, job_ids=[job_id], model_names=[MODEL])
    assert (again["runs_created"], again["metrics_logged"], again["params_logged"], again["versions_created"]) == \
        (0, 0, 0, 0), "a second export adds nothing"

    held = _read_mlflow(mlflow_server, "quakestack", tmp_path)
    runs = [r for r in held["runs"] if r["tags"].get("quakestack.job_id") == job_id]
    assert len(runs) == 1, "one run per job, however often it is exported"
    run = runs[0]
    expected: dict[str, list[tuple[int, float]]] = {}
    for event in epochs:
        for key, value in epoch_scalars(event).items():
            expected.setdefault(key, []).append((int(event["epoch"]), value))
    assert set(run["metrics"]) == set(expected)
    for key, values in expected.items():
        assert sorted((m["step"], m["value"]) for m in run["metrics"][key]) == values, key  # each step once, same value
    hp = whole_numbers_as_ints(dict_from_struct(job.hyper_parameters))
    assert run["params"] == {k: param_text(v) for k, v in hp.items()}
    assert {k: run["tags"][k] for k in ("dataset", "architecture", "state")} == \
        {"dataset": job.dataset, "architecture": job.architecture, "state": "SUCCEEDED"}
    assert run["status"] == "FINISHED"
    artifacts = {a["path"]: a["size"] for a in run["artifacts"]}
    assert artifacts[f"tensorboard/events.out.tfevents.{job_id}"] == len(store.get_bytes(tensorboard_key(job_id)))
    assert f"eval/{tracked['evaluation_id']}/metrics.json" in artifacts
    assert {f"registered/{MODEL}/1/weights.pt", f"registered/{MODEL}/1/model_card.json"} <= set(artifacts)

    (model,) = [m for m in held["models"] if m["name"] == MODEL]
    assert len(model["versions"]) == 1
    (version,) = model["versions"]
    assert version["run_id"] == run["run_id"] and version["tags"]["quakestack.version"] == "1"
    assert version["source"] == f"runs:/{run['run_id']}/registered/{MODEL}/1"
    assert model["aliases"] == {"production": str(version["version"])}


class OneSweep(GrpcSource):
    """The real services' jobs, with one sweep over them given as a record: the exporter's sweep path without the
    SweepService (built beside this, by the sweeps work)."""

    def __init__(self, channel, sweep: Sweep):
        super().__init__(channel)
        self.record = sweep

    def sweep_ids(self) -> list[str]:
        return [self.record.sweep_id]

    def sweep(self, sweep_id: str) -> Sweep:
        assert sweep_id == self.record.sweep_id
        return self.record


def test_a_version_no_job_produced_exports_with_a_run_of_its_own(stack, store, metadata, mlflow_server,
                                                                 tmp_path) -> None:
    """An imported version has no training job; MLflow 3 takes no source but a run's, so one stands for it."""
    from quakestack.model_store import ModelStore

    card = {"architecture": "seisbench:PhaseNet", "task": "picking", "hyper_parameters": {}, "metrics": {},
            "input_spec": {"n_samples": 3001, "components": "ZNE", "sampling_rate": 100.0, "extra_inputs": []},
            "class_names": [], "normalization": "none"}
    ModelStore(store, metadata).register("jobless-model", b"not read by the export test", card)
    for _ in range(2):
        export_mlflow(Ctx(stack.settings, quiet=True), mlflow_server, experiment="jobless",
                      model_names=["jobless-model"], artifacts=False)
    held = _read_mlflow(mlflow_server, "jobless", tmp_path)
    stand_ins = [r for r in held["runs"] if r["tags"].get("quakestack.registered_version") == "jobless-model/1"]
    versions = [v for m in held["models"] if m["name"] == "jobless-model" for v in m["versions"]]
    assert len(stand_ins) == 1 and len(versions) == 1
    assert versions[0]["run_id"] == stand_ins[0]["run_id"]
    assert versions[0]["source"] == f"runs:/{stand_ins[0]['run_id']}/registered/jobless-model/1"


def test_a_sweep_exports_as_a_parent_run_with_its_trials_nested(tracked, trainer_channel, mlflow_server,
                                                                 tmp_path) -> None:
    job_id = tracked["job_id"]
    now = int(time.time() * 1000)
    sweep = Sweep(sweep_id="sweep-t1", display_name="tracking test", dataset=tracked["job"].dataset,
                  architecture=tracked["job"].architecture, objective_metric="rmse", objective_direction="MINIMIZE",
                  state="SUCCEEDED", create_time_ms=now, update_time_ms=now,
                  settings={"sampler": "tpe", "pruner": "median", "max_trials": 2},
                  trials=[Trial(0, job_id, "COMPLETE", {"learning_rate": 0.005}, 0.5),
                          Trial(1, "", "WAITING", {"learning_rate": 0.01}, None)],
                  best_trial=0, importances={"learning_rate": 1.0})
    for _ in range(2):
        MlflowExporter(MlflowRest(mlflow_server), OneSweep(trainer_channel, sweep), experiment="sweeps",
                       artifacts=False).export()
    held = _read_mlflow(mlflow_server, "sweeps", tmp_path)
    parents = [r for r in held["runs"] if r["tags"].get("quakestack.sweep_id") == "sweep-t1"]
    children = [r for r in held["runs"] if r["tags"].get("quakestack.job_id") == job_id]
    assert len(parents) == 1 and len(children) == 1
    assert children[0]["tags"]["mlflow.parentRunId"] == parents[0]["run_id"]
    assert children[0]["tags"]["quakestack.trial_number"] == "0"
    assert parents[0]["params"] == {"sampler": "tpe", "pruner": "median", "max_trials": "2"}
    assert [(m["step"], m["value"]) for m in parents[0]["metrics"]["objective"]] == [(0, 0.5)]
    assert parents[0]["tags"]["objective.metric"] == "rmse" and parents[0]["status"] == "FINISHED"


@pytest.mark.slow  # a real sweep of two 2-epoch trials, ~50 s
def test_a_real_sweep_exports_with_its_trials_nested(trainer_channel, magnitude_dataset, stack, mlflow_server,
                                                      tmp_path) -> None:
    from quakestack.v1 import sweep_pb2, sweep_pb2_grpc
    from tests.trainer.sweep_helpers import ended, sweep_request, wait_sweep

    sweeps = sweep_pb2_grpc.SweepServiceStub(trainer_channel)
    created = sweeps.CreateSweep(sweep_request(magnitude_dataset, epochs=2, sampler=sweep_pb2.SWEEP_SAMPLER_RANDOM,
                                               pruner=sweep_pb2.SWEEP_PRUNER_NONE, parallel_trials=1, max_trials=2,
                                               seed=5, display_name="export test"),
                                 timeout=60).sweep
    sweep = wait_sweep(sweeps, created.sweep_id, ended, timeout_s=300)
    assert state_name(sweep.state) == "SUCCEEDED", sweep.error
    report = export_mlflow(Ctx(stack.settings, quiet=True), mlflow_server, experiment="real-sweep",
                           sweep_ids=[sweep.sweep_id], artifacts=False)
    assert report["sweep_runs"].keys() == {sweep.sweep_id} and len(report["job_runs"]) == 2
    held = _read_mlflow(mlflow_server, "real-sweep", tmp_path)
    (parent,) = [r for r in held["runs"] if r["tags"].get("quakestack.sweep_id") == sweep.sweep_id]
    trials = {t.job_id: t for t in sweep.trials}
    children = [r for r in held["runs"] if r["tags"].get("quakestack.job_id") in trials]
    assert len(children) == 2 and {r["tags"]["mlflow.parentRunId"] for r in children} == {parent["run_id"]}
    for run in children:
        trial = trials[run["tags"]["quakestack.job_id"]]
        assert run["tags"]["quakestack.trial_number"] == str(trial.number)
        assert float(run["params"]["learning_rate"]) == pytest.approx(trial.parameters["learning_rate"])
    assert parent["params"]["objective"] == "val_loss" and parent["params"]["sampler"] == "random"
    assert sorted(m["step"] for m in parent["metrics"]["objective"]) == sorted(t.number for t in sweep.trials)
