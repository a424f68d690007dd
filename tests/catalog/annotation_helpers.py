"""Helpers of the annotation-job tests: an archive and models in a stack's storage, requests, waiting."""

from __future__ import annotations

import io
import time

import torch
from google.protobuf import struct_pb2, timestamp_pb2
from obspy import UTCDateTime

from quakestack.data.network import SyntheticNetwork, picker_windows
from quakestack.metadata.database import Database
from quakestack.model_store import ModelStore, model_card
from quakestack.models.zoo import build_model, get_architecture, resolve_training_hparams
from quakestack.storage import ObjectStore
from quakestack.training.loop import FixedEpochs, run_training, seed_everything
from quakestack.v1 import catalog_pb2, common_pb2, trainer_pb2
from tests.catalog.test_archive import _upload_tree
from tests.catalog.test_pipeline import PICKER_HP, _split

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "STOPPED"}


def publish_archive(store: ObjectStore, network: SyntheticNetwork, prefix: str) -> dict[str, str]:
    """The network's SDS tree, StationXML and truth catalog under `prefix` in the store."""
    _upload_tree(store, network.sds_root, f"{prefix}/sds")
    store.put_file(f"{prefix}/inventory.xml", network.inventory_path)
    store.put_file(f"{prefix}/truth.xml", network.catalog_path)
    return {"sds_prefix": f"{prefix}/sds", "inventory_key": f"{prefix}/inventory.xml",
            "truth_key": f"{prefix}/truth.xml", "start": network.start.timestamp, "end": network.end.timestamp}


def small_archive(store: ObjectStore, db: Database, root, prefix: str, picker: str) -> dict[str, str]:
    """A 10-minute synthetic network published under `prefix`, and an untrained picker named `picker`."""
    from quakestack.data.network import write_network

    start = UTCDateTime(2024, 3, 1, 12)
    network = write_network(str(root / prefix.replace("/", "-")), seed=2, start=start, end=start + 600, n_events=1)
    archive = publish_archive(store, network, prefix)
    register(store, db, picker, picker_weights(0))
    return archive


def cancelled_job(stub, archive: dict, picker: str) -> str:
    """An annotation job created and cancelled at once; its id."""
    job = stub.CreateAnnotationJob(annotation_request(archive, picker), timeout=60).job
    stub.CancelAnnotationJob(catalog_pb2.CancelAnnotationJobRequest(job_id=job.job_id), timeout=30)
    return job.job_id


def picker_weights(epochs: int = 0) -> tuple[bytes, dict]:
    """A PhaseNet-style picker's state_dict (trained in-process for `epochs`, untrained with 0) and its card."""
    seed_everything(0)
    model, hp, _ = build_model("phasenet", PICKER_HP)
    if epochs:
        run_training(model=model, spec=get_architecture("phasenet"), arch_hparams=hp,
                     hp=resolve_training_hparams({"learning_rate": 2e-3, "batch_size": 16}),
                     train=_split(*picker_windows(1, 768, PICKER_HP["n_samples"])),
                     val=_split(*picker_windows(2, 128, PICKER_HP["n_samples"])), device=torch.device("cpu"),
                     control=FixedEpochs(epochs), emit=lambda _e: None, save_checkpoint=lambda *_: None)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    card = model_card("phasenet", hp, dataset="synthetic-network", source={"job_id": "in-process", "epoch": epochs})
    return buffer.getvalue(), card


def magnitude_weights() -> tuple[bytes, dict]:
    """An (untrained) station magnitude model on 10 s windows with P at 2 s."""
    seed_everything(0)
    model, hp, _ = build_model("convnetquake_ingv", {"n_samples": 1000})
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue(), model_card("convnetquake_ingv", hp, dataset="synthetic-network", p_offset_s=2.0,
                                         source={"job_id": "in-process", "epoch": 0})


def register(store: ObjectStore, db: Database, name: str, weights_and_card: tuple[bytes, dict]) -> dict:
    weights, card = weights_and_card
    return ModelStore(store, db).register(name, weights, card)


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(round(seconds * 1e9)))
    return ts


def annotation_request(archive: dict, picker: str, /, **changes) -> catalog_pb2.CreateAnnotationJobRequest:
    """A valid request over the whole archive; `changes` replace fields (None clears one)."""
    params = struct_pb2.Struct()
    params.update(changes.pop("params", {}))
    fields = dict(archive=catalog_pb2.ArchiveSource(sds_prefix=archive["sds_prefix"]),
                  inventory=common_pb2.Location(object_key=archive["inventory_key"]),
                  selection=catalog_pb2.StreamSelection(channel="HH?"), start_time=timestamp(archive["start"]),
                  end_time=timestamp(archive["end"]), picker=trainer_pb2.ModelRef(name=picker),
                  association_parameters=params)
    fields.update(changes)
    return catalog_pb2.CreateAnnotationJobRequest(**{k: v for k, v in fields.items() if v is not None})


def rest_body(archive: dict, picker: str, **extra) -> dict:
    """The same request as REST JSON (protobuf's JSON mapping)."""
    return {"archive": {"sdsPrefix": archive["sds_prefix"]}, "inventory": {"objectKey": archive["inventory_key"]},
            "selection": {"channel": "HH?"}, "startTime": UTCDateTime(archive["start"]).isoformat() + "Z",
            "endTime": UTCDateTime(archive["end"]).isoformat() + "Z", "picker": {"name": picker}, **extra}


def state(job: catalog_pb2.AnnotationJob) -> str:
    return common_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_")


def wait_job(stub, job_id: str, predicate, timeout_s: float = 300) -> catalog_pb2.AnnotationJob:
    deadline = time.monotonic() + timeout_s
    while True:
        job = stub.GetAnnotationJob(catalog_pb2.GetAnnotationJobRequest(job_id=job_id), timeout=10).job
        if predicate(job):
            return job
        if state(job) in TERMINAL or time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is {state(job)} ({job.error}), {job.progress}")
        time.sleep(0.1)


def catalog_rows(store: ObjectStore, job_id: str) -> tuple[list[tuple], list[tuple]]:
    """The stored catalog without its ids: events (time, place, magnitude) and picks (station, phase, time)."""
    import csv

    events = list(csv.DictReader(io.StringIO(store.get_bytes(f"catalogs/{job_id}/events.csv").decode())))
    picks = list(csv.DictReader(io.StringIO(store.get_bytes(f"catalogs/{job_id}/picks.csv").decode())))
    return (sorted((e["origin_time"], e["latitude"], e["longitude"], e["depth_km"], e["magnitude"]) for e in events),
            sorted((p["station"], p["phase"], p["time"], p["probability"]) for p in picks))
