"""Archive annotation throughput: station-days per second of a whole annotation job (the archive read from
object storage, picking, writing picks, association, the catalog) against SeisBench's own ``classify`` of a
PhaseNet over the same miniSEED files in one process, in the same run.

The data: a synthetic network (``quakestack.data.network``) written as an SDS tree and uploaded to the
embedded SeaweedFS. Both sides read the same objects, each station-day with the same 60 s margins, the
same 3001-sample windows (overlap 1500 / stride half a window) and threshold 0.3:

- SeisBench: ``seisbench.models.PhaseNet`` (268,443 parameters; no weights can be downloaded offline, so
  fixed-seed initial weights), ``classify`` of each station-day read with ``obspy.read`` from the objects;
- quakestack: the zoo's ``phasenet`` with ``channel_growth=2.0`` (267,971 parameters: the same widths
  8-16-32-64-128), registered in the model registry, run as the annotation job with 1 and with 2 workers.

The job runs through the real CatalogService (CreateAnnotationJob, then WatchAnnotationJob until it ends).

``ratio`` = job station-days/s (1 worker) / SeisBench station-days/s (goal >= 1.0); ``speedup_2_workers``;
``association_share`` = the job's association seconds (catalogs/<id>/summary.json) / its wall time. A
"station-day" here is 24 data-hours of one station (``--quick`` runs hour-long station-day tasks). With
random weights the picker finds few picks, so ``truth_association_s`` also times the association of the
network's true picks (what a trained picker finds) in-process. Prints one JSON object last.

    python bench/archive.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import obspy
import torch
from obspy import UTCDateTime

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.stack import running_stack  # noqa: E402
from quakestack.archive.inventory import read_inventory  # noqa: E402
from quakestack.archive.plan import Plan, plan_station_days  # noqa: E402
from quakestack.archive.selection import Selection  # noqa: E402
from quakestack.archive.source import Archive  # noqa: E402
from quakestack.catalog.associate import associate  # noqa: E402
from quakestack.catalog.types import PhasePick  # noqa: E402
from quakestack.data.network import ring_stations, write_network  # noqa: E402
from quakestack.model_store import ModelStore, model_card  # noqa: E402
from quakestack.models.zoo import build_model  # noqa: E402
from quakestack.storage import ObjectStore  # noqa: E402

THRESHOLD, MARGIN_S, BATCH, PREFIX = 0.3, 60.0, 256, "archives/bench"
OUR_HP = {"n_samples": 3001, "channel_growth": 2.0, "depth": 4}
MODEL_NAME = "bench-phasenet"


# -- data -----------------------------------------------------------------------------------------------
def prepare(directory: str, quick: bool):
    """The synthetic network: quick 2 stations, 23:00-01:00 (4 hour-long station-day tasks); else 4 stations
    over 2 whole days (8 station-days)."""
    if quick:
        start, end, stations, events = UTCDateTime(2024, 3, 1, 23), UTCDateTime(2024, 3, 2, 1), 2, 4
    else:
        start, end, stations, events = UTCDateTime(2024, 3, 1), UTCDateTime(2024, 3, 3), 4, 24
    return write_network(directory, seed=11, start=start, end=end, n_events=events,
                         stations=ring_stations(stations), min_gap_s=300.0)


def upload(store: ObjectStore, network) -> None:
    for directory, _dirs, names in os.walk(network.sds_root):
        for name in names:
            path = os.path.join(directory, name)
            store.put_file(f"{PREFIX}/sds/{os.path.relpath(path, network.sds_root)}", path)
    store.put_file(f"{PREFIX}/stations.xml", network.inventory_path)


def register_picker(settings) -> int:
    """Our PhaseNet-size picker, fixed-seed initial weights, in the model registry."""
    torch.manual_seed(0)
    model, hp, _ = build_model("phasenet", OUR_HP)
    buffer = io.BytesIO()
    torch.save(model.eval().state_dict(), buffer)
    card = model_card("phasenet", hp, dataset="bench-initial-weights", source={"job_id": "bench", "epoch": 0})
    return int(ModelStore.from_settings(settings).register(MODEL_NAME, buffer.getvalue(), card)["version"])


# -- the peer: SeisBench's classify over the same objects, one process --------------------------------
def seisbench_peer(store: ObjectStore, plan: Plan, archive: Archive) -> tuple[float, int]:
    import seisbench.models as sbm

    torch.manual_seed(0)
    model = sbm.PhaseNet().eval()
    warm = obspy.Stream([obspy.Trace(np.zeros(6000, np.float32), header={"channel": f"HH{c}", "sampling_rate": 100})
                         for c in "ZNE"])
    model.classify(warm, overlap=1500, batch_size=BATCH)
    picks = 0
    started = time.perf_counter()
    for task in plan.tasks:
        net, sta, loc, _ = task.stream.split(".")
        stream = obspy.Stream()
        for cha in task.channels:
            for f in archive.files_between((net, sta, loc, cha), task.read_start, task.read_end):
                stream += obspy.read(io.BytesIO(store.get_bytes(f.locator)), starttime=UTCDateTime(task.read_start),
                                     endtime=UTCDateTime(task.read_end))
        stream.merge(method=1)
        output = model.classify(stream, overlap=1500, batch_size=BATCH, P_threshold=THRESHOLD, S_threshold=THRESHOLD)
        picks += sum(1 for p in output.picks if task.owns(p.peak_time.timestamp))
    return time.perf_counter() - started, picks


# -- our side: CreateAnnotationJob -> WatchAnnotationJob ---------------------------------
def service_job(settings, store: ObjectStore, network, version: int, workers: int) -> dict[str, Any]:
    from quakestack.client import settings_channel
    from quakestack.protoconv import timestamp_from_seconds as stamp
    from quakestack.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, trainer_pb2

    request = catalog_pb2.CreateAnnotationJobRequest(
        archive=catalog_pb2.ArchiveSource(sds_prefix=f"{PREFIX}/sds"),
        inventory=common_pb2.Location(object_key=f"{PREFIX}/stations.xml"),
        selection=catalog_pb2.StreamSelection(channel="HH?"), start_time=stamp(network.start.timestamp),
        end_time=stamp(network.end.timestamp), picker=trainer_pb2.ModelRef(name=MODEL_NAME, version=str(version)),
        margin_s=MARGIN_S, pick_threshold=THRESHOLD, workers=workers, device="cpu", display_name="bench/archive")
    stages: dict[str, float] = {}
    with settings_channel(settings, settings.data_addr) as ch:
        stub = catalog_pb2_grpc.CatalogServiceStub(ch)
        started = time.perf_counter()
        job = stub.CreateAnnotationJob(request, timeout=120).job
        for response in stub.WatchAnnotationJob(catalog_pb2.WatchAnnotationJobRequest(job_id=job.job_id),
                                                timeout=1800):
            job = response.job
            stages.setdefault(job.progress.stage, time.perf_counter() - started)
        wall = time.perf_counter() - started
    if job.state != common_pb2.JOB_STATE_SUCCEEDED:
        raise RuntimeError(f"annotation job {job.job_id} ended {common_pb2.JobState.Name(job.state)}: {job.error}")
    return {"wall_s": wall, "summary": store.get_json(f"catalogs/{job.job_id}/summary.json"),
            "stages_s": {k: round(v, 3) for k, v in stages.items()}}


def truth_association(network, plan: Plan) -> tuple[float, int]:
    """Association alone, of the picks a trained picker would find: the truth's."""
    picks = [PhasePick(pk["seed_id"].rsplit(".", 1)[0], pk["phase"], pk["time"].timestamp, 0.9)
             for ev in network.events for pk in ev["picks"]]
    started = time.perf_counter()
    associate(picks, plan.stations)
    return time.perf_counter() - started, len(picks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 stations x 2 hours (< 60 s in all)")
    args = parser.parse_args()
    bench_started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="quakestack-bench-archive-") as tmp:
        network = prepare(tmp, args.quick)
        with running_stack(names=("data",),
                           inference_log_sample_rate=0.0) as stack:
            store = ObjectStore.from_settings(stack.settings)
            upload(store, network)
            version = register_picker(stack.settings)
            archive = Archive.object_sds(store, f"{PREFIX}/sds")
            plan = plan_station_days(archive, Selection(channel="HH?"), network.start.timestamp,
                                     network.end.timestamp, margin_s=MARGIN_S,
                                     inventory=read_inventory(store=store, key=f"{PREFIX}/stations.xml"))
            data_hours = sum(t.end - t.start for t in plan.tasks) / 3600.0
            seisbench_s, seisbench_picks = seisbench_peer(store, plan, archive)
            runs = {workers: service_job(stack.settings, store, network, version, workers) for workers in (1, 2)}
        truth_s, truth_picks = truth_association(network, plan)
    station_days = data_hours / 24.0
    one, two = runs[1], runs[2]
    result = {
        "bench": "archive", "mode": "service",
        "mode_note": "the whole job through CatalogService (CreateAnnotationJob -> WatchAnnotationJob)",
        "quick": args.quick, "stations": len(network.stations), "station_day_tasks": len(plan.tasks),
        "data_hours": round(data_hours, 3), "station_days": round(station_days, 4),
        "model": f"zoo phasenet {OUR_HP} vs seisbench PhaseNet (fixed-seed initial weights)",
        "job_s": round(one["wall_s"], 3), "job_2_workers_s": round(two["wall_s"], 3),
        "seisbench_s": round(seisbench_s, 3),
        "station_days_per_s": round(station_days / one["wall_s"], 4),
        "station_days_per_s_2_workers": round(station_days / two["wall_s"], 4),
        "seisbench_station_days_per_s": round(station_days / seisbench_s, 4),
        "ratio": round(seisbench_s / one["wall_s"], 3),
        "speedup_2_workers": round(one["wall_s"] / two["wall_s"], 3),
        "picks": one["summary"]["picks"], "seisbench_picks": seisbench_picks, "events": one["summary"]["events"],
        "association_s": one["summary"]["association_s"],
        "association_share": round(one["summary"]["association_s"] / one["wall_s"], 4),
        "truth_picks": truth_picks, "truth_association_s": round(truth_s, 3),
        "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "bench_wall_s": round(time.perf_counter() - bench_started, 1),
    }
    if "stages_s" in one:
        result["stages_s"] = one["stages_s"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
