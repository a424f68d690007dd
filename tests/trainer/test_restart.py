"""Restart safety: a SIGKILLed trainer service or worker; the job resumes with one continuous history.

Each test runs its own trainer process on its own bucket, so recovery never touches the session
stack's jobs.
"""

from __future__ import annotations

import signal
import time

import psutil
import pytest

from quakestack.client import channel
from quakestack.stack import Stack, with_free_ports
from quakestack.storage import ObjectStore
from quakestack.v1 import trainer_pb2, trainer_pb2_grpc
from tests.datasets import publish_synthetic_dataset
from tests.trainer.conftest import create_job, epochs_of, finished, progress, state_name, wait_for_job


@pytest.fixture
def own_trainer(stack, dataset_root, tmp_path, request):
    bucket = "restart-" + request.node.name.replace("_", "-")[5:40].strip("-")
    settings = with_free_ports(stack.settings).replace(s3_bucket=bucket, health_interval_s=0.5)
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket()
    publish_synthetic_dataset(store, "syn", dataset_root, n_events=600, n_noise=40, seed=1)
    own = Stack(settings, state_dir=tmp_path)
    own.log_dir.mkdir(parents=True)
    own.start_process("trainer")
    own.wait_healthy(90, names=("trainer",))
    yield own
    own.stop()


def _workers(pid: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(pid).children(recursive=True) if "quakestack.training.worker" in " ".join(
        p.cmdline())]


def test_sigkill_of_the_service_resumes_the_job(own_trainer) -> None:
    addr = own_trainer.settings.trainer_addr
    with channel(addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        job = create_job(stub, "syn", epochs=5)
        wait_for_job(stub, job.job_id, lambda j: j.epochs_done >= 2)
        service = own_trainer.processes["trainer"]
        workers = _workers(service.pid)
        assert workers
        service.send_signal(signal.SIGKILL)
        service.wait(10)
    for worker in workers:  # the worker sees its stdin close and leaves at once
        worker.wait(15)
    own_trainer.processes.pop("trainer")
    own_trainer.start_process("trainer")
    own_trainer.wait_healthy(90, names=("trainer",))
    with channel(addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        final = wait_for_job(stub, job.job_id, finished)
        assert state_name(final.state) == "SUCCEEDED", final.error
        events = progress(stub, job.job_id)
    assert epochs_of(events) == [1, 2, 3, 4, 5]
    messages = [e.state_change.message for e in events if e.WhichOneof("event") == "state_change"]
    assert "resumed after a service restart" in messages
    elapsed = [e.epoch.elapsed_s for e in events if e.WhichOneof("event") == "epoch"]
    assert elapsed == sorted(elapsed), "elapsed time continues across the restart"


def test_sigkill_of_the_worker_is_retried_from_the_checkpoint(own_trainer) -> None:
    with channel(own_trainer.settings.trainer_addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        job = create_job(stub, "syn", epochs=4)
        wait_for_job(stub, job.job_id, lambda j: j.epochs_done >= 1)
        for worker in _workers(own_trainer.processes["trainer"].pid):
            worker.send_signal(signal.SIGKILL)
        time.sleep(0.5)
        final = wait_for_job(stub, job.job_id, finished)
        assert state_name(final.state) == "SUCCEEDED", final.error
        events = progress(stub, job.job_id)
        job_now = stub.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=job.job_id)).job
    assert epochs_of(events) == [1, 2, 3, 4] and job_now.epochs_done == 4
    messages = [e.state_change.message for e in events if e.WhichOneof("event") == "state_change"]
    assert any("worker exited with code" in m and "resuming from epoch-" in m for m in messages), messages
