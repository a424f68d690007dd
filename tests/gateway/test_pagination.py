"""AIP-158 pagination of every List RPC, through the real services over gRPC and through the gateway's REST.

Each List RPC is walked page by page (a small page_size, following next_page_token) and must return
every item exactly once, the same items as one large page; bad tokens and sizes are INVALID_ARGUMENT
(400 over REST). The items are real: published datasets, failed dataset jobs, registered and loaded
models, a trained job's checkpoints.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from quakestack.model_store import ModelStore
from quakestack.models.zoo import list_architectures
from quakestack.pagination import all_pages
from quakestack.stack import Stack
from quakestack.storage import ObjectStore
from quakestack.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    common_pb2,
    data_pb2,
    data_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    trainer_pb2,
    trainer_pb2_grpc,
)
from tests.datasets import publish_synthetic_dataset
from tests.gateway.helpers import http
from tests.helpers import wait_for
from tests.inference.helpers import briefly_trained, register

N = 5          # items of each kind this module creates
PAGE = 2       # so every walk takes several pages and ends on a short one
HP = {"n_samples": 3000, "learning_rate": 0.005, "batch_size": 16}


@dataclass
class Lister:
    """One List RPC: how to call it over gRPC and REST, its repeated field, an item's identity."""

    name: str
    call: Callable[..., Any]
    request: Callable[..., Any]
    path: str
    field: str
    ident: Callable[[Any], Any]


@pytest.fixture(scope="module")
def created(stack: Stack, store: ObjectStore, metadata, tmp_path_factory: pytest.TempPathFactory, data_channel,
            trainer_channel, inference_channel) -> Iterator[dict[str, Any]]:
    """N datasets, N failed dataset jobs, N models (3 loaded), one 3-epoch training job and N-1 cancelled ones."""
    root = tmp_path_factory.mktemp("page-datasets")
    datasets = [f"page-ds-{i}" for i in range(N)]
    for name in datasets:
        publish_synthetic_dataset(store, metadata, name, root, n_events=40, n_noise=4)
    data = data_pb2_grpc.DataServiceStub(data_channel)
    store.put_bytes("raw/page-test/bad.hdf5", b"not an hdf5 file")
    store.put_bytes("raw/page-test/bad.csv", b"not,a,stead,csv\n")
    source = data_pb2.DataSource(format=data_pb2.SOURCE_FORMAT_STEAD,
                                 waveforms=common_pb2.Location(object_key="raw/page-test/"))
    dataset_jobs = [data.CreateDataset(data_pb2.CreateDatasetRequest(name=f"page-bad-{i}", sources=[source]),
                                       timeout=30).job.job_id for i in range(N)]
    registry = ModelStore(store, metadata)
    model = briefly_trained("convnetquake_ingv", {})
    models = [f"page-model-{i}" for i in range(N)]
    for name in models:
        register(registry, name, "convnetquake_ingv", {}, model=model)
    inference = inference_pb2_grpc.InferenceServiceStub(inference_channel)
    loaded = models[:3]
    for name in loaded:
        inference.LoadModel(inference_pb2.LoadModelRequest(name=name, version="1", device="cpu"), timeout=60)
    trainer = trainer_pb2_grpc.TrainerServiceStub(trainer_channel)
    hp = struct_pb2.Struct()
    hp.update({**HP, "epochs": 3})
    trained = trainer.CreateTrainingJob(trainer_pb2.CreateTrainingJobRequest(
        dataset=datasets[0], architecture="convnetquake_ingv", hyper_parameters=hp), timeout=30).job.job_id
    hp.update({"epochs": 50})
    cancelled = []
    for _ in range(N - 1):  # queued behind the trained one (one CPU slot), cancelled before they start
        job = trainer.CreateTrainingJob(trainer_pb2.CreateTrainingJobRequest(
            dataset=datasets[0], architecture="convnetquake_ingv", hyper_parameters=hp), timeout=30).job
        trainer.CancelTrainingJob(trainer_pb2.CancelTrainingJobRequest(job_id=job.job_id), timeout=30)
        cancelled.append(job.job_id)

    def succeeded() -> bool:
        job = trainer.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=trained), timeout=10).job
        assert common_pb2.JobState.Name(job.state) not in ("JOB_STATE_FAILED", "JOB_STATE_CANCELLED"), job
        return job.state == common_pb2.JOB_STATE_SUCCEEDED

    assert wait_for(succeeded, 240, 0.5), "the 3-epoch job did not finish"

    def dataset_jobs_ended() -> bool:
        jobs = {j.job_id: j for j in all_pages(data.ListDatasetJobs, data_pb2.ListDatasetJobsRequest(), "jobs")}
        return all(jobs[j].state == common_pb2.JOB_STATE_FAILED for j in dataset_jobs)

    assert wait_for(dataset_jobs_ended, 60, 0.2)
    annotation_jobs = _cancelled_annotation_jobs(store, metadata, root, data_channel)
    yield {"datasets": datasets, "dataset_jobs": dataset_jobs, "models": models, "loaded": loaded,
           "trained": trained, "training_jobs": [trained, *cancelled], "annotation_jobs": annotation_jobs}
    for name in loaded:
        inference.UnloadModel(inference_pb2.UnloadModelRequest(name=name), timeout=30)


