"""Faults with real processes: a SIGKILLed trainer re-attaches to its still-running worker, a SIGKILLed
worker is rescheduled from its checkpoint, queued jobs survive a restart, two replicas on one bucket
run every job exactly once, and a dataset replaced under a queued job fails it clearly.

Each test runs its own trainer process(es) on its own bucket, so nothing touches the session stack's jobs.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing

import psutil
import pytest

from quakestack.client import channel, health_status
from quakestack.jobs.executor import WORKER_MODULE, local_workers
from quakestack.layout import tensorboard_key
from quakestack.metadata.database import Database
from quakestack.metadata.jobs import JobStore
from quakestack.stack import Stack, with_free_ports
from quakestack.storage import ObjectStore
from quakestack.v1 import trainer_pb2, trainer_pb2_grpc
from tests.conftest import REPO_ROOT
from tests.datasets import publish_synthetic_dataset
from tests.trainer.conftest import create_job, epochs_of, finished, progress, state_name, stored_events, wait_for_job
from tests.trainer.tensorboard_reader import read_run

FAST_RUNTIME = dict(jobs_lease_ttl_s=3.0, jobs_lost_after_s=6.0, jobs_heartbeat_s=0.5, health_interval_s=0.5)


def _bucket(request) -> str:
    name = request.node.originalname.replace("_", "-")[5:36].strip("-")
    backend = request.node.callspec.params.get("own_database_url", "x")[:2] if hasattr(request.node, "callspec") \
        else "x"
    return f"restart-{name}-{backend}"


def _trainer(settings, state_dir) -> Stack:
    own = Stack(settings, state_dir=state_dir)
    own.log_dir.mkdir(parents=True, exist_ok=True)
    own.start_process("trainer")
    own.wait_healthy(90, names=("trainer",))
    return own


@pytest.fixture
def bucket_settings(stack, dataset_root, request, own_database_url):
    """A bucket and a metadata database of the test's own (each test runs on SQLite and on PostgreSQL)."""
    settings = with_free_ports(stack.settings).replace(s3_bucket=_bucket(request), database_url=own_database_url,
                                                       **FAST_RUNTIME)
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket()
    with closing(Database.from_settings(settings)) as db:
        db.upgrade()
        publish_synthetic_dataset(store, db, "syn", dataset_root, n_events=600, n_noise=40, seed=1)
    yield settings
    from quakestack.jobs.executor import stop_local_workers

    stop_local_workers(settings.s3_endpoint, settings.s3_bucket)


@pytest.fixture
def own_trainer(bucket_settings, tmp_path):
    own = _trainer(bucket_settings, tmp_path)
    yield own
    own.stop()


def _restart(own: Stack) -> None:
    service = own.processes.pop("trainer")
    service.send_signal(signal.SIGKILL)
    service.wait(10)
    own.start_process("trainer")
    own.wait_healthy(90, names=("trainer",))


def _attempts(settings, job_id: str) -> Counter:
    """How many times a worker started for the job (RUNNING events, by attempt)."""
    with closing(Database.from_settings(settings)) as db:
        return Counter(e.get("attempt") for e in stored_events(db, job_id)
                       if e["type"] == "state" and e["state"] == "RUNNING")


