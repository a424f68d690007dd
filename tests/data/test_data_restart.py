"""Dataset jobs under faults, with real processes on real storage: a SIGKILLed data service re-attaches
to its still-running worker (every shard rendered once), a SIGKILLed worker is rescheduled and the
job succeeds with the same bytes, and two data-service replicas on one bucket run every job once.

Each test runs its own data service process(es) on its own bucket, so nothing touches the session
stack's jobs.
"""

from __future__ import annotations

import signal
import threading
import uuid
from collections import Counter
from contextlib import closing
from pathlib import Path

import grpc
import psutil
import pytest

from quakestack.client import channel, health_status
from quakestack.data.synthetic import write_stead
from quakestack.jobs.executor import local_workers, stop_local_workers
from quakestack.metadata.database import Database
from quakestack.stack import Stack, with_free_ports
from quakestack.storage import ObjectStore
from quakestack.v1 import common_pb2, data_pb2, data_pb2_grpc
from tests.helpers import wait_for
from tests.trainer.conftest import stored_events

D = data_pb2
FAST_RUNTIME = dict(jobs_lease_ttl_s=3.0, jobs_lost_after_s=6.0, jobs_heartbeat_s=0.5, health_interval_s=0.3)
SLOW = D.Preprocessing(detrend=True, taper_fraction=0.05, freqmin_hz=1, freqmax_hz=20)


def _data_service(settings, state_dir: Path) -> Stack:
    own = Stack(settings, state_dir=state_dir)
    own.log_dir.mkdir(parents=True, exist_ok=True)
    own.start_process("data")
    own.wait_healthy(60, names=("data",))
    return own


@pytest.fixture
def bucket_settings(stack, tmp_path, request, own_database_url):
    """A bucket and a metadata database of the test's own (each test runs on SQLite and on PostgreSQL)."""
    bucket = "dsjobs-" + request.node.originalname.replace("_", "-")[5:30].strip("-") + "-" + uuid.uuid4().hex[:4]
    settings = with_free_ports(stack.settings).replace(s3_bucket=bucket, data_workers=1, cache_dir=str(tmp_path / "c"),
                                                       database_url=own_database_url, **FAST_RUNTIME)
    ObjectStore.from_settings(settings).ensure_bucket()
    yield settings
    stop_local_workers(settings.s3_endpoint, settings.s3_bucket)


@pytest.fixture
def own_data(bucket_settings, tmp_path):
    own = _data_service(bucket_settings, tmp_path / "own")
    yield own
    own.stop()


def _source(store: ObjectStore, tmp_path: Path, n_events: int, n_noise: int, seed: int) -> str:
    ((h5, csv_path),) = write_stead(str(tmp_path / f"src-{seed}-{n_events}"), n_events=n_events, n_noise=n_noise,
                                    seed=seed)
    prefix = f"incoming/{uuid.uuid4().hex[:8]}"
    for path in (h5, csv_path):
        store.put_file(f"{prefix}/{Path(path).name}", path)
    return prefix


def _request(name: str, prefix: str, **kw) -> D.CreateDatasetRequest:
    source = D.DataSource(format=D.SOURCE_FORMAT_STEAD, waveforms=common_pb2.Location(object_key=prefix))
    return D.CreateDatasetRequest(name=name, sources=[source], seed=3, window=D.WindowSpec(include_noise=True), **kw)


def _create(addr: str, request: D.CreateDatasetRequest) -> str:
    with channel(addr) as ch:
        return data_pb2_grpc.DataServiceStub(ch).CreateDataset(request, timeout=30).job.job_id


def _finished(addr: str, job_id: str, timeout_s: float = 240) -> D.DatasetJob:
    with channel(addr) as ch:
        stub = data_pb2_grpc.DataServiceStub(ch)

        def ended() -> bool:
            try:
                state = stub.GetDatasetJob(D.GetDatasetJobRequest(job_id=job_id), timeout=5).job.state
            except Exception:  # noqa: BLE001 - the service may be restarting
                return False
            return common_pb2.JobState.Name(state) in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED",
                                                      "JOB_STATE_CANCELLED")

        assert wait_for(ended, timeout_s, 0.2), f"job {job_id} did not end"
        return stub.GetDatasetJob(D.GetDatasetJobRequest(job_id=job_id), timeout=5).job


def _events(settings, job_id: str) -> list[dict]:
    with closing(Database.from_settings(settings)) as db:
        return stored_events(db, job_id)