def _cancelled_annotation_jobs(store: ObjectStore, metadata, root, data_channel) -> list[str]:
    """N annotation jobs over a small synthetic network (an untrained picker), each cancelled at once."""
    from tests.catalog.annotation_helpers import cancelled_job, small_archive

    archive = small_archive(store, metadata, root, "archives/page-test", "page-picker")
    catalogs = catalog_pb2_grpc.CatalogServiceStub(data_channel)
    return [cancelled_job(catalogs, archive, "page-picker") for _ in range(N)]


@pytest.fixture(scope="module")
def lists(created: dict[str, Any], data_channel, trainer_channel, inference_channel) -> dict[str, Lister]:
    """Every List RPC by name."""
    data = data_pb2_grpc.DataServiceStub(data_channel)
    trainer = trainer_pb2_grpc.TrainerServiceStub(trainer_channel)
    models = trainer_pb2_grpc.ModelRegistryServiceStub(trainer_channel)
    inference = inference_pb2_grpc.InferenceServiceStub(inference_channel)
    catalogs = catalog_pb2_grpc.CatalogServiceStub(data_channel)
    job = created["trained"]
    return {lister.name: lister for lister in [
        Lister("ListDatasets", data.ListDatasets, data_pb2.ListDatasetsRequest, "/v1/datasets", "datasets",
               lambda d: d["name"] if isinstance(d, dict) else d.name),
        Lister("ListDatasetJobs", data.ListDatasetJobs, data_pb2.ListDatasetJobsRequest, "/v1/dataset-jobs", "jobs",
               lambda j: j["jobId"] if isinstance(j, dict) else j.job_id),
        Lister("ListArchitectures", trainer.ListArchitectures, trainer_pb2.ListArchitecturesRequest,
               "/v1/architectures", "architectures", lambda a: a["name"] if isinstance(a, dict) else a.name),
        Lister("ListTrainingJobs", trainer.ListTrainingJobs, trainer_pb2.ListTrainingJobsRequest, "/v1/training-jobs",
               "jobs", lambda j: j["jobId"] if isinstance(j, dict) else j.job_id),
        Lister("ListCheckpoints", trainer.ListCheckpoints, lambda **kw: trainer_pb2.ListCheckpointsRequest(
            job_id=job, **kw), f"/v1/training-jobs/{job}/checkpoints", "checkpoints",
            lambda c: c["epoch"] if isinstance(c, dict) else c.epoch),
        Lister("ListModels", models.ListModels, trainer_pb2.ListModelsRequest, "/v1/models", "models",
               lambda m: m["name"] if isinstance(m, dict) else m.name),
        Lister("ListLoadedModels", inference.ListLoadedModels, inference_pb2.ListLoadedModelsRequest,
               "/v1/loaded-models", "models", lambda m: m["name"] if isinstance(m, dict) else m.name),
        Lister("ListAnnotationJobs", catalogs.ListAnnotationJobs, catalog_pb2.ListAnnotationJobsRequest,
               "/v1/annotation-jobs", "jobs", lambda j: j["jobId"] if isinstance(j, dict) else j.job_id),
    ]}


