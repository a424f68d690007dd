"""Sweeps end to end through a real trainer process: Optuna underneath (its storage on the test's own database),
trials as ordinary training jobs, pruning through the jobs' control, the best trial registered, limits changed
while it runs, and a SIGKILL of the trainer and the controller that changes nothing but time.

Each test runs its own trainer (two CPU slots, so two trials run side by side) on its own bucket.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from contextlib import closing

import grpc
import psutil
import pytest

from quakestack.client import channel
from quakestack.jobs.executor import job_processes
from quakestack.metadata.database import Database
from quakestack.metadata.jobs import JobStore
from quakestack.stack import Stack, with_free_ports
from quakestack.storage import ObjectStore
from quakestack.v1 import sweep_pb2, sweep_pb2_grpc, trainer_pb2, trainer_pb2_grpc
from tests.datasets import publish_synthetic_dataset
from tests.trainer.sweep_helpers import ended, lr_space, state_name, struct, sweep_request, wait_sweep

FAST_RUNTIME = dict(jobs_lease_ttl_s=3.0, jobs_lost_after_s=6.0, jobs_heartbeat_s=0.5, health_interval_s=0.5,
                    trainer_cpu_slots=2)


@pytest.fixture
def sweep_stack(stack, dataset_root, request, tmp_path):
    """A trainer of the test's own, on its own bucket and database (SQLite, or PostgreSQL when parametrized)."""
    url = request.getfixturevalue("own_database_url") if "own_database_url" in request.fixturenames else ""
    if not url:
        from tests.conftest import own_sqlite

        url = own_sqlite(tmp_path)
    name = request.node.originalname.replace("_", "-")[5:30].strip("-")
    settings = with_free_ports(stack.settings).replace(s3_bucket=f"sweep-{name}", database_url=url, **FAST_RUNTIME)
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket()
    with closing(Database.from_settings(settings)) as db:
        db.upgrade()
        publish_synthetic_dataset(store, db, "syn", dataset_root, n_events=600, n_noise=40, seed=1)
    own = Stack(settings, state_dir=tmp_path)
    own.log_dir.mkdir(parents=True, exist_ok=True)
    own.start_process("trainer")
    own.wait_healthy(90, names=("trainer",))
    yield own
    own.stop()
    from quakestack.jobs.executor import stop_local_workers

    stop_local_workers(settings.s3_endpoint, settings.s3_bucket)


def stubs(own: Stack):
    ch = channel(own.settings.trainer_addr)
    return sweep_pb2_grpc.SweepServiceStub(ch), trainer_pb2_grpc.TrainerServiceStub(ch), \
        trainer_pb2_grpc.ModelRegistryServiceStub(ch)


def epoch_events(own: Stack, job_id: str) -> list[int]:
    with closing(Database.from_settings(own.settings)) as db:
        return [int(e["epoch"]) for e in JobStore(db).all_events(job_id, ("epoch",))]


def default_run_objective(trainer, epochs: int) -> float:
    """The same model with every searched hyper-parameter at its default, trained alone: the yardstick."""
    from tests.trainer.sweep_helpers import FIXED

    job = trainer.CreateTrainingJob(trainer_pb2.CreateTrainingJobRequest(
        dataset="syn", architecture="convnetquake_ingv", hyper_parameters=struct({**FIXED, "epochs": epochs}),
        device="cpu"), timeout=30).job
    deadline = time.monotonic() + 600
    while True:
        job = trainer.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=job.job_id), timeout=10).job
        if job.state in (4, 5, 6, 7) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    events = trainer.StreamTrainingProgress(trainer_pb2.StreamTrainingProgressRequest(job_id=job.job_id), timeout=60)
    return min(e.epoch.val_loss for e in events if e.WhichOneof("event") == "epoch")