def _shard_events(settings, job_id: str) -> list[dict]:
    return [e for e in _events(settings, job_id) if e["type"] == "progress" and e.get("shard")]


def _attempts(settings, job_id: str) -> Counter:
    """How many times a worker started for the job (RUNNING events, by attempt)."""
    return Counter(e.get("attempt") for e in _events(settings, job_id)
                   if e["type"] == "state" and e["state"] == "RUNNING")


def _worker_tree(settings) -> list[psutil.Process]:
    """The job worker and every process under it (forkserver, render processes)."""
    workers = local_workers(settings.s3_endpoint, settings.s3_bucket)
    return [p for w in workers for p in (w, *w.children(recursive=True))]


def _stored_shards_match(store: ObjectStore, name: str) -> list[dict]:
    manifest = store.get_json(f"datasets/{name}/manifest.json")
    for shard in manifest["shards"]:
        for f in shard["files"].values():
            assert store.stat(f"datasets/{name}/{f['key']}").sha256 == f["sha256"]
    return manifest["shards"]


def _rendering(own: Stack, tmp_path: Path, name: str, n_events: int, seed: int,
               shards: int = 3) -> tuple[ObjectStore, str, list[psutil.Process], str]:
    """A slow job of `name` with `shards` shards published: (store, job id, the worker's process tree,
    the source's prefix)."""
    store = ObjectStore.from_settings(own.settings)
    prefix = _source(store, tmp_path, n_events=n_events, n_noise=n_events // 5, seed=seed)
    job_id = _create(own.settings.data_addr, _request(name, prefix, shard_size=6, preprocessing=SLOW))
    assert wait_for(lambda: len(_shard_events(own.settings, job_id)) >= shards, 120, 0.1), own.log_tail("data")
    return store, job_id, _worker_tree(own.settings), prefix


def test_sigkill_of_the_data_service_reattaches_to_the_running_worker(own_data, tmp_path) -> None:
    settings = own_data.settings
    store, job_id, tree, _ = _rendering(own_data, tmp_path, "reattached", n_events=400, seed=9)
    assert len(tree) >= 3, tree  # the worker, its forkserver and a render process
    service = own_data.processes.pop("data")
    service.send_signal(signal.SIGKILL)
    service.wait(10)
    assert all(p.is_running() for p in tree), "the worker and its renderers survive their service"
    renderers = tree[1:]  # paused while the service restarts, so that the job cannot outrun it on a fast
    for p in renderers:   # runner (CI once finished all 80 shards first); the worker keeps its heartbeat
        p.suspend()
    try:
        own_data.start_process("data")
        own_data.wait_healthy(60, names=("data",))
        assert len(_shard_events(settings, job_id)) < 70, "the job outran the restart: nothing to re-attach to"
    finally:
        for p in renderers:
            p.resume()
    final = _finished(settings.data_addr, job_id)
    assert final.state == common_pb2.JOB_STATE_SUCCEEDED, final.error
    keys = [e["shard"]["key"] for e in _shard_events(settings, job_id)]
    shards = _stored_shards_match(store, "reattached")
    assert sorted(keys) == sorted(s["key"] for s in shards) and len(shards) >= 70, "every shard rendered once"
    assert _attempts(settings, job_id) == Counter({1: 1}), "one worker, never restarted"
    assert "re-attached to a running worker" in (own_data.log_dir / "data.log").read_text()
    _, alive = psutil.wait_procs(tree, timeout=15)
    assert not alive, f"left behind: {[p.cmdline()[:3] for p in alive]}"


def test_sigkill_of_the_worker_is_rescheduled_and_succeeds_with_the_same_bytes(own_data, tmp_path) -> None:
    settings = own_data.settings
    store, job_id, tree, prefix = _rendering(own_data, tmp_path, "retried", n_events=100, seed=4)
    tree[0].send_signal(signal.SIGKILL)  # the worker alone: its forkserver and renderers must die with it
    _, alive = psutil.wait_procs(tree, timeout=15)
    assert not alive, f"the killed worker left {[p.cmdline()[:3] for p in alive]} running"
    final = _finished(settings.data_addr, job_id)
    assert final.state == common_pb2.JOB_STATE_SUCCEEDED, final.error
    history = [e for e in _events(settings, job_id) if e["type"] == "state"]
    assert any("retry 1 of 2" in e.get("message", "") for e in history), history
    assert sorted(_attempts(settings, job_id)) == [1, 2]
    events = _shard_events(settings, job_id)
    keys = [e["shard"]["key"] for e in events]
    shards = _stored_shards_match(store, "retried")
    assert sorted(keys) == sorted(s["key"] for s in shards), "each shard published once"
    assert Counter(e["attempt"] for e in events)[1] >= 3, "the retry reused the shards already published"
    reference = _create(settings.data_addr, _request("reference", prefix, shard_size=6, preprocessing=SLOW))
    assert _finished(settings.data_addr, reference).state == common_pb2.JOB_STATE_SUCCEEDED
    assert [s["files"] for s in shards] == [s["files"] for s in _stored_shards_match(store, "reference")], \
        "the same bytes as an unbroken run"


def _race_create(addrs: list[str], request: D.CreateDatasetRequest) -> list[tuple[str, str]]:
    """CreateDataset of one request through every address at once: ("ok", job id) or (status code, details)."""
    barrier = threading.Barrier(len(addrs))
    out: list = [None] * len(addrs)

    def one(i: int) -> None:
        with channel(addrs[i]) as ch:
            stub = data_pb2_grpc.DataServiceStub(ch)
            barrier.wait()
            try:
                out[i] = ("ok", stub.CreateDataset(request, timeout=30).job.job_id)
            except grpc.RpcError as exc:
                out[i] = (exc.code().name, exc.details())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(addrs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


@pytest.mark.slow  # ~20 s a backend: keeps the default run under 20 min
def test_two_replicas_on_one_bucket_run_every_job_once(bucket_settings, tmp_path) -> None:
    replicas = [_data_service(with_free_ports(bucket_settings), tmp_path / f"r{i}") for i in range(2)]
    settings = bucket_settings
    store = ObjectStore.from_settings(bucket_settings)
    try:
        prefix = _source(store, tmp_path, n_events=16, n_noise=4, seed=2)
        ids = [_create(replicas[i % 2].settings.data_addr, _request(f"replicated-{i}", prefix, shard_size=5))
               for i in range(6)]
        for i, job_id in enumerate(ids):
            final = _finished(replicas[(i + 1) % 2].settings.data_addr, job_id)  # asked of the other replica
            assert final.state == common_pb2.JOB_STATE_SUCCEEDED, final.error
        for replica in replicas:
            with channel(replica.settings.data_addr) as ch:
                assert health_status(ch) == "SERVING"
                listed = data_pb2_grpc.DataServiceStub(ch).ListDatasetJobs(D.ListDatasetJobsRequest()).jobs
                assert {j.job_id for j in listed} >= set(ids)
        for job_id in ids:
            assert _attempts(settings, job_id) == Counter({1: 1}), job_id
            keys = [e["shard"]["key"] for e in _shard_events(settings, job_id)]
            name = f"replicated-{ids.index(job_id)}"
            assert sorted(keys) == sorted(s["key"] for s in _stored_shards_match(store, name)), (job_id, keys)
        for trial in range(3):  # one name asked of both replicas at the same instant: one job, one refusal
            outcomes = _race_create([r.settings.data_addr for r in replicas], _request(f"raced-{trial}", prefix))
            assert sorted(o[0] for o in outcomes) == ["ALREADY_EXISTS", "ok"], outcomes
            winner = next(o[1] for o in outcomes if o[0] == "ok")
            assert _finished(replicas[0].settings.data_addr, winner).state == common_pb2.JOB_STATE_SUCCEEDED
    finally:
        for replica in replicas:
            replica.stop()


@pytest.mark.slow  # ~20 s on each backend: the slow set keeps the default run under 20 minutes
def test_cancel_of_a_running_job_keeps_its_shards_and_writes_no_manifest(own_data, tmp_path) -> None:
    settings = own_data.settings
    store, job_id, tree, _ = _rendering(own_data, tmp_path, "cancelled", n_events=200, seed=6, shards=2)
    with channel(settings.data_addr) as ch:
        job = data_pb2_grpc.DataServiceStub(ch).CancelDatasetJob(D.CancelDatasetJobRequest(job_id=job_id),
                                                                 timeout=30).job
    assert job.state == common_pb2.JOB_STATE_CANCELLED
    _, alive = psutil.wait_procs(tree, timeout=15)
    assert not alive, f"the cancelled job left {[p.cmdline()[:3] for p in alive]} running"
    assert not store.exists("datasets/cancelled/manifest.json")
    for event in _shard_events(settings, job_id):  # what was published before the cancel stays
        for name, sha in event["shard"]["sha256"].items():
            assert store.stat(f"datasets/cancelled/{event['shard']['key']}/{name}").sha256 == sha