def walk_grpc(lister: Lister, page_size: int = PAGE) -> tuple[list[Any], int]:
    """Every item, page by page; returns the identities in order and the number of pages."""
    seen, token, pages = [], "", 0
    while True:
        response = lister.call(lister.request(page_size=page_size, page_token=token), timeout=30)
        items = list(getattr(response, lister.field))
        assert len(items) <= page_size
        seen += [lister.ident(i) for i in items]
        pages += 1
        token = response.next_page_token
        if not token:
            return seen, pages
        assert pages < 1000


def walk_rest(stack: Stack, lister: Lister, page_size: int = PAGE) -> tuple[list[Any], int]:
    seen, token, pages = [], "", 0
    while True:
        query = {"pageSize": str(page_size), **({"pageToken": token} if token else {})}
        reply = http("GET", stack.endpoints().gateway + lister.path + "?" + urllib.parse.urlencode(query))
        assert reply.status == 200, reply.body
        body = reply.json()
        items = body.get(lister.field, [])
        assert len(items) <= page_size
        seen += [lister.ident(i) for i in items]
        pages += 1
        token = body.get("nextPageToken", "")
        if not token:
            return seen, pages
        assert pages < 1000


EXPECTED = {"ListDatasets": "datasets", "ListDatasetJobs": "dataset_jobs", "ListTrainingJobs": "training_jobs",
            "ListModels": "models", "ListLoadedModels": "loaded", "ListAnnotationJobs": "annotation_jobs"}


@pytest.mark.timeout(420)
def test_every_list_rpc_walks_all_pages_once_over_grpc_and_rest(stack: Stack, created: dict[str, Any],
                                                                 lists: dict[str, Lister]) -> None:
    assert set(lists) == _list_rpcs(), "a List RPC without a pagination test"
    for lister in lists.values():
        whole = [lister.ident(i) for i in getattr(lister.call(lister.request(page_size=1000), timeout=30),
                                                  lister.field)]
        by_grpc, pages = walk_grpc(lister)
        assert by_grpc == whole, lister.name                      # same items, same order, none twice
        assert len(set(by_grpc)) == len(by_grpc), lister.name
        assert pages >= 2, f"{lister.name}: {len(whole)} items fit one page of {PAGE}"
        by_rest, _ = walk_rest(stack, lister)
        assert by_rest == whole, lister.name
        if lister.name in EXPECTED:
            assert set(created[EXPECTED[lister.name]]) <= set(whole), lister.name
    assert walk_grpc(lists["ListCheckpoints"])[0] == [1, 2, 3]
    assert walk_grpc(lists["ListArchitectures"], 3)[0] == sorted(a.name for a in list_architectures())


def _list_rpcs() -> set[str]:
    from quakestack.v1 import catalog_pb2 as c
    from quakestack.v1 import data_pb2 as d
    from quakestack.v1 import inference_pb2 as i
    from quakestack.v1 import trainer_pb2 as t

    return {m.name for f in (d, i, t, c) for s in f.DESCRIPTOR.services_by_name.values() for m in s.methods
            if m.name.startswith("List")}


def test_every_list_rpc_has_aip158_fields() -> None:
    from quakestack.v1 import catalog_pb2 as c
    from quakestack.v1 import data_pb2 as d
    from quakestack.v1 import inference_pb2 as i
    from quakestack.v1 import trainer_pb2 as t

    for f in (d, i, t, c):
        for service in f.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                if method.name.startswith("List"):
                    assert {"page_size", "page_token"} <= set(method.input_type.fields_by_name), method.full_name
                    assert "next_page_token" in method.output_type.fields_by_name, method.full_name


