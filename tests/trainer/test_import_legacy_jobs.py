"""Jobs an older version wrote (`jobs/<id>/job.json` with the state in it + `metrics.jsonl`, as
services/trainer/jobs.py did before the job runtime) become runtime jobs when a scheduler discovers
them: in List/Get/StreamTrainingProgress with their history, checkpoints downloadable, the old files
kept; a job the old service left RUNNING resumes from its checkpoint; two replicas (and eight threads)
migrating at once write everything once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from functools import partial

import pytest

from quakestack.client import channel
from quakestack.jobs.migrate import migrate_legacy_job
from quakestack.jobs.spec import read_record
from quakestack.layout import checkpoint_key, events_prefix, job_prefix, spec_key
from quakestack.models.checkpoint import load_state
from quakestack.stack import with_free_ports
from quakestack.storage import ObjectStore
from quakestack.training.jobs import JOB_HYPER_PARAMETERS, KIND, SPEC_VERSION
from quakestack.training.legacy import OLD_SPEC_FIELDS, legacy_training_job
from quakestack.v1 import trainer_pb2, trainer_pb2_grpc
from tests.trainer.conftest import create_job, epochs_of, finished, progress, state_name, stored_events, wait_for_job
from tests.trainer.test_restart import _trainer, bucket_settings  # noqa: F401 - fixtures

RUNTIME_FILES = ("control.json", "lease.json", "heartbeat.json")


def write_old_job(store: ObjectStore, job_id: str, spec: dict, state: str, history: list[dict], *,
                  epochs: int, create_time: str) -> tuple[bytes, bytes]:
    """An old-format job as the old JobManager persisted it: `_persist` and `_append`'s bytes."""
    epochs_seen = [e for e in history if e["type"] == "epoch"]
    record = {**{f: spec[f] for f in OLD_SPEC_FIELDS if f in spec}, "job_id": job_id, "kind": "training",
              "state": state, "epochs": epochs, "epochs_done": len(epochs_seen), "best_epoch": len(epochs_seen),
              "elapsed_s": epochs_seen[-1]["elapsed_s"] if epochs_seen else 0.0, "error": "",
              "latest": epochs_seen[-1] if epochs_seen else None, "create_time": create_time,
              "update_time": history[-1]["time"], "resume_from": None, "retries": 0}
    lines = [{**{k: v for k, v in e.items() if k not in ("attempt", "environment", "world_size",
                                                             "p_offset_s")}, "sequence": i}
             for i, e in enumerate(history, start=1)]
    old_record = json.dumps(record, sort_keys=True, indent=1).encode()
    old_history = "".join(json.dumps(e) + "\n" for e in lines).encode()
    store.put_bytes(spec_key(job_id), old_record, content_type="application/json")
    store.put_bytes(f"{job_prefix(job_id)}metrics.jsonl", old_history, content_type="application/x-ndjson")
    return old_record, old_history


def _to_old_format(store: ObjectStore, job_id: str) -> tuple[bytes, bytes]:
    """Turn a finished runtime job into the old format in place (its real checkpoints stay)."""
    record = read_record(store, job_id)
    history = stored_events(store, job_id)
    store.delete_prefix(events_prefix(job_id))
    for name in RUNTIME_FILES:
        store.delete(f"{job_prefix(job_id)}{name}")
    return write_old_job(store, job_id, record.spec, history[-1]["state"], history, epochs=record.spec["epochs"],
                         create_time=record.create_time)


