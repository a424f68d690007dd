"""Annotation jobs through the real services (CatalogService in the data service, the gateway's REST) on the
synthetic network in the session stack's SeaweedFS: every bad request refused before any work, REST create,
watch and cancel; (slow) a job whose worker is SIGKILLed mid-way resumes to the same catalog as an
uninterrupted run, the QuakeML reads back with ObsPy through the gateway, and an evaluation's plots."""

from __future__ import annotations

import io
import json
import signal
import time

import grpc
import obspy
import psutil
import pytest

from quakestack.jobs.executor import local_workers
from quakestack.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, inference_pb2, trainer_pb2
from tests.catalog.annotation_helpers import (
    annotation_request,
    catalog_rows,
    magnitude_weights,
    picker_weights,
    publish_archive,
    register,
    rest_body,
    state,
    timestamp,
    wait_job,
)
from tests.gateway.helpers import http

PICKER = "annot-picker-untrained"
MAGNITUDE = "annot-magnitude"


@pytest.fixture(scope="module")
def archive(store, metadata, network) -> dict:
    """The network in the stack's storage, an untrained picker and a magnitude model in its registry."""
    published = publish_archive(store, network, "archives/annot")
    register(store, metadata, PICKER, picker_weights(0))
    register(store, metadata, MAGNITUDE, magnitude_weights())
    inventory = obspy.read_inventory(network.inventory_path)
    inventory = inventory.remove(station="N003")
    buffer = io.BytesIO()
    inventory.write(buffer, format="STATIONXML")
    store.put_bytes("archives/annot/inventory-without-n003.xml", buffer.getvalue())
    return published


@pytest.fixture(scope="module")
def catalogs(data_channel) -> catalog_pb2_grpc.CatalogServiceStub:
    return catalog_pb2_grpc.CatalogServiceStub(data_channel)


def _jobs(stub) -> set[str]:
    return {j.job_id for j in stub.ListAnnotationJobs(catalog_pb2.ListAnnotationJobsRequest(page_size=1000),
                                                      timeout=30).jobs}