def test_an_item_added_between_pages_repeats_nothing(store: ObjectStore, metadata, created: dict[str, Any],
                                                     lists: dict[str, Lister]) -> None:
    lister = lists["ListModels"]
    first = lister.call(lister.request(page_size=PAGE), timeout=30)
    # a name that sorts before everything on the first page (other tests' models share this stack, so the
    # first page is whatever sorts first): it does not move the cursor
    early = "0-page-new"
    assert early < first.models[0].name
    model = briefly_trained("convnetquake_ingv", {})
    register(ModelStore(store, metadata), early, "convnetquake_ingv", {}, model=model)
    seen = [m.name for m in first.models]
    token = first.next_page_token
    while token:
        response = lister.call(lister.request(page_size=PAGE, page_token=token), timeout=30)
        seen += [m.name for m in response.models]
        token = response.next_page_token
    assert len(seen) == len(set(seen))
    assert set(created["models"]) <= set(seen)
    assert early not in seen  # it sorts before the cursor: the next full walk shows it


def _code(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as excinfo:
        call()
    return excinfo.value.code(), excinfo.value.details()


def test_bad_tokens_and_sizes_are_invalid_argument(stack: Stack, created: dict[str, Any],
                                                   lists: dict[str, Lister]) -> None:
    by_name = lists
    models, datasets, jobs = by_name["ListModels"], by_name["ListDatasets"], by_name["ListTrainingJobs"]
    token = models.call(models.request(page_size=1), timeout=30).next_page_token
    assert token
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    tampered = base64.urlsafe_b64encode(raw[:-9] + bytes([raw[-9] ^ 1]) + raw[-8:]).decode().rstrip("=")
    for lister, bad in [(models, "not-a-token"), (models, "!!!"), (models, tampered), (datasets, token)]:
        code, message = _code(lambda li=lister, b=bad: li.call(li.request(page_token=b), timeout=30))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (lister.name, bad)
        assert "page_token" in message
    code, message = _code(lambda: models.call(models.request(page_size=-1), timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_size" in message and "1000" in message
    # the token belongs to its query: another state filter (or another job's checkpoints) is refused
    running = jobs.call(jobs.request(page_size=1), timeout=30).next_page_token
    assert running
    code, message = _code(lambda: jobs.call(jobs.request(page_token=running, state=common_pb2.JOB_STATE_CANCELLED),
                                            timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "other parameters" in message
    checkpoints = by_name["ListCheckpoints"]
    cp_token = checkpoints.call(checkpoints.request(page_size=1), timeout=30).next_page_token
    other_job = created["training_jobs"][1]
    code, _ = _code(lambda: checkpoints.call(trainer_pb2.ListCheckpointsRequest(job_id=other_job, page_token=cp_token),
                                             timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    # above the maximum counts as the maximum: every model on one page, no token
    reply = models.call(models.request(page_size=5000), timeout=30)
    assert not reply.next_page_token and len(reply.models) >= N
    # REST: the same answers, 400 with the message
    base = stack.endpoints().gateway
    reply = http("GET", f"{base}/v1/models?pageToken=not-a-token")
    assert reply.status == 400 and reply.json()["code"] == "INVALID_ARGUMENT", reply.body
    assert "page_token" in reply.json()["message"]
    reply = http("GET", f"{base}/v1/datasets?page_size=-3")
    assert reply.status == 400 and "page_size" in reply.json()["message"]
    reply = http("GET", f"{base}/v1/training-jobs?pageToken={urllib.parse.quote(running)}&state=JOB_STATE_CANCELLED")
    assert reply.status == 400, reply.body


def test_clients_follow_pages(lists: dict[str, Lister]) -> None:
    """all_pages (what the CLI lists with) returns what a page-by-page walk returns."""
    lister = lists["ListModels"]
    names = [m.name for m in all_pages(lister.call, lister.request(), "models", timeout=30)]
    assert names == walk_grpc(lister)[0]