def test_old_format_jobs_are_migrated_once_by_two_replicas(bucket_settings, tmp_path) -> None:  # noqa: F811
    store = ObjectStore.from_settings(bucket_settings)
    first = _trainer(with_free_ports(bucket_settings), tmp_path / "first")
    try:
        with channel(first.settings.trainer_addr) as ch:
            stub = trainer_pb2_grpc.TrainerServiceStub(ch)
            done = create_job(stub, "syn", epochs=2).job_id
            assert state_name(wait_for_job(stub, done, finished).state) == "SUCCEEDED"
    finally:
        first.stop()  # the "old version" goes away; what it left is rewritten in its format
    new_history = stored_events(store, done)
    old_done = _to_old_format(store, done)
    # a job the old service left RUNNING after one epoch of three: its epoch-1 checkpoint is real
    running = "0123456789abcdef"
    store.put_bytes(checkpoint_key(running, "epoch-0001"), store.get_bytes(checkpoint_key(done, "epoch-0001")))
    spec = read_record_spec_of_old(store, done)
    upto_epoch_1 = [e for e in new_history if e["type"] != "epoch" or e["epoch"] == 1][:3]
    assert [e.get("state", e["type"]) for e in upto_epoch_1] == ["QUEUED", "RUNNING", "epoch"]
    old_running = write_old_job(store, running, spec, "RUNNING", upto_epoch_1, epochs=3,
                                create_time=new_history[0]["time"])

    replicas = [_trainer(with_free_ports(bucket_settings), tmp_path / f"r{i}") for i in range(2)]
    try:
        for replica in replicas:
            with channel(replica.settings.trainer_addr) as ch:
                stub = trainer_pb2_grpc.TrainerServiceStub(ch)
                listed = {j.job_id: j for j in stub.ListTrainingJobs(trainer_pb2.ListTrainingJobsRequest()).jobs}
                assert {done, running} <= set(listed)
                got = stub.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=done)).job
                assert state_name(got.state) == "SUCCEEDED" and got.epochs_done == 2 and got.dataset == "syn"
                history = progress(stub, done)
                assert epochs_of(history) == [1, 2]
                assert [e.sequence for e in history] == [e["sequence"] for e in new_history]
                weights = b"".join(r.chunk for r in stub.DownloadCheckpoint(
                    trainer_pb2.DownloadCheckpointRequest(job_id=done, epoch=2)))
                assert load_state(weights), "a migrated job's checkpoint downloads"
        with channel(replicas[1].settings.trainer_addr) as ch:
            stub = trainer_pb2_grpc.TrainerServiceStub(ch)
            final = wait_for_job(stub, running, finished, timeout_s=300)
            assert state_name(final.state) == "SUCCEEDED" and final.epochs_done == 3, final.error
            events = progress(stub, running)
        assert epochs_of(events) == [1, 2, 3], "resumed, no epoch redone"
        messages = [e.state_change.message for e in events if e.WhichOneof("event") == "state_change"]
        assert any("migrated from an older version" in m for m in messages), messages
        assert any(m.startswith("worker started") and "from epoch-0001" in m for m in messages), messages
        starts = Counter(e.get("attempt") for e in stored_events(store, running)
                         if e["type"] == "state" and e["state"] == "RUNNING")
        assert starts == Counter({None: 1, 1: 1}), "the old run, then one new worker"
    finally:
        for replica in replicas:
            replica.stop()
    for job_id, (old_record, old_history) in ((done, old_done), (running, old_running)):
        assert store.get_bytes(f"{job_prefix(job_id)}job.v0.json") == old_record, "the old record is kept"
        assert store.get_bytes(f"{job_prefix(job_id)}metrics.jsonl") == old_history, "the old history is kept"
    assert len(store.list(events_prefix(done))) == len(new_history), "every event written once"


def read_record_spec_of_old(store: ObjectStore, job_id: str) -> dict:
    old = json.loads(store.get_bytes(spec_key(job_id)))
    return {f: old[f] for f in OLD_SPEC_FIELDS if f in old}


@pytest.mark.parametrize("writers", [8])
def test_concurrent_migrations_write_one_record_and_one_log(stack, store, writers) -> None:
    job_id = "fedcba9876543210"
    spec = {"dataset": "syn", "architecture": "convnetquake_ingv", "hyper_parameters": {},
            "training_hyper_parameters": {"epochs": 2, "batch_size": 16}, "device": "cpu"}
    history = [{"type": "state", "state": "QUEUED", "message": "created", "time": "2026-11-30T10:00:00+00:00"},
               {"type": "state", "state": "RUNNING", "message": "worker started", "time": "2026-11-30T10:00:01+00:00"},
               {"type": "state", "state": "STOPPING", "message": "stop", "time": "2026-11-30T10:00:02+00:00"}]
    old_record, _ = write_old_job(store, job_id, spec, "STOPPING", history, epochs=2,
                                  create_time="2026-11-30T10:00:00+00:00")
    convert = partial(legacy_training_job, kind=KIND, version=SPEC_VERSION, job_hyper_parameters=JOB_HYPER_PARAMETERS)
    results: list = []
    barrier = threading.Barrier(writers)

    def migrate() -> None:
        barrier.wait()
        results.append(migrate_legacy_job(ObjectStore.from_settings(stack.settings), job_id, convert))

    threads = [threading.Thread(target=migrate) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == writers and len({json.dumps(r.to_dict(), sort_keys=True) for r in results}) == 1
    record = read_record(store, job_id)
    assert record.to_dict() == results[0].to_dict()
    assert record.spec["training_hyper_parameters"]["num_nodes"] == 1, "a newer hyper-parameter takes its default"
    events = stored_events(store, job_id)
    assert [e["state"] for e in events] == ["QUEUED", "RUNNING", "STOPPING", "STOPPED"]
    assert len(store.list(events_prefix(job_id))) == 4
    assert store.get_bytes(f"{job_prefix(job_id)}job.v0.json") == old_record
    assert migrate_legacy_job(store, job_id, convert).to_dict() == record.to_dict(), "idempotent"
