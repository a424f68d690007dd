"""PostgreSQL stopped for several seconds (longer than a lease) and started again while a training job and an
annotation job run: both finish, every epoch and every station-day exactly once, no worker declared lost,
and the services serve again without a restart."""

from __future__ import annotations

import time
from collections import Counter
from contextlib import closing

import pytest
from obspy import UTCDateTime

from quakestack.client import channel, health_status
from quakestack.data.network import write_network
from quakestack.jobs.executor import stop_local_workers
from quakestack.metadata.database import Database
from quakestack.stack import Stack, with_free_ports
from quakestack.storage import ObjectStore
from quakestack.v1 import catalog_pb2_grpc, trainer_pb2_grpc
from tests.catalog.annotation_helpers import (
    annotation_request,
    picker_weights,
    publish_archive,
    register,
    state,
    wait_job,
)
from tests.conftest import fresh_database
from tests.datasets import publish_synthetic_dataset
from tests.helpers import wait_for
from tests.trainer.conftest import create_job, epochs_of, finished, progress, state_name, stored_events, wait_for_job
from tests.trainer.test_restart import FAST_RUNTIME

OUTAGE_S = 8.0  # more than a lease (3 s) and than a lost worker's grace (6 s) in FAST_RUNTIME
EPOCHS = 6


@pytest.mark.timeout(600)
@pytest.mark.slow  # ~20 s on each backend: the slow set keeps the default run under 20 minutes
def test_postgres_restart_while_a_training_and_an_annotation_job_run(stack, dataset_root, tmp_path,
                                                                     postgres_server) -> None:
    settings = with_free_ports(stack.settings).replace(s3_bucket="pg-restart", **FAST_RUNTIME,
                                                       database_url=fresh_database(postgres_server))
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket()
    start = UTCDateTime(2024, 3, 1, 6)
    network = write_network(str(tmp_path / "network"), seed=5, start=start, end=start + 1800, n_events=3)
    with closing(Database.from_settings(settings)) as db:
        db.upgrade()
        publish_synthetic_dataset(store, db, "syn", dataset_root, n_events=600, n_noise=40, seed=1)
        archive = publish_archive(store, network, "archives/pg-restart")
        register(store, db, "pg-picker", picker_weights(0))
    own = Stack(settings, state_dir=tmp_path)
    own.log_dir.mkdir(parents=True, exist_ok=True)
    for name in ("trainer", "data"):
        own.start_process(name)
    try:
        own.wait_healthy(90, names=("trainer", "data"))
        with channel(settings.trainer_addr) as tch, channel(settings.data_addr) as dch:
            trainer = trainer_pb2_grpc.TrainerServiceStub(tch)
            catalogs = catalog_pb2_grpc.CatalogServiceStub(dch)
            training = create_job(trainer, "syn", epochs=EPOCHS)
            annotation = catalogs.CreateAnnotationJob(annotation_request(archive, "pg-picker"), timeout=60).job
            wait_for_job(trainer, training.job_id, lambda j: j.epochs_done >= 1)
            wait_job(catalogs, annotation.job_id, lambda j: state(j) in ("RUNNING", "SUCCEEDED"), 120)
            postgres_server.stop()
            assert wait_for(lambda: health_status(tch) == "NOT_SERVING" and health_status(dch) == "NOT_SERVING",
                            15), "the services say the database is away"
            time.sleep(OUTAGE_S)
            postgres_server.start()
            assert wait_for(lambda: health_status(tch) == "SERVING" and health_status(dch) == "SERVING", 30)
            final = wait_for_job(trainer, training.job_id, finished, timeout_s=300)
            assert state_name(final.state) == "SUCCEEDED", final.error
            assert epochs_of(progress(trainer, training.job_id)) == list(range(1, EPOCHS + 1)), "each epoch once"
            done = wait_job(catalogs, annotation.job_id, lambda j: state(j) == "SUCCEEDED", 300)
        total = done.progress.station_days_total
        assert total >= 4 and done.progress.station_days_done == total
        picks = store.list(f"catalogs/{annotation.job_id}/picks/")
        assert len(picks) == total, "every station-day picked and stored once"
        with closing(Database.from_settings(settings)) as db:
            for job_id in (training.job_id, annotation.job_id):
                events = stored_events(db, job_id)
                assert [e for e in events if e.get("retry")] == [], "no worker was declared lost"
                running = Counter(e.get("attempt") for e in events if e["type"] == "state" and e["state"] == "RUNNING")
                assert running == Counter({1: 1}), (job_id, running)
            epochs = [e["epoch"] for e in stored_events(db, training.job_id) if e["type"] == "epoch"]
            assert epochs == list(range(1, EPOCHS + 1))
        for name in ("trainer", "data"):
            assert own.processes[name].poll() is None, f"{name} served through the outage without a restart"
    finally:
        if postgres_server.process is None or postgres_server.process.poll() is not None:
            postgres_server.start()
        own.stop()
        stop_local_workers(settings.s3_endpoint, settings.s3_bucket)