def test_sigkill_of_the_service_reattaches_to_the_running_worker(own_trainer) -> None:
    settings = own_trainer.settings
    with channel(settings.trainer_addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        job = create_job(stub, "syn", epochs=8)
        wait_for_job(stub, job.job_id, lambda j: j.epochs_done >= 2)
    watcher = subprocess.Popen([sys.executable, "-m", "quakestack", "train", "watch", job.job_id, "--json",
                                "--trainer", settings.trainer_addr], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=REPO_ROOT)  # follows the job through the trainer's restart
    workers = local_workers(settings.s3_endpoint, settings.s3_bucket)
    assert len(workers) == 1
    _restart(own_trainer)
    assert workers[0].is_running(), "the worker survives its service"
    with channel(settings.trainer_addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        final = wait_for_job(stub, job.job_id, finished)
        assert state_name(final.state) == "SUCCEEDED", final.error
        events = progress(stub, job.job_id)
    assert epochs_of(events) == list(range(1, 9)), "every epoch exactly once, no gap"
    out, err = watcher.communicate(timeout=120)
    assert watcher.returncode == 0, err
    watched = [json.loads(line) for line in out.splitlines()]
    assert [int(e["sequence"]) for e in watched] == [e.sequence for e in events], "the watch saw each event once"
    elapsed = [e.epoch.elapsed_s for e in events if e.WhichOneof("event") == "epoch"]
    assert all(b > a for a, b in zip(elapsed, elapsed[1:], strict=False)), "elapsed time continues"
    assert _attempts(settings, job.job_id) == Counter({1: 1}), "one worker, never restarted"
    assert "re-attached to a running worker" in (own_trainer.log_dir / "trainer.log").read_text()
    psutil.wait_procs(workers, timeout=15)
    assert not local_workers(settings.s3_endpoint, settings.s3_bucket), "the worker is reaped when its job ends"


def test_sigkill_of_the_worker_is_rescheduled_from_its_checkpoint(own_trainer, tmp_path) -> None:
    settings = own_trainer.settings
    with channel(settings.trainer_addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        job = create_job(stub, "syn", epochs=5)
        wait_for_job(stub, job.job_id, lambda j: j.epochs_done >= 2)
        for worker in local_workers(settings.s3_endpoint, settings.s3_bucket):
            worker.send_signal(signal.SIGKILL)
        final = wait_for_job(stub, job.job_id, finished)
        assert state_name(final.state) == "SUCCEEDED", final.error
        events = progress(stub, job.job_id)
    assert epochs_of(events) == [1, 2, 3, 4, 5]
    messages = [e.state_change.message for e in events if e.WhichOneof("event") == "state_change"]
    assert any("retry 1 of 2 from the last checkpoint" in m for m in messages), messages
    resumed = [m for m in messages if m.startswith("worker started")][-1]
    assert "from epoch-000" in resumed, resumed  # not from the start
    assert sorted(_attempts(settings, job.job_id)) == [1, 2]
    run_dir = tmp_path / "tensorboard" / job.job_id  # the job's TensorBoard file, read by TensorBoard's reader
    run_dir.mkdir(parents=True)
    (run_dir / "events.out.tfevents.job").write_bytes(ObjectStore.from_settings(settings).get_bytes(
        tensorboard_key(job.job_id)))
    assert [step for step, _ in read_run(run_dir)["scalars"]["train_loss"]] == [1, 2, 3, 4, 5], \
        "the event file holds each epoch once across the retry"


def test_queued_jobs_survive_a_sigkill_and_run(own_trainer) -> None:
    settings = own_trainer.settings
    with channel(settings.trainer_addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        jobs = [create_job(stub, "syn", epochs=1) for _ in range(3)]  # one CPU slot: two wait in the queue
    _restart(own_trainer)
    with channel(settings.trainer_addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        for job in jobs:
            final = wait_for_job(stub, job.job_id, finished)
            assert state_name(final.state) == "SUCCEEDED", final.error
            assert epochs_of(progress(stub, job.job_id)) == [1]


@pytest.mark.slow
def test_two_replicas_on_one_bucket_run_every_job_once(bucket_settings, tmp_path) -> None:
    replicas = [_trainer(with_free_ports(bucket_settings), tmp_path / f"r{i}") for i in range(2)]
    try:
        ids = []
        for i in range(10):
            with channel(replicas[i % 2].settings.trainer_addr) as ch:
                ids.append(create_job(trainer_pb2_grpc.TrainerServiceStub(ch), "syn", epochs=1).job_id)
        for i, job_id in enumerate(ids):
            with channel(replicas[(i + 1) % 2].settings.trainer_addr) as ch:  # asked of the other replica
                final = wait_for_job(trainer_pb2_grpc.TrainerServiceStub(ch), job_id, finished, timeout_s=400)
                assert state_name(final.state) == "SUCCEEDED", final.error
        for replica in replicas:
            with channel(replica.settings.trainer_addr) as ch:
                assert health_status(ch) == "SERVING"
                listed = trainer_pb2_grpc.TrainerServiceStub(ch).ListTrainingJobs(
                    trainer_pb2.ListTrainingJobsRequest()).jobs
                assert {j.job_id for j in listed} >= set(ids)
        with closing(Database.from_settings(bucket_settings)) as db:
            for job_id in ids:
                assert _attempts(bucket_settings, job_id) == Counter({1: 1}), job_id
                assert [e["epoch"] for e in stored_events(db, job_id) if e["type"] == "epoch"] == [1]
        launched = Counter()
        for replica in replicas:
            text = (replica.log_dir / "trainer.log").read_text()
            launched.update(job_id for job_id in ids if f'"job_id": "{job_id}", "attempt": 1' in text
                            and "worker started" in text)
        assert all(launched[job_id] >= 1 for job_id in ids)
    finally:
        for replica in replicas:
            replica.stop()


def test_dataset_replaced_while_queued_fails_naming_both_hashes(own_trainer, dataset_root) -> None:
    settings = own_trainer.settings
    store = ObjectStore.from_settings(settings)
    metadata = Database.from_settings(settings)
    publish_synthetic_dataset(store, metadata, "syn-swap", dataset_root, n_events=300, n_noise=30, seed=1)
    with channel(settings.trainer_addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        blocker = create_job(stub, "syn", epochs=40)  # holds the one CPU slot
        waiting = create_job(stub, "syn-swap", epochs=1)
        old_sha = waiting.dataset_manifest_sha256
        store.delete_prefix("datasets/syn-swap/")  # deleted and ingested again under the same name
        publish_synthetic_dataset(store, metadata, "syn-swap", dataset_root, n_events=300, n_noise=30, seed=2)
        stub.CancelTrainingJob(trainer_pb2.CancelTrainingJobRequest(job_id=blocker.job_id))
        final = wait_for_job(stub, waiting.job_id, finished)
    assert state_name(final.state) == "FAILED"
    new_sha = store.stat("datasets/syn-swap/manifest.json").sha256
    metadata.close()
    assert "syn-swap" in final.error and old_sha in final.error and new_sha in final.error, final.error


def test_no_worker_left_after_the_stack_stops(bucket_settings, tmp_path) -> None:
    own = _trainer(bucket_settings, tmp_path)
    with channel(own.settings.trainer_addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        job = create_job(stub, "syn", epochs=40)
        wait_for_job(stub, job.job_id, lambda j: state_name(j.state) == "RUNNING")
    own.stop()
    time.sleep(0.5)
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if WORKER_MODULE in " ".join(p.info["cmdline"] or [])
                 and job.job_id in " ".join(p.info["cmdline"] or [])]
    assert not leftovers


# -- a restart is not a failure ---------------------------------------------------------------------------------
@pytest.mark.slow  # ~20 s a backend: keeps the default run under 20 min
def test_clean_stops_of_the_stack_spend_no_retry(bucket_settings, tmp_path) -> None:
    """Three clean stops of the stack while a job trains: each time the job is QUEUED at once (the stored state,
    not RUNNING with no worker), each start resumes it from its checkpoint, and it ends with no retry spent."""
    job_id, events = None, []
    for stop in range(4):
        own = _trainer(bucket_settings, tmp_path / f"run-{stop}")
        try:
            with channel(bucket_settings.trainer_addr) as ch:
                stub = trainer_pb2_grpc.TrainerServiceStub(ch)
                if job_id is None:
                    job_id = create_job(stub, "syn", epochs=200).job_id
                if stop == 3:  # the fourth start: it resumes, and ends after its next epoch
                    running = wait_for_job(stub, job_id, lambda j: state_name(j.state) == "RUNNING")
                    stub.UpdateTrainingJob(trainer_pb2.UpdateTrainingJobRequest(job_id=job_id,
                                                                               epochs=running.epochs_done))
                    final = wait_for_job(stub, job_id, finished)
                    events = progress(stub, job_id)
                    break
                done = stop + 1
                wait_for_job(stub, job_id, lambda j, done=done: j.epochs_done >= done and
                             state_name(j.state) == "RUNNING")
        finally:
            own.stop()
        with closing(Database.from_settings(bucket_settings)) as db:
            view = JobStore(db).get(job_id)
            assert view.state.value == "QUEUED" and view.status["retries"] == 0, view.status
    assert state_name(final.state) == "SUCCEEDED" and final.retries == 0, final
    assert epochs_of(events) == list(range(1, final.epochs_done + 1)), "every epoch once across the restarts"
    messages = [e.state_change.message for e in events if e.WhichOneof("event") == "state_change"]
    assert sum("the stack was stopped: resumes from its last checkpoint" in m for m in messages) == 3, messages
    assert not any("retry" in m and "no retry spent" not in m for m in messages), messages


def test_a_worker_that_died_with_its_machine_is_requeued_without_a_retry(bucket_settings, tmp_path) -> None:
    """A RUNNING job whose worker's heartbeat comes from this machine before its last boot: the scheduler that
    claims it sees the machine restarted and queues it again, spending no retry."""
    from quakestack.jobs.spec import JobRecord, new_job_id
    from quakestack.metadata.datasets import DatasetCatalog
    from quakestack.protoconv import utc_now_iso
    from quakestack.training.jobs import KIND, SPEC_VERSION, build_spec

    store = ObjectStore.from_settings(bucket_settings)
    with closing(Database.from_settings(bucket_settings)) as db:
        spec = {**build_spec(store, DatasetCatalog(db), dataset="syn", architecture="convnetquake_ingv",
                             values={"n_samples": 3000, "epochs": 1}, device="cpu", display_name="", gpu_count=0),
                "owner": "anonymous"}
        record = JobRecord(kind=KIND, version=SPEC_VERSION, job_id=new_job_id(), create_time=utc_now_iso(), spec=spec)
        jobs = JobStore(db)
        jobs.create(record, {"epochs": 1, "attempt": 1}, {"type": "state", "state": "QUEUED", "message": "created"})
        jobs.append(record.job_id, {"type": "state", "state": "RUNNING", "message": "worker started", "attempt": 1})
        jobs.beat(record.job_id, 0, 1, 7, {"job_id": record.job_id, "attempt": 1, "beat": 7,
                                           "host": socket.gethostname(), "pid": 1,
                                           "pid_start": psutil.boot_time() - 3600.0})
    own = _trainer(bucket_settings, tmp_path)
    try:
        with channel(bucket_settings.trainer_addr) as ch:
            stub = trainer_pb2_grpc.TrainerServiceStub(ch)
            final = wait_for_job(stub, record.job_id, finished)
            events = progress(stub, record.job_id)
    finally:
        own.stop()
    assert state_name(final.state) == "SUCCEEDED" and final.retries == 0, final.error
    messages = [e.state_change.message for e in events if e.WhichOneof("event") == "state_change"]
    assert any(m.startswith("the machine restarted: resumes from its last checkpoint") for m in messages), messages