@pytest.mark.slow
def test_a_sweep_finds_a_better_model_prunes_a_bad_trial_and_registers_the_best(sweep_stack) -> None:
    sweeps, trainer, registry = stubs(sweep_stack)
    request = sweep_request(
        "syn", epochs=4, sampler=sweep_pb2.SWEEP_SAMPLER_TPE, pruner=sweep_pb2.SWEEP_PRUNER_MEDIAN,
        parallel_trials=2, max_trials=6, seed=7, pruner_startup_trials=2, pruner_warmup_epochs=1,
        # a known-good setting first, and a clearly bad one (it barely learns) the pruner must stop early
        enqueued_trials=[struct({"learning_rate": 0.01}), struct({"learning_rate": 0.003}),
                         struct({"learning_rate": 0.001})],
        register_best=sweep_pb2.RegisterBest(model_name="swept-magnitude", aliases=["staging"]))
    request.search_space[0].low = 1e-4  # the bad setting lies inside the space
    sweep = sweeps.CreateSweep(request, timeout=60).sweep
    assert state_name(sweep.state) == "QUEUED" and sweep.max_trials == 6
    # raise the limits while it runs: both take effect
    wait_sweep(sweeps, sweep.sweep_id, lambda s: s.trial_counts.running >= 1, 120)
    updated = sweeps.UpdateSweep(sweep_pb2.UpdateSweepRequest(sweep_id=sweep.sweep_id, max_trials=8,
                                                              parallel_trials=3), timeout=30).sweep
    assert (updated.max_trials, updated.parallel_trials) == (8, 3)
    done = wait_sweep(sweeps, sweep.sweep_id, ended, 1500)
    assert state_name(done.state) == "SUCCEEDED", done.error
    trials = done.trials
    assert len(trials) == 8, [t.number for t in trials]
    assert len({t.job_id for t in trials}) == 8
    counts = Counter(sweep_pb2.TrialState.Name(t.state) for t in trials)
    assert counts["TRIAL_STATE_PRUNED"] >= 1, counts
    pruned = [t for t in trials if t.state == sweep_pb2.TRIAL_STATE_PRUNED]
    assert all(len(t.intermediate_values) < 4 for t in pruned)  # stopped early, not at the end
    for t in trials:  # every trial's epochs once, in order
        epochs = epoch_events(sweep_stack, t.job_id)
        assert epochs == list(range(1, len(epochs) + 1)), (t.number, epochs)
    baseline = default_run_objective(trainer, 4)
    assert done.best_trial.value <= baseline, (done.best_trial.value, baseline)
    assert done.registered.name == "swept-magnitude" and done.registered.version == 1
    version = registry.GetModelVersion(trainer_pb2.GetModelVersionRequest(name="swept-magnitude",
                                                                          version="staging"), timeout=30).model_version
    assert version.source.job_id == done.best_trial.job_id
    assert set(done.importances) == {"learning_rate"}
    compared = sweeps.CompareRuns(sweep_pb2.CompareRunsRequest(sweep_id=sweep.sweep_id), timeout=60)
    assert compared.metric == "val_loss" and compared.runs[0].job_id == done.best_trial.job_id
    assert all(r.epochs for r in compared.runs) and compared.varying_parameters == ["learning_rate"]