BAD = {  # case: (request changes, status code, words in the message)
    "unknown station": (dict(selection=catalog_pb2.StreamSelection(station="ZZZ*", channel="HH?")),
                        grpc.StatusCode.INVALID_ARGUMENT, "station pattern 'ZZZ*' matches nothing"),
    "unknown channel": (dict(selection=catalog_pb2.StreamSelection(channel="BH?")),
                        grpc.StatusCode.INVALID_ARGUMENT, "channel pattern 'BH?' matches nothing"),
    "inverted range": ("inverted", grpc.StatusCode.INVALID_ARGUMENT, "empty or inverted"),
    "ten years and more": (dict(end_time=timestamp(1709335800.0 + 3700 * 86400)), grpc.StatusCode.INVALID_ARGUMENT,
                           "at most 3660 per job"),
    "year 9999": (dict(end_time=timestamp(253402300000.0)), grpc.StatusCode.INVALID_ARGUMENT,
                  "end_time must lie between 1900 and 2200"),
    "parameter of the wrong type": (dict(params={"vp_km_s": "fast"}), grpc.StatusCode.INVALID_ARGUMENT, "vp_km_s"),
    "no start": (dict(start_time=None), grpc.StatusCode.INVALID_ARGUMENT, "start_time and end_time are required"),
    "no coordinates": (dict(inventory=common_pb2.Location(object_key="archives/annot/inventory-without-n003.xml")),
                       grpc.StatusCode.INVALID_ARGUMENT, "no coordinates in the inventory for station(s) XN.N003.00"),
    "no inventory": (dict(inventory=None), grpc.StatusCode.INVALID_ARGUMENT, "inventory is required"),
    "missing inventory": (dict(inventory=common_pb2.Location(object_key="archives/annot/nope.xml")),
                          grpc.StatusCode.NOT_FOUND, "nope.xml"),
    "empty archive": (dict(archive=catalog_pb2.ArchiveSource(sds_prefix="archives/nothing-here")),
                      grpc.StatusCode.INVALID_ARGUMENT, "holds no waveform files"),
    "no archive": (dict(archive=None), grpc.StatusCode.INVALID_ARGUMENT, "archive: give sds_prefix"),
    "local archive outside the allow-list": (dict(archive=catalog_pb2.ArchiveSource(sds_local_path="/etc")),
                                             grpc.StatusCode.PERMISSION_DENIED, "/etc"),
    "picker cannot pick": (dict(picker=trainer_pb2.ModelRef(name=MAGNITUDE)), grpc.StatusCode.INVALID_ARGUMENT,
                           "is a magnitude model: it cannot pick or detect"),
    "unknown picker": (dict(picker=trainer_pb2.ModelRef(name="no-such-picker")), grpc.StatusCode.NOT_FOUND,
                       "'no-such-picker' is not registered"),
    "no picker": (dict(picker=None), grpc.StatusCode.INVALID_ARGUMENT, "picker is required"),
    "picker as magnitude model": (dict(magnitude_model=trainer_pb2.ModelRef(name=PICKER)),
                                  grpc.StatusCode.INVALID_ARGUMENT, "is a picking model, not a magnitude model"),
    "velocity out of range": (dict(params={"vp_km_s": 50}), grpc.StatusCode.INVALID_ARGUMENT, "vp_km_s"),
    "vs above vp": (dict(params={"vp_km_s": 4.0, "vs_km_s": 5.0}), grpc.StatusCode.INVALID_ARGUMENT,
                    "must be below vp_km_s"),
    "unknown parameter": (dict(params={"velocity": 5}), grpc.StatusCode.INVALID_ARGUMENT, "velocity"),
    "threshold": (dict(pick_threshold=1.5), grpc.StatusCode.INVALID_ARGUMENT, "pick_threshold must be in (0, 1)"),
    "workers": (dict(workers=-2), grpc.StatusCode.INVALID_ARGUMENT, "workers must be in [1, 256]"),
    "margin": (dict(margin_s=1e6), grpc.StatusCode.INVALID_ARGUMENT, "margin_s must be in"),
    "device": (dict(device="gpu"), grpc.StatusCode.INVALID_ARGUMENT, "device must be auto, cpu, cuda or cuda:N"),
    "input policy": (dict(input_policy=inference_pb2.InputPolicy(missing_components="guess")),
                     grpc.StatusCode.INVALID_ARGUMENT, "input_policy.missing_components must be one of"),
    "absent gpu": (dict(device="cuda:7"), grpc.StatusCode.FAILED_PRECONDITION, "cuda:7"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_requests_are_refused_before_any_work(archive, catalogs, case) -> None:
    changes, code, words = BAD[case]
    if changes == "inverted":
        changes = dict(start_time=timestamp(archive["end"]), end_time=timestamp(archive["start"]))
    before = _jobs(catalogs)
    with pytest.raises(grpc.RpcError) as excinfo:
        catalogs.CreateAnnotationJob(annotation_request(archive, PICKER, **changes), timeout=60)
    assert excinfo.value.code() == code, excinfo.value.details()
    assert words in excinfo.value.details()
    assert _jobs(catalogs) == before, "a refused request created a job"


def test_rest_create_watch_and_cancel(stack, archive, catalogs) -> None:
    gateway = stack.endpoints().gateway
    bad = http("POST", gateway + "/v1/annotation-jobs", json.dumps(rest_body(archive, MAGNITUDE)).encode(),
               {"content-type": "application/json"})
    assert bad.status == 400 and "cannot pick or detect" in bad.body.decode(), bad.body
    body = rest_body(archive, PICKER, workers=2, displayName="rest", magnitudeModel={"name": MAGNITUDE},
                     associationParameters={"min_picks": 8})
    reply = http("POST", gateway + "/v1/annotation-jobs", json.dumps(body).encode(),
                 {"content-type": "application/json"})
    assert reply.status == 200, reply.body
    job = reply.json()["job"]
    assert job["state"] in ("JOB_STATE_QUEUED", "JOB_STATE_RUNNING") and job["displayName"] == "rest"
    assert job["picker"] == f"{PICKER}:1" and job["magnitudeModel"] == f"{MAGNITUDE}:1"
    assert job["progress"]["stationDaysTotal"] == "15"
    assert job["missingStationDays"] == ["XN.N005.00.HH.2024.062"]
    got = http("GET", f"{gateway}/v1/annotation-jobs/{job['jobId']}").json()["job"]
    assert got["jobId"] == job["jobId"]
    watch = catalogs.WatchAnnotationJob(catalog_pb2.WatchAnnotationJobRequest(job_id=job["jobId"]), timeout=120)
    first = next(watch)
    assert first.job.job_id == job["jobId"]
    early = http("GET", f"{gateway}/v1/catalogs/{job['jobId']}")
    assert early.status == 400 and "SUCCEEDED" in early.body.decode(), early.body
    cancelled = http("POST", f"{gateway}/v1/annotation-jobs/{job['jobId']}:cancel", b"{}",
                     {"content-type": "application/json"})
    assert cancelled.status == 200, cancelled.body
    states = [state(m.job) for m in watch]
    assert states and states[-1] == "CANCELLED", states
    listed = http("GET", gateway + "/v1/annotation-jobs?state=JOB_STATE_CANCELLED").json()["jobs"]
    assert job["jobId"] in {j["jobId"] for j in listed}
    settings = stack.settings
    assert _wait_gone(settings), "the workers of a cancelled job (rank 0 and its peer) are gone"
    again = http("POST", f"{gateway}/v1/annotation-jobs/{job['jobId']}:cancel", b"{}",
                 {"content-type": "application/json"})
    assert again.status == 400 and "already CANCELLED" in again.body.decode()


def _wait_gone(settings, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        workers = [p for p in local_workers(settings.s3_endpoint, settings.s3_bucket)
                   if "annotation" in _kind_of(p)]
        if not workers:
            return True
        time.sleep(0.2)
    return False


def _kind_of(proc: psutil.Process) -> str:
    """The kind of the job a worker process runs (from its record in the metadata store), '' when unknown."""
    try:
        cmd = proc.cmdline()
        job_id = cmd[cmd.index("--job-id") + 1]
    except (psutil.Error, ValueError, IndexError):
        return ""
    from quakestack.config import load_settings
    from quakestack.metadata.database import Database
    from quakestack.metadata.jobs import JobStore

    try:
        env = proc.environ()
        settings = load_settings({k: v for k, v in env.items() if k.startswith("QUAKESTACK_")})
        db = Database.from_settings(settings)
        try:
            return JobStore(db).get(job_id).record.kind
        finally:
            db.close()
    except Exception:  # noqa: BLE001 - a worker that just exited
        return ""


def test_openapi_has_the_catalog_routes(stack) -> None:
    paths = http("GET", stack.endpoints().gateway + "/openapi.json").json()["paths"]
    for path in ("/v1/annotation-jobs", "/v1/annotation-jobs/{job_id}", "/v1/catalogs/{job_id}",
                 "/v1/catalogs/{job_id}:evaluate"):
        assert any(p.replace("jobId", "job_id") == path for p in paths), (path, sorted(paths))


# -- slow: a trained picker, whole jobs --------------------------------------------------------------
TRAINED = "annot-picker"


@pytest.fixture(scope="module")
def trained(store, metadata, archive) -> str:
    register(store, metadata, TRAINED, picker_weights(8))
    return TRAINED


def _picks_objects(store, job_id: str) -> dict[str, bytes]:
    return {i.key: store.get_bytes(i.key) for i in store.list(f"catalogs/{job_id}/picks/")}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_sigkilled_job_resumes_to_the_same_catalog(stack, store, archive, trained, catalogs, network) -> None:
    settings = stack.settings
    request = annotation_request(archive, trained, workers=2, magnitude_model=trainer_pb2.ModelRef(name=MAGNITUDE))
    job = catalogs.CreateAnnotationJob(request, timeout=60).job
    deadline = time.monotonic() + 300
    while len(store.list(f"catalogs/{job.job_id}/picks/")) < 3:
        assert time.monotonic() < deadline and state(catalogs.GetAnnotationJob(
            catalog_pb2.GetAnnotationJobRequest(job_id=job.job_id), timeout=10).job) in ("QUEUED", "RUNNING")
        time.sleep(0.05)
    workers = local_workers(settings.s3_endpoint, settings.s3_bucket)
    ranks = [p for p in workers if job.job_id in " ".join(p.cmdline())]
    assert len(ranks) == 2, "rank 0 and its peer"
    before = _picks_objects(store, job.job_id)
    assert len(before) < 15, "killed mid-way"
    rank0 = min(ranks, key=lambda p: p.create_time())
    rank0.send_signal(signal.SIGKILL)
    psutil.wait_procs(ranks, timeout=15)
    assert not any(p.is_running() for p in ranks), "the peer dies with rank 0"
    done = wait_job(catalogs, job.job_id, lambda j: state(j) == "SUCCEEDED", 600)
    after = _picks_objects(store, job.job_id)
    assert all(after[k] == v for k, v in before.items()), "finished station-days are kept, not redone"
    assert done.progress.station_days_done == done.progress.station_days_total == 15
    assert done.progress.stage == "done" and done.events > 0 and done.associated_picks > 0
    gateway = stack.endpoints().gateway
    # the same request through REST, uninterrupted, one worker
    body = rest_body(archive, trained, magnitudeModel={"name": MAGNITUDE})
    reply = http("POST", gateway + "/v1/annotation-jobs", json.dumps(body).encode(),
                 {"content-type": "application/json"})
    assert reply.status == 200, reply.body
    other = reply.json()["job"]["jobId"]
    updates = list(catalogs.WatchAnnotationJob(catalog_pb2.WatchAnnotationJobRequest(job_id=other), timeout=600))
    assert state(updates[-1].job) == "SUCCEEDED", updates[-1].job.error
    done_counts = [u.job.progress.station_days_done for u in updates]
    assert done_counts == sorted(done_counts) and done_counts[-1] == 15
    assert any(u.job.progress.stage == "associating" for u in updates)
    assert catalog_rows(store, job.job_id) == catalog_rows(store, other), "same events, same picks"

    # QuakeML through the gateway, read back by ObsPy: the stored events, picks and magnitudes
    quakeml = http("GET", f"{gateway}/v1/catalogs/{job.job_id}")
    assert quakeml.status == 200, quakeml.body[:300]
    catalog = obspy.read_events(io.BytesIO(quakeml.body))
    events, picks = catalog_rows(store, job.job_id)
    assert len(catalog) == len(events) == done.events
    assert sum(len(e.picks) for e in catalog) == len(picks) == done.associated_picks
    assert all(e.magnitudes and e.preferred_magnitude().station_count >= 1 for e in catalog)
    csv = http("GET", f"{gateway}/v1/catalogs/{job.job_id}?format=CATALOG_FILE_FORMAT_PICKS_CSV")
    assert csv.status == 200 and csv.body.startswith(b"event_id,station")
    streamed = b"".join(m.chunk for m in catalogs.GetCatalog(catalog_pb2.GetCatalogRequest(
        job_id=job.job_id, format=catalog_pb2.CATALOG_FILE_FORMAT_EVENTS_CSV), timeout=30))
    assert streamed == store.get_bytes(f"catalogs/{job.job_id}/events.csv")

    # evaluation against the truth, with its plots
    result = catalogs.EvaluateCatalog(catalog_pb2.EvaluateCatalogRequest(
        job_id=job.job_id, reference=common_pb2.Location(object_key=archive["truth_key"])), timeout=120)
    print("annotation job catalog against the truth:", result)
    assert result.reference_events == len(network.events) and result.predicted_events == done.events
    assert result.recall >= 0.9 and result.precision >= 0.9, result
    assert sorted(k.rsplit("/", 1)[-1] for k in result.artifact_keys) == ["event_map.png", "magnitudes.png"]
    path = result.artifact_keys[0].split(f"catalogs/{job.job_id}/", 1)[1]
    png = http("GET", f"{gateway}/v1/catalogs/{job.job_id}/artifacts/{path}")
    assert png.status == 200 and png.body.startswith(b"\x89PNG"), png.status
    outside = http("GET", f"{gateway}/v1/catalogs/{job.job_id}/artifacts/picks/x.json")
    assert outside.status == 400, outside.status
