"""num_nodes on the local executor, through the real trainer service: one torchrun launcher per node on
loopback (the Indexed Job pod's command and PET_* environment), one job's events and checkpoints, and
a cancel that leaves no launcher, rank or child behind."""

from __future__ import annotations

import os
import time

import psutil

from quakestack.client import channel
from quakestack.jobs.executor import job_processes
from quakestack.v1 import trainer_pb2, trainer_pb2_grpc
from tests.trainer.conftest import create_job, finished, state_name, stored_events, wait_for_job
from tests.trainer.test_restart import _restart, bucket_settings, own_trainer  # noqa: F401 - fixtures


def _launchers(job_id: str) -> list[psutil.Process]:
    out = []
    for proc in job_processes(job_id):
        try:
            if any("torchrun" in part or part == "torch.distributed.run" for part in proc.cmdline()[:3]):
                out.append(proc)
        except psutil.Error:
            continue
    return out


def _wait_launchers(job_id: str, count: int, timeout_s: float = 120) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = _launchers(job_id)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"expected {count} torchrun launchers of job {job_id}, found {len(_launchers(job_id))}")


def test_two_node_job_runs_as_two_launchers_and_succeeds(trainer, store, metadata, magnitude_dataset) -> None:
    job = create_job(trainer, magnitude_dataset, epochs=2, num_nodes=2)
    launchers = _wait_launchers(job.job_id, 2)
    envs = [p.environ() for p in launchers]
    assert sorted(e["PET_NODE_RANK"] for e in envs) == ["0", "1"]
    assert {(e["PET_NNODES"], e["PET_MASTER_ADDR"], e["PET_MASTER_PORT"]) for e in envs} == {
        ("2", "127.0.0.1", envs[0]["PET_MASTER_PORT"])}, "one rendezvous on loopback"
    assert all(os.getsid(p.pid) == p.pid for p in launchers), "each launcher leads its own session (detached)"
    done = wait_for_job(trainer, job.job_id, finished, timeout_s=400)
    assert state_name(done.state) == "SUCCEEDED", done.error
    events = stored_events(metadata, job.job_id)
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2], "one job's epochs, each once"
    running = [e for e in events if e["type"] == "state" and e["state"] == "RUNNING"]
    assert len(running) == 1 and running[0]["world_size"] == 2
    assert {e.get("attempt") for e in events if e["type"] == "epoch"} == {1}
    keys = sorted(info.key.rsplit("/", 1)[-1] for info in store.list(f"jobs/{job.job_id}/checkpoints/"))
    assert keys == ["epoch-0001.pt", "epoch-0002.pt"]
    psutil.wait_procs(launchers, timeout=15)
    assert not job_processes(job.job_id)


def test_cancel_of_a_two_node_job_leaves_no_process(trainer, magnitude_dataset) -> None:
    job = create_job(trainer, magnitude_dataset, epochs=40, batch_size=4, num_nodes=2)
    launchers = _wait_launchers(job.job_id, 2)
    wait_for_job(trainer, job.job_id, lambda j: state_name(j.state) == "RUNNING", timeout_s=200)
    every = {p.pid: p for launcher in launchers for p in [launcher, *launcher.children(recursive=True)]}
    every.update({p.pid: p for p in job_processes(job.job_id)})
    assert len(every) >= 4, "two launchers and their two ranks"
    trainer.CancelTrainingJob(trainer_pb2.CancelTrainingJobRequest(job_id=job.job_id), timeout=30)
    done = wait_for_job(trainer, job.job_id, finished, timeout_s=60)
    assert state_name(done.state) == "CANCELLED"
    _, alive = psutil.wait_procs(list(every.values()), timeout=30)
    assert not [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], alive
    assert not job_processes(job.job_id)


def test_a_restarted_service_reattaches_to_both_nodes_and_cancels_them(own_trainer) -> None:  # noqa: F811
    """SIGKILL the trainer under a running 2-node job: the launchers survive, the new trainer recognises
    the job's worker by rank 0's heartbeat, and its cancel reaps both nodes' processes."""
    settings = own_trainer.settings
    with channel(settings.trainer_addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        job = create_job(stub, "syn", epochs=40, batch_size=4, num_nodes=2)
        wait_for_job(stub, job.job_id, lambda j: j.epochs_done >= 1, timeout_s=200)
    launchers = _wait_launchers(job.job_id, 2)
    every = {p.pid: p for p in job_processes(job.job_id)}
    _restart(own_trainer)
    assert all(p.is_running() for p in every.values()), "both nodes survive their service"
    with channel(settings.trainer_addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        log = own_trainer.log_dir / "trainer.log"
        deadline = time.monotonic() + 60  # once the dead trainer's lease has expired
        while "re-attached to a running worker" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "re-attached to a running worker" in log.read_text()
        seen = stub.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=job.job_id), timeout=10).job.epochs_done
        wait_for_job(stub, job.job_id, lambda j: j.epochs_done > seen, timeout_s=200)
        assert {p.pid for p in _launchers(job.job_id)} == {p.pid for p in launchers}, "no second launch"
        stub.CancelTrainingJob(trainer_pb2.CancelTrainingJobRequest(job_id=job.job_id), timeout=30)
        assert state_name(wait_for_job(stub, job.job_id, finished, timeout_s=60).state) == "CANCELLED"
    _, alive = psutil.wait_procs(list(every.values()), timeout=30)
    assert not [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], alive
    assert not job_processes(job.job_id)
