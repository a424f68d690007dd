"""A data service SIGKILLed while its annotation job runs: the restarted service re-attaches to the worker that
kept running (one attempt, never restarted), and the job ends with its catalog. Own data service, own bucket."""

from __future__ import annotations

import signal
from collections import Counter

import psutil
import pytest
from obspy import UTCDateTime

from quakestack.client import channel
from quakestack.data.network import write_network
from quakestack.jobs.executor import local_workers, stop_local_workers
from quakestack.metadata.database import Database
from quakestack.stack import Stack, with_free_ports
from quakestack.storage import ObjectStore
from quakestack.v1 import catalog_pb2_grpc
from tests.catalog.annotation_helpers import (
    annotation_request,
    picker_weights,
    publish_archive,
    register,
    state,
    wait_job,
)
from tests.conftest import own_sqlite
from tests.trainer.conftest import stored_events

FAST_RUNTIME = dict(jobs_lease_ttl_s=3.0, jobs_lost_after_s=6.0, jobs_heartbeat_s=0.5, health_interval_s=0.5)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_of_the_data_service_reattaches_to_the_running_annotation_worker(stack, tmp_path) -> None:
    settings = with_free_ports(stack.settings).replace(s3_bucket="annot-restart", database_url=own_sqlite(tmp_path),
                                                       **FAST_RUNTIME)
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket()
    metadata = Database.from_settings(settings)
    metadata.upgrade()
    start = UTCDateTime(2024, 3, 1, 6)  # one day, 4 hours a station: a job long enough to outlive a restart
    network = write_network(str(tmp_path / "network"), seed=7, start=start, end=start + 4 * 3600, n_events=12)
    archive = publish_archive(store, network, "archives/restart")
    register(store, metadata, "restart-picker", picker_weights(8))
    own = Stack(settings, state_dir=tmp_path)
    own.log_dir.mkdir(parents=True, exist_ok=True)
    own.start_process("data")
    try:
        own.wait_healthy(120, names=("data",))
        with channel(settings.data_addr) as ch:
            stub = catalog_pb2_grpc.CatalogServiceStub(ch)
            job = stub.CreateAnnotationJob(annotation_request(archive, "restart-picker"), timeout=60).job
            wait_job(stub, job.job_id, lambda j: j.progress.station_days_done >= 1, 300)
        workers = local_workers(settings.s3_endpoint, settings.s3_bucket)
        assert len(workers) == 1
        service = own.processes.pop("data")
        service.send_signal(signal.SIGKILL)
        service.wait(10)
        own.start_process("data")
        own.wait_healthy(120, names=("data",))
        assert workers[0].is_running(), "the worker survives its service (and outlived the restart)"
        with channel(settings.data_addr) as ch:
            stub = catalog_pb2_grpc.CatalogServiceStub(ch)
            done = wait_job(stub, job.job_id, lambda j: state(j) == "SUCCEEDED", 400)
        assert done.progress.station_days_done == done.progress.station_days_total == 8
        assert done.events > 0
        running = Counter(e.get("attempt") for e in stored_events(metadata, job.job_id)
                          if e["type"] == "state" and e["state"] == "RUNNING")
        assert running == Counter({1: 1}), "one worker, never restarted"
        assert "re-attached to a running worker" in (own.log_dir / "data.log").read_text()
        psutil.wait_procs(workers, timeout=15)
        assert not local_workers(settings.s3_endpoint, settings.s3_bucket), "the worker is reaped when its job ends"
    finally:
        own.stop()
        stop_local_workers(settings.s3_endpoint, settings.s3_bucket)
        metadata.close()