@pytest.mark.slow
@pytest.mark.parametrize("own_database_url", ["postgresql"], indirect=True)
def test_a_sigkill_of_the_trainer_and_its_controller_changes_nothing_but_time(sweep_stack, own_database_url) -> None:
    sweeps, _, _ = stubs(sweep_stack)
    sweep = sweeps.CreateSweep(sweep_request("syn", epochs=3, sampler=sweep_pb2.SWEEP_SAMPLER_RANDOM,
                                             pruner=sweep_pb2.SWEEP_PRUNER_NONE, parallel_trials=2, max_trials=4,
                                             seed=11), timeout=60).sweep
    wait_sweep(sweeps, sweep.sweep_id, lambda s: s.trial_counts.running == 2, 180)
    controller = [p for p in job_processes(sweep.sweep_id)]
    assert controller, "the sweep's controller runs as a job worker"
    service = sweep_stack.processes.pop("trainer")
    service.send_signal(signal.SIGKILL)
    for proc in controller:
        proc.send_signal(signal.SIGKILL)
    service.wait(10)
    psutil.wait_procs(controller, timeout=10)
    sweep_stack.start_process("trainer")
    sweep_stack.wait_healthy(90, names=("trainer",))
    done = wait_sweep(sweeps, sweep.sweep_id, ended, 900)
    assert state_name(done.state) == "SUCCEEDED", done.error
    assert [t.number for t in done.trials] == [0, 1, 2, 3]
    assert len({t.job_id for t in done.trials}) == 4
    assert all(t.state == sweep_pb2.TRIAL_STATE_COMPLETE for t in done.trials)
    for t in done.trials:
        assert epoch_events(sweep_stack, t.job_id) == [1, 2, 3], t.number
    with closing(Database.from_settings(sweep_stack.settings)) as db:
        from tests.trainer.conftest import stored_events

        starts = [e for e in stored_events(db, sweep.sweep_id) if e["type"] == "state" and e["state"] == "RUNNING"]
    assert len(starts) == 2  # the controller ran again once, after the kill


def invalid(sweeps, request) -> str:
    with pytest.raises(grpc.RpcError) as excinfo:
        sweeps.CreateSweep(request, timeout=60)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT, excinfo.value.details()
    return excinfo.value.details()


def test_bad_sweeps_are_refused_naming_the_field(trainer_channel, magnitude_dataset) -> None:
    sweeps = sweep_pb2_grpc.SweepServiceStub(trainer_channel)
    out_of_range = sweep_request(magnitude_dataset, space=lr_space(1e-3, 5.0))
    assert "search_space[0].high" in invalid(sweeps, out_of_range) and "[1e-07, 1]" in invalid(sweeps, out_of_range)
    unknown = sweep_request(magnitude_dataset, space=[sweep_pb2.SearchParameter(
        name="dropout_rate", type=sweep_pb2.SEARCH_PARAMETER_TYPE_FLOAT, low=0.1, high=0.5)])
    assert "search_space[0].name" in invalid(sweeps, unknown) and "'dropout_rate'" in invalid(sweeps, unknown)
    metric = sweep_request(magnitude_dataset, objective=sweep_pb2.Objective(metric="f1"))
    assert "objective.metric" in invalid(sweeps, metric) and "rmse" in invalid(sweeps, metric)
    conditional = sweep_request(magnitude_dataset, space=[*lr_space(), sweep_pb2.SearchParameter(
        name="momentum", type=sweep_pb2.SEARCH_PARAMETER_TYPE_FLOAT, low=0.5, high=0.99,
        condition=sweep_pb2.SearchCondition(parameter="optimizer", values=[]))])
    conditional.search_space[1].condition.values.add().string_value = "sgd"
    assert "search_space[1].condition.parameter" in invalid(sweeps, conditional)
    grid_float = sweep_request(magnitude_dataset, sampler=sweep_pb2.SWEEP_SAMPLER_GRID)
    assert "search_space[0].step" in invalid(sweeps, grid_float)
    enqueued = sweep_request(magnitude_dataset, enqueued_trials=[struct({"batch_size": 8})])
    assert "enqueued_trials[0].batch_size" in invalid(sweeps, enqueued)
    assert "epochs" in invalid(sweeps, sweep_request(magnitude_dataset, space=[sweep_pb2.SearchParameter(
        name="epochs", type=sweep_pb2.SEARCH_PARAMETER_TYPE_INT, low=1, high=5)]))
    assert "max_trials" in invalid(sweeps, sweep_request(magnitude_dataset, max_trials=5000))
    with pytest.raises(grpc.RpcError) as excinfo:
        sweeps.GetSweep(sweep_pb2.GetSweepRequest(sweep_id="sw-nope"), timeout=10)
    assert excinfo.value.code() == grpc.StatusCode.NOT_FOUND
