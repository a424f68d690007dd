"""Upgrading a real installation: the previous version (the last commit before the metadata store, taken from
this repository's history and run as it was) fills a bucket with jobs of every kind and state — training jobs
SUCCEEDED, STOPPED, CANCELLED, QUEUED and one RUNNING when it is killed; a published dataset and a failed
ingestion; an annotation job's catalog; a registered model with an alias; a token's stored bytes — then this
version starts on that bucket with an empty database, imports it, and carries on: every job listed in the state
it had, the running one resumed from its checkpoint with each epoch once, the queued one run, the model, the
dataset, the catalog and the quota served, and the bucket left as it was."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import grpc
import pytest
from obspy import UTCDateTime

from quakestack.client import channel, health_status
from quakestack.config import settings_env
from quakestack.data.network import write_network
from quakestack.data.synthetic import write_stead
from quakestack.jobs.executor import stop_local_workers
from quakestack.metadata.database import Database
from quakestack.metadata.usage import UsageLedger
from quakestack.model_store import ModelStore
from quakestack.stack import Stack, with_free_ports
from quakestack.storage import ObjectStore
from quakestack.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    common_pb2,
    data_pb2,
    data_pb2_grpc,
    trainer_pb2,
    trainer_pb2_grpc,
)
from tests.catalog.annotation_helpers import annotation_request, picker_weights, publish_archive
from tests.conftest import REPO_ROOT, own_sqlite
from tests.helpers import upload_requests
from tests.trainer.conftest import epochs_of, finished, state_name

pytestmark = pytest.mark.slow  # builds and runs the previous version's stack (~45 s): the slow set
BASELINE = "ba64360"  # the last commit whose job runtime kept every record on object storage
TOKEN = "previous-version-token-0123456789"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
REGISTER_PICKER = r"""
import sys, json
sys.path.insert(0, ".")
from quakestack.config import load_settings
from quakestack.model_store import ModelStore
from quakestack.storage import ObjectStore
card = json.loads(sys.argv[2])
ModelStore(ObjectStore.from_settings(load_settings())).register(sys.argv[1], open(sys.argv[3], "rb").read(), card)
"""


@pytest.fixture(scope="module")
def previous_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("previous-version")
    archive = root / "tree.tar"
    with archive.open("wb") as fh:
        done = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", BASELINE, "quakestack", "services", "gateway"],
                              stdout=fh, stderr=subprocess.PIPE)
    if done.returncode:
        pytest.skip(f"this checkout holds no history of {BASELINE} (a shallow clone?): {done.stderr.decode()[:200]}")
    with tarfile.open(archive) as tar:
        tar.extractall(root / "tree", filter="data")
    return root / "tree"


def _old_env(settings, tree: Path) -> dict[str, str]:
    """Only the variables the previous version's settings table knows: any other (the database, settings added
    since) would stop it at start as an unknown setting."""
    known = (tree / "quakestack" / "config.py").read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
    env.update({k: v for k, v in settings_env(settings).items()
                if f'Setting("{k.removeprefix("QUAKESTACK_").lower()}"' in known})
    return {**env, "PYTHONUNBUFFERED": "1"}


class OldStack:
    """The previous version's data and trainer services, run from its own tree."""

    def __init__(self, tree: Path, settings, log_dir: Path):
        self.tree, self.settings, self.log_dir = tree, settings, log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in ("data", "trainer"):
            with (self.log_dir / f"old-{name}.log").open("ab") as log:
                self.procs[name] = subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=self.tree,
                                                    env=_old_env(self.settings, self.tree), stdout=log,
                                                    stderr=subprocess.STDOUT, start_new_session=True)
        for name in ("data", "trainer"):
            deadline = time.monotonic() + 90
            while not _serving(getattr(self.settings, f"{name}_addr")):
                assert self.procs[name].poll() is None, (self.log_dir / f"old-{name}.log").read_text()[-2000:]
                assert time.monotonic() < deadline, f"the previous {name} did not start"
                time.sleep(0.1)

    def kill(self) -> None:
        """As an upgrade that does not wait: every process of the old version is gone, the RUNNING job's too."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        stop_local_workers(self.settings.s3_endpoint, self.settings.s3_bucket)


def _serving(addr: str) -> bool:
    with channel(addr) as ch:
        return health_status(ch) == "SERVING"


@pytest.fixture
def upgrade(stack, previous_tree, tmp_path) -> Iterator[tuple]:
    settings = with_free_ports(stack.settings).replace(
        s3_bucket="previous-version", api_tokens=f"admin={TOKEN}:admin stored_mb=100", jobs_lease_ttl_s=3.0,
        jobs_lost_after_s=6.0, jobs_heartbeat_s=0.5, health_interval_s=0.5, database_url=own_sqlite(tmp_path),
        cache_dir=str(tmp_path / "cache"))
    ObjectStore.from_settings(settings).ensure_bucket()
    old = OldStack(previous_tree, settings, tmp_path / "logs")
    new = Stack(settings, state_dir=tmp_path)
    try:
        yield settings, old, new
    finally:
        old.kill()
        new.stop()
        stop_local_workers(settings.s3_endpoint, settings.s3_bucket)


@pytest.mark.timeout(900)
def test_a_bucket_of_the_previous_version_is_imported_and_carried_on(upgrade, tmp_path) -> None:
    settings, old, new = upgrade
    store = ObjectStore.from_settings(settings)
    # -- the previous version at work ---------------------------------------------------------------
    ((h5, csv_path),) = write_stead(str(tmp_path / "stead"), n_events=120, n_noise=12, seed=4)
    for path in (h5, csv_path):
        store.put_file(f"incoming/stead/{Path(path).name}", path)
    store.put_bytes("incoming/bad/bad.hdf5", b"not an hdf5 file")
    store.put_bytes("incoming/bad/bad.csv", b"not,a,stead,csv\n")
    start = UTCDateTime(2024, 3, 1, 12)
    network = write_network(str(tmp_path / "network"), seed=2, start=start, end=start + 600, n_events=1)
    archive = publish_archive(store, network, "archives/previous")
    weights, card = picker_weights(0)
    (tmp_path / "picker.pt").write_bytes(weights)
    subprocess.run([sys.executable, "-c", REGISTER_PICKER, "prev-picker", json.dumps(card),
                    str(tmp_path / "picker.pt")], cwd=old.tree, env=_old_env(settings, old.tree), check=True)
    old.start()
    with channel(settings.data_addr) as dch, channel(settings.trainer_addr) as tch:
        data = data_pb2_grpc.DataServiceStub(dch)
        catalogs = catalog_pb2_grpc.CatalogServiceStub(dch)
        trainer = trainer_pb2_grpc.TrainerServiceStub(tch)
        registry = trainer_pb2_grpc.ModelRegistryServiceStub(tch)
        uploaded = data.UploadFile(upload_requests("notes.bin", b"7" * 5000), metadata=AUTH, timeout=30)

        def ingest(name: str, prefix: str) -> data_pb2.DatasetJob:
            source = data_pb2.DataSource(format=data_pb2.SOURCE_FORMAT_STEAD,
                                         waveforms=common_pb2.Location(object_key=prefix))
            job = data.CreateDataset(data_pb2.CreateDatasetRequest(name=name, sources=[source], seed=3),
                                     metadata=AUTH, timeout=30).job
            deadline = time.monotonic() + 180
            while state_name(job.state) not in ("SUCCEEDED", "FAILED"):
                assert time.monotonic() < deadline, job
                time.sleep(0.3)
                job = data.GetDatasetJob(data_pb2.GetDatasetJobRequest(job_id=job.job_id), metadata=AUTH,
                                         timeout=10).job
            return job

        dataset_job, bad_job = ingest("prev-ds", "incoming/stead/"), ingest("prev-bad", "incoming/bad/")
        assert state_name(dataset_job.state) == "SUCCEEDED" and state_name(bad_job.state) == "FAILED"
        manifest_sha = data.GetDataset(data_pb2.GetDatasetRequest(name="prev-ds"), metadata=AUTH,
                                       timeout=10).dataset.manifest_sha256

        def create(epochs: int) -> str:
            return create_job_as(trainer, "prev-ds", epochs)
        done = create(2)
        assert state_name(wait_for_job_as(trainer, done, finished).state) == "SUCCEEDED"
        registry.RegisterModel(trainer_pb2.RegisterModelRequest(
            name="prev-model", source=trainer_pb2.CheckpointRef(job_id=done), aliases=["production"]),
            metadata=AUTH, timeout=60)
        stopped = create(20)
        wait_for_job_as(trainer, stopped, lambda j: j.epochs_done >= 1)
        trainer.StopTrainingJob(trainer_pb2.StopTrainingJobRequest(job_id=stopped), metadata=AUTH, timeout=30)
        assert state_name(wait_for_job_as(trainer, stopped, finished).state) == "STOPPED"
        running = create(200)  # still running when the old version is killed, however fast epochs are
        cancelled, queued = create(3), create(2)  # behind the running one (one CPU slot)
        trainer.CancelTrainingJob(trainer_pb2.CancelTrainingJobRequest(job_id=cancelled), metadata=AUTH, timeout=30)
        annotation = catalogs.CreateAnnotationJob(annotation_request(archive, "prev-picker"), metadata=AUTH,
                                                  timeout=60).job.job_id
        wait_job_as(catalogs, annotation, lambda j: state_name(j.state) == "SUCCEEDED")
        wait_for_job_as(trainer, running, lambda j: j.epochs_done >= 2)
        history_before = progress_as(trainer, done)
    old.kill()
    records_before = {key: store.get_bytes(key) for key in (f"jobs/{done}/job.json", f"jobs/{running}/job.json")}
    catalog_xml = store.get_bytes(f"catalogs/{annotation}/catalog.xml")

    # -- this version on the same bucket, an empty database ----------------------------------------------
    new.log_dir.mkdir(parents=True, exist_ok=True)
    new.start_process("data")
    new.start_process("trainer")
    new.wait_healthy(180, names=("data", "trainer"))
    with channel(settings.data_addr) as dch, channel(settings.trainer_addr) as tch:
        data = data_pb2_grpc.DataServiceStub(dch)
        catalogs = catalog_pb2_grpc.CatalogServiceStub(dch)
        trainer = trainer_pb2_grpc.TrainerServiceStub(tch)
        registry = trainer_pb2_grpc.ModelRegistryServiceStub(tch)
        listed = {j.job_id: j for j in trainer.ListTrainingJobs(trainer_pb2.ListTrainingJobsRequest(),
                                                                 metadata=AUTH, timeout=30).jobs}
        assert set(listed) == {done, stopped, running, cancelled, queued}
        assert state_name(listed[done].state) == "SUCCEEDED" and listed[done].epochs_done == 2
        assert state_name(listed[stopped].state) == "STOPPED" and listed[stopped].epochs_done >= 1
        assert state_name(listed[cancelled].state) == "CANCELLED"
        after = progress_as(trainer, done)
        assert [e.sequence for e in after] == [e.sequence for e in history_before] and epochs_of(after) == [1, 2]
        resumed = wait_for_job_as(trainer, running, lambda j: state_name(j.state) == "RUNNING", timeout_s=120)
        trainer.UpdateTrainingJob(trainer_pb2.UpdateTrainingJobRequest(job_id=running, epochs=resumed.epochs_done),
                                  metadata=AUTH, timeout=30)  # ends after the epoch in progress
        for job_id in (running, queued):
            final = wait_for_job_as(trainer, job_id, finished, timeout_s=400)
            assert state_name(final.state) == "SUCCEEDED", final.error
            assert epochs_of(progress_as(trainer, job_id)) == list(range(1, final.epochs_done + 1)), "each epoch once"
            assert final.epochs_done == (2 if job_id == queued else final.epochs_done) < 200
        messages = [e.state_change.message for e in progress_as(trainer, running)
                    if e.WhichOneof("event") == "state_change"]
        assert any("imported into the metadata store: resuming" in m for m in messages), messages
        assert any(m.startswith("worker started") and re.search(r"from epoch-\d{4}", m) for m in messages), messages
        jobs = {j.job_id: j for j in data.ListDatasetJobs(data_pb2.ListDatasetJobsRequest(), metadata=AUTH,
                                                          timeout=30).jobs}
        assert state_name(jobs[dataset_job.job_id].state) == "SUCCEEDED"
        assert state_name(jobs[bad_job.job_id].state) == "FAILED" and jobs[bad_job.job_id].error
        dataset = data.GetDataset(data_pb2.GetDatasetRequest(name="prev-ds"), metadata=AUTH, timeout=10).dataset
        assert dataset.manifest_sha256 == manifest_sha
        model = registry.GetModel(trainer_pb2.GetModelRequest(name="prev-model"), metadata=AUTH, timeout=10).model
        assert [v.version for v in model.versions] == [1] and model.versions[0].aliases == ["production"]
        annotated = catalogs.GetAnnotationJob(catalog_pb2.GetAnnotationJobRequest(job_id=annotation),
                                              metadata=AUTH, timeout=10).job
        assert state_name(annotated.state) == "SUCCEEDED"
        served = b"".join(r.chunk for r in catalogs.GetCatalog(catalog_pb2.GetCatalogRequest(job_id=annotation),
                                                                 metadata=AUTH, timeout=30))
        assert served == catalog_xml
        with pytest.raises(grpc.RpcError) as exc:  # the name is taken: the import kept the published dataset
            data.CreateDataset(data_pb2.CreateDatasetRequest(name="prev-ds", sources=[data_pb2.DataSource(
                format=data_pb2.SOURCE_FORMAT_STEAD, waveforms=common_pb2.Location(object_key="incoming/stead/"))]),
                metadata=AUTH, timeout=30)
        assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with closing(Database.from_settings(settings)) as db:
        models = ModelStore(store, db)
        card = models.get("prev-model", "production")
        assert models.weights(card), "the old weights, where the old card put them, pass their sha256"
        assert UsageLedger(db).used("admin") == uploaded.size_bytes
    for key, value in records_before.items():
        assert store.get_bytes(key) == value, f"{key} is left as the previous version wrote it"


def create_job_as(stub, dataset: str, epochs: int) -> str:
    from tests.trainer.conftest import FAST_MAGNITUDE_HP, hyper

    request = trainer_pb2.CreateTrainingJobRequest(dataset=dataset, architecture="convnetquake_ingv",
                                                   hyper_parameters=hyper(**{**FAST_MAGNITUDE_HP, "epochs": epochs}))
    return stub.CreateTrainingJob(request, metadata=AUTH, timeout=30).job.job_id


def wait_for_job_as(stub, job_id: str, predicate, timeout_s: float = 240):
    deadline = time.monotonic() + timeout_s
    while True:
        job = stub.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=job_id), metadata=AUTH, timeout=10).job
        if predicate(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id} stuck in {state_name(job.state)} ({job.epochs_done})"
        time.sleep(0.2)


def progress_as(stub, job_id: str) -> list:
    return list(stub.StreamTrainingProgress(trainer_pb2.StreamTrainingProgressRequest(job_id=job_id),
                                            metadata=AUTH, timeout=300))


def wait_job_as(stub, job_id: str, predicate, timeout_s: float = 240):
    deadline = time.monotonic() + timeout_s
    while True:
        job = stub.GetAnnotationJob(catalog_pb2.GetAnnotationJobRequest(job_id=job_id), metadata=AUTH,
                                    timeout=10).job
        if predicate(job):
            return job
        assert state_name(job.state) not in ("FAILED", "CANCELLED") and time.monotonic() < deadline, (job.state,
                                                                                                     job.error)
        time.sleep(0.2)
