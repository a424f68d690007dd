"""Jobs an even older version wrote (`jobs/<id>/job.json` with the state in it + `metrics.jsonl`, as
services/trainer/jobs.py did before the job runtime) are imported into the metadata store when a service
first starts on their bucket: in List/Get/StreamTrainingProgress with their history, checkpoints
downloadable, the old objects kept as they were; a job the old service left RUNNING resumes from its
checkpoint; two replicas (and eight threads) importing at once write everything once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from contextlib import closing

import pytest
import sqlalchemy as sa

from quakestack.client import channel
from quakestack.layout import checkpoint_key, job_prefix, spec_key
from quakestack.metadata.database import Database
from quakestack.metadata.importer import import_object_storage
from quakestack.metadata.jobs import JobStore
from quakestack.metadata.schema import job_events
from quakestack.models.checkpoint import load_state
from quakestack.stack import with_free_ports
from quakestack.storage import ObjectStore
from quakestack.training.legacy import OLD_SPEC_FIELDS
from quakestack.v1 import trainer_pb2, trainer_pb2_grpc
from tests.conftest import own_sqlite
from tests.trainer.conftest import create_job, epochs_of, finished, progress, state_name, stored_events, wait_for_job
from tests.trainer.test_restart import _trainer, bucket_settings  # noqa: F401 - fixtures


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


def test_old_format_jobs_are_imported_once_by_two_replicas(bucket_settings, tmp_path) -> None:  # noqa: F811
    """A job trained here is rewritten in the oldest format in a fresh bucket path; two replicas on an empty
    database import it and a RUNNING one, and the RUNNING one resumes from its epoch-1 checkpoint."""
    store = ObjectStore.from_settings(bucket_settings)
    scratch = with_free_ports(bucket_settings).replace(database_url=own_sqlite(tmp_path / "scratch"))
    first = _trainer(scratch, tmp_path / "first")
    try:
        with channel(first.settings.trainer_addr) as ch:
            stub = trainer_pb2_grpc.TrainerServiceStub(ch)
            done = create_job(stub, "syn", epochs=2).job_id
            assert state_name(wait_for_job(stub, done, finished).state) == "SUCCEEDED"
    finally:
        first.stop()  # the "old version" goes away; what it left is written again in its format
    with closing(Database.from_settings(scratch)) as db:
        record = JobStore(db).get(done).record
        new_history = stored_events(db, done)
    old_done = write_old_job(store, done, record.spec, new_history[-1]["state"], new_history,
                             epochs=record.spec["epochs"], create_time=record.create_time)
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
                assert load_state(weights), "an imported job's checkpoint downloads"
        with channel(replicas[1].settings.trainer_addr) as ch:
            stub = trainer_pb2_grpc.TrainerServiceStub(ch)
            final = wait_for_job(stub, running, finished, timeout_s=300)
            assert state_name(final.state) == "SUCCEEDED" and final.epochs_done == 3, final.error
            events = progress(stub, running)
        assert epochs_of(events) == [1, 2, 3], "resumed, no epoch redone"
        messages = [e.state_change.message for e in events if e.WhichOneof("event") == "state_change"]
        assert any("migrated from an older version" in m for m in messages), messages
        assert any(m.startswith("worker started") and "from epoch-0001" in m for m in messages), messages
        with closing(Database.from_settings(bucket_settings)) as db:
            starts = Counter(e.get("attempt") for e in stored_events(db, running)
                             if e["type"] == "state" and e["state"] == "RUNNING")
            assert starts == Counter({None: 1, 1: 1}), "the old run, then one new worker"
            with db.read() as conn:
                stored = conn.execute(sa.select(sa.func.count()).select_from(job_events)
                                      .where(job_events.c.job_id == done)).scalar()
            assert stored == len(new_history), "every event imported once"
    finally:
        for replica in replicas:
            replica.stop()
    for job_id, (old_record, old_history) in ((done, old_done), (running, old_running)):
        assert store.get_bytes(spec_key(job_id)) == old_record, "the old record is kept as it was"
        assert store.get_bytes(f"{job_prefix(job_id)}metrics.jsonl") == old_history, "the old history is kept"


def read_record_spec_of_old(store: ObjectStore, job_id: str) -> dict:
    old = json.loads(store.get_bytes(spec_key(job_id)))
    return {f: old[f] for f in OLD_SPEC_FIELDS if f in old}


@pytest.mark.parametrize("writers", [8])
def test_concurrent_imports_write_one_record_and_one_log(stack, writers, tmp_path, own_database_url) -> None:
    """Eight threads (each its own engine, as replicas have) import one bucket into one empty database."""
    settings = with_free_ports(stack.settings).replace(s3_bucket=f"legacy-import-{tmp_path.name[-12:]}".lower()
                                                       .replace("_", "-"), database_url=own_database_url)
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket()
    job_id = "fedcba9876543210"
    spec = {"dataset": "syn", "architecture": "convnetquake_ingv", "hyper_parameters": {},
            "training_hyper_parameters": {"epochs": 2, "batch_size": 16}, "device": "cpu"}
    history = [{"type": "state", "state": "QUEUED", "message": "created", "time": "2026-11-30T10:00:00+00:00"},
               {"type": "state", "state": "RUNNING", "message": "worker started", "time": "2026-11-30T10:00:01+00:00"},
               {"type": "state", "state": "STOPPING", "message": "stop", "time": "2026-11-30T10:00:02+00:00"}]
    old_record, _ = write_old_job(store, job_id, spec, "STOPPING", history, epochs=2,
                                  create_time="2026-11-30T10:00:00+00:00")
    with closing(Database.from_settings(settings)) as db:
        db.upgrade()
    results: list = []
    barrier = threading.Barrier(writers)

    def run_import() -> None:
        with closing(Database.from_settings(settings)) as db:
            barrier.wait()
            results.append(import_object_storage(db, ObjectStore.from_settings(settings)))

    threads = [threading.Thread(target=run_import) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    reports = [r for r in results if r is not None]
    assert len(results) == writers and len(reports) == 1 and reports[0].jobs == 1, results
    with closing(Database.from_settings(settings)) as db:
        record = JobStore(db).get(job_id).record
        assert record.spec["training_hyper_parameters"]["num_nodes"] == 1, "a newer hyper-parameter takes its default"
        events = stored_events(db, job_id)
        assert [e["state"] for e in events] == ["QUEUED", "RUNNING", "STOPPING", "STOPPED"]
        assert import_object_storage(db, store) is None, "imported once: a later start does nothing"
    assert store.get_bytes(spec_key(job_id)) == old_record, "the bucket is left as it was"
