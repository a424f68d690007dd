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

The job runs through the real CatalogService (CreateAnnotationJob, then WatchAnnotationJob until it ends)
when this build serves it (``--mode service``); until then (``--mode library``) through the same library
functions the job's worker runs (``run_station_day`` on each worker's share ``i::n``, rank 0 finishing what
is missing and ``build_catalog``), in spawned worker processes. ``mode`` in the JSON says which ran.

``ratio`` = job station-days/s (1 worker) / SeisBench station-days/s (goal >= 1.0); ``speedup_2_workers``;
``association_share`` = the job's association seconds (catalogs/<id>/summary.json) / its wall time. A
"station-day" here is 24 data-hours of one station (``--quick`` runs hour-long station-day tasks). With
random weights the picker finds few picks, so ``truth_association_s`` also times the association of the
network's true picks (what a trained picker finds) in-process. Prints one JSON object last.

    python bench/archive.py [--quick] [--mode auto|service|library]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import multiprocessing
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
from quakestack.archive.plan import Plan, StationDayTask, plan_station_days  # noqa: E402
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


def service_available() -> bool:
    """Whether this build serves CatalogService (the data service registers services/data/catalog.py)."""
    try:
        import services.data.catalog  # noqa: F401
    except ImportError:
        return False
    return True


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


def register_picker(store: ObjectStore) -> int:
    """Our PhaseNet-size picker, fixed-seed initial weights, in the model registry."""
    torch.manual_seed(0)
    model, hp, _ = build_model("phasenet", OUR_HP)
    buffer = io.BytesIO()
    torch.save(model.eval().state_dict(), buffer)
    card = model_card("phasenet", hp, dataset="bench-initial-weights", source={"job_id": "bench", "epoch": 0})
    return int(ModelStore(store).register(MODEL_NAME, buffer.getvalue(), card)["version"])


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


# -- our side, mode "library": the job worker's library calls in spawned worker processes ---------------
def _library_worker(rank: int, count: int, store_args: tuple[str, str, str, str], tasks: list[dict],
                    stations: dict, missing: list[str], version: int, catalog_id: str) -> None:
    """What quakestack/catalog/worker.py's run_job does for one rank (TODO: drop once the service runs)."""
    from quakestack.archive.inventory import StationCoordinates
    from quakestack.catalog.pipeline import build_catalog, run_station_day
    from quakestack.inference.annotate import AnnotateOptions
    from quakestack.inference.servables.factory import build_servable
    from quakestack.layout import picks_key

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // count))  # as the training worker does per rank
    store = ObjectStore(*store_args)
    plan = Plan([StationDayTask(**{**t, "channels": tuple(t["channels"])}) for t in tasks], missing,
                {k: StationCoordinates(**v) for k, v in stations.items()})
    archive = Archive.object_sds(store, f"{PREFIX}/sds")
    models = ModelStore(store)
    card = models.card(MODEL_NAME, version)
    picker = build_servable(card, models.weights(card), torch.device("cpu"))
    options = AnnotateOptions(threshold=THRESHOLD)
    for task in plan.tasks[rank::count]:
        run_station_day(task, archive, picker, store, catalog_id, options)
    if rank != 0:
        return
    while todo := [t for t in plan.tasks if not store.exists(picks_key(catalog_id, t.task_id))]:
        run_station_day(todo[-1], archive, picker, store, catalog_id, options)
    build_catalog(store, catalog_id, plan, archive)


def library_job(settings, store: ObjectStore, plan: Plan, version: int, workers: int,
                catalog_id: str) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    store_args = (settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_bucket)
    tasks = [dataclasses.asdict(t) for t in plan.tasks]
    stations = {k: dataclasses.asdict(v) for k, v in plan.stations.items()}
    started = time.perf_counter()
    procs = [ctx.Process(target=_library_worker, args=(rank, workers, store_args, tasks, stations, plan.missing,
                                                        version, catalog_id)) for rank in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    wall = time.perf_counter() - started
    if any(p.exitcode != 0 for p in procs):
        raise RuntimeError(f"a library worker failed: exit codes {[p.exitcode for p in procs]}")
    return {"wall_s": wall, "summary": store.get_json(f"catalogs/{catalog_id}/summary.json")}


# -- our side, mode "service": CreateAnnotationJob -> WatchAnnotationJob ---------------------------------
def service_job(settings, store: ObjectStore, network, version: int, workers: int) -> dict[str, Any]:
    from google.protobuf.timestamp_pb2 import Timestamp

    from quakestack.client import settings_channel
    from quakestack.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, trainer_pb2

    def stamp(t: UTCDateTime) -> Timestamp:
        out = Timestamp()
        out.FromNanoseconds(int(round(t.timestamp * 1e9)))
        return out

    request = catalog_pb2.CreateAnnotationJobRequest(
        archive=catalog_pb2.ArchiveSource(sds_prefix=f"{PREFIX}/sds"),
        inventory=common_pb2.Location(object_key=f"{PREFIX}/stations.xml"),
        selection=catalog_pb2.StreamSelection(channel="HH?"), start_time=stamp(network.start),
        end_time=stamp(network.end), picker=trainer_pb2.ModelRef(name=MODEL_NAME, version=str(version)),
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
    parser.add_argument("--mode", choices=("auto", "service", "library"), default="auto",
                        help="the job through CatalogService, or through its worker's library calls")
    args = parser.parse_args()
    bench_started = time.perf_counter()
    mode = ("service" if service_available() else "library") if args.mode == "auto" else args.mode
    if mode == "service" and not service_available():
        parser.error("this build does not serve CatalogService yet: use --mode library")
    with tempfile.TemporaryDirectory(prefix="quakestack-bench-archive-") as tmp:
        network = prepare(tmp, args.quick)
        with running_stack(names=("data",) if mode == "service" else (),
                           inference_log_sample_rate=0.0) as stack:
            store = ObjectStore.from_settings(stack.settings)
            upload(store, network)
            version = register_picker(store)
            archive = Archive.object_sds(store, f"{PREFIX}/sds")
            plan = plan_station_days(archive, Selection(channel="HH?"), network.start.timestamp,
                                     network.end.timestamp, margin_s=MARGIN_S,
                                     inventory=read_inventory(store=store, key=f"{PREFIX}/stations.xml"))
            data_hours = sum(t.end - t.start for t in plan.tasks) / 3600.0
            seisbench_s, seisbench_picks = seisbench_peer(store, plan, archive)
            runs = {}
            for workers in (1, 2):
                if mode == "service":
                    runs[workers] = service_job(stack.settings, store, network, version, workers)
                else:
                    runs[workers] = library_job(stack.settings, store, plan, version, workers, f"bench-{workers}w")
        truth_s, truth_picks = truth_association(network, plan)
    station_days = data_hours / 24.0
    one, two = runs[1], runs[2]
    result = {
        "bench": "archive", "mode": mode,
        "mode_note": "the whole job through CatalogService (CreateAnnotationJob -> WatchAnnotationJob)" if mode ==
        "service" else ("" if service_available() else "CatalogService not served by this build: ") +
        "the job worker's library calls (run_station_day, build_catalog) in spawned worker processes, per-rank "
        "torch threads",
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
