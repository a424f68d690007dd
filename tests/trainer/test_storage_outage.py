"""Storage stopped for 30 s while a training job runs: the worker keeps its events and retries, the
job finishes with every epoch exactly once, and the trainer serves again without a restart."""

from __future__ import annotations

import time

import pytest

from quakestack.client import channel, health_status
from quakestack.embedded.seaweed import SeaweedServer
from quakestack.jobs.executor import stop_local_workers
from quakestack.metadata.database import Database
from quakestack.stack import Stack, with_free_ports
from quakestack.storage import ObjectStore
from quakestack.v1 import trainer_pb2_grpc
from tests.conftest import own_sqlite
from tests.datasets import publish_synthetic_dataset
from tests.helpers import wait_for
from tests.trainer.conftest import create_job, epochs_of, finished, progress, state_name, stored_events, wait_for_job
from tests.trainer.test_restart import FAST_RUNTIME

OUTAGE_S = 30


@pytest.mark.slow
def test_storage_stopped_for_30s_while_a_job_runs(stack, dataset_root, tmp_path) -> None:
    weed = SeaweedServer(tmp_path / "s3", log_path=tmp_path / "weed.log").start()
    settings = with_free_ports(stack.settings).replace(
        s3_endpoint=weed.endpoint, s3_access_key=weed.credentials.access_key,
        s3_secret_key=weed.credentials.secret_key, s3_timeout_s=1.0, database_url=own_sqlite(tmp_path),
        **FAST_RUNTIME)
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket()
    metadata = Database.from_settings(settings)
    metadata.upgrade()
    publish_synthetic_dataset(store, metadata, "syn", dataset_root, n_events=600, n_noise=40, seed=1)
    own = Stack(settings, state_dir=tmp_path)
    own.log_dir.mkdir(parents=True)
    own.start_process("trainer")
    try:
        own.wait_healthy(90, names=("trainer",))
        with channel(settings.trainer_addr) as ch:
            stub = trainer_pb2_grpc.TrainerServiceStub(ch)
            job = create_job(stub, "syn", epochs=12)
            wait_for_job(stub, job.job_id, lambda j: j.epochs_done >= 1)
            weed.stop()
            assert wait_for(lambda: health_status(ch) == "NOT_SERVING", 10)
            time.sleep(OUTAGE_S)
            weed.start()
            assert wait_for(lambda: health_status(ch) == "SERVING", 30)
            final = wait_for_job(stub, job.job_id, finished, timeout_s=300)
            assert state_name(final.state) == "SUCCEEDED", final.error
            events = progress(stub, job.job_id)
        assert epochs_of(events) == list(range(1, 13))
        stored = stored_events(metadata, job.job_id)
        assert [e["epoch"] for e in stored if e["type"] == "epoch"] == list(range(1, 13))
        assert [e for e in stored if e.get("retry")] == [], "the worker was never declared lost"
        assert own.processes["trainer"].poll() is None
    finally:
        own.stop()
        stop_local_workers(settings.s3_endpoint, settings.s3_bucket)
        weed.stop()
        metadata.close()
