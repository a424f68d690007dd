"""`quakestack catalog ...`: build event catalogs from continuous archives (annotation jobs), follow, fetch and
evaluate them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from obspy import UTCDateTime

from quakestack.cli.common import (
    MODEL_REF_HELP,
    CliError,
    Ctx,
    duration,
    fmt,
    split_model_ref,
    state_name,
    table,
    to_dict,
)
from quakestack.cli.data import upload
from quakestack.cli.infer import policy_arguments
from quakestack.cli.listing import add_job_filters, job_list_request, list_pages
from quakestack.cli.progress import ProgressBar
from quakestack.cli.train import parse_hp
from quakestack.protoconv import struct_from_dict, timestamp_from_seconds
from quakestack.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, inference_pb2, trainer_pb2

FORMATS = {"quakeml": catalog_pb2.CATALOG_FILE_FORMAT_QUAKEML, "csv": catalog_pb2.CATALOG_FILE_FORMAT_EVENTS_CSV,
           "picks-csv": catalog_pb2.CATALOG_FILE_FORMAT_PICKS_CSV,
           "all-picks-csv": catalog_pb2.CATALOG_FILE_FORMAT_ALL_PICKS_CSV}
SUFFIXES = {"quakeml": ".xml", "csv": ".events.csv", "picks-csv": ".picks.csv", "all-picks-csv": ".all_picks.csv"}


def stub(ctx: Ctx) -> catalog_pb2_grpc.CatalogServiceStub:
    return catalog_pb2_grpc.CatalogServiceStub(ctx.channel("data"))


def model_ref(text: str | None) -> trainer_pb2.ModelRef | None:
    """A registered model: NAME, NAME@VERSION or NAME@ALIAS."""
    if not text:
        return None
    name, version = split_model_ref(text)
    return trainer_pb2.ModelRef(name=name, version=version)


def location(ctx: Ctx, text: str, what: str) -> common_pb2.Location:
    """A local file is uploaded first; anything else names an object key."""
    if Path(text).is_file():
        return common_pb2.Location(object_key=upload(ctx, [Path(text)]))
    if text.startswith("/"):
        raise CliError(f"{what} {text}: no such file")
    return common_pb2.Location(object_key=text)


def when(text: str, flag: str) -> float:
    try:
        return UTCDateTime(text).timestamp
    except Exception:  # noqa: BLE001 - ObsPy raises several kinds for unparsable times
        raise CliError(f"{flag} {text!r}: not a time (e.g. 2024-03-01T00:00:00)") from None


def positive(value: float | None, flag: str) -> float:
    """A flag's value for the request: omitted is the service's default; zero is refused, not read as it."""
    if value is None:
        return 0
    if value <= 0:
        raise CliError(f"{flag} must be positive, got {value:g} (omit the flag for the default)")
    return value


def archive_of(args: argparse.Namespace) -> catalog_pb2.ArchiveSource:
    given = [x for x in (args.sds_prefix, args.sds_path, args.miniseed) if x]
    if len(given) != 1:
        raise CliError("give exactly one of --sds-prefix, --sds-path or --miniseed")
    if args.sds_prefix:
        return catalog_pb2.ArchiveSource(sds_prefix=args.sds_prefix)
    if args.sds_path:
        return catalog_pb2.ArchiveSource(sds_local_path=str(Path(args.sds_path).resolve()))
    return catalog_pb2.ArchiveSource(miniseed_objects=catalog_pb2.MiniseedObjects(object_keys=args.miniseed))


def build(ctx: Ctx, args: argparse.Namespace) -> catalog_pb2.AnnotationJob:
    """CreateAnnotationJob from the flags; then, unless --no-wait, follow it to its end."""
    request = catalog_pb2.CreateAnnotationJobRequest(
        archive=archive_of(args), inventory=location(ctx, args.inventory, "--inventory"),
        selection=catalog_pb2.StreamSelection(network=args.network, station=args.station, location=args.location,
                                              channel=args.channel),
        start_time=timestamp_from_seconds(when(args.start, "--start")),
        end_time=timestamp_from_seconds(when(args.end, "--end")), picker=model_ref(args.picker),
        magnitude_model=model_ref(args.magnitude_model), classifier=model_ref(args.classifier),
        association_parameters=struct_from_dict(parse_hp(args.param)),
        margin_s=positive(args.margin, "--margin"), pick_threshold=positive(args.threshold, "--threshold"),
        workers=int(positive(args.workers, "--workers")), device=args.device,
        remove_response=args.remove_response, display_name=args.display_name,
        input_policy=inference_pb2.InputPolicy(max_upsampling=args.max_upsampling,
                                               missing_components=args.missing_components))
    job = stub(ctx).CreateAnnotationJob(request, timeout=120).job
    ctx.following = (f"annotation job {job.job_id}", f"quakestack catalog watch {job.job_id}")
    ctx.say(f"annotation job {job.job_id}: {job.progress.station_days_total} station-days, picker {job.picker}"
            + (f", magnitudes {job.magnitude_model}" if job.magnitude_model else "") + f", {state_name(job.state)}")
    for missing in job.missing_station_days:
        ctx.note(f"no data: {missing}")
    if args.no_wait:
        ctx.emit(to_dict(job))
        return job
    return watch(ctx, job.job_id)


def progress_text(job: catalog_pb2.AnnotationJob) -> str:
    p = job.progress
    return (f"{p.stage or state_name(job.state).lower()}  {p.station_days_done}/{p.station_days_total} station-days"
            f"  {p.picks} picks  {p.data_hours_per_s:.2f} data h/s  ETA {duration(p.eta_s) if p.eta_s else '-'}")


def watch(ctx: Ctx, job_id: str) -> catalog_pb2.AnnotationJob:
    """Follow WatchAnnotationJob with a live bar (one JSON line per update with --json); the final summary.

    Raises CliError when the job ends FAILED or CANCELLED."""
    ctx.following = (f"annotation job {job_id}", f"quakestack catalog watch {job_id}")
    bar = ProgressBar("catalog", ctx.stderr, enabled=not ctx.quiet and not ctx.as_json)
    job = None
    try:
        for update in stub(ctx).WatchAnnotationJob(catalog_pb2.WatchAnnotationJobRequest(job_id=job_id)):
            job = update.job
            ctx.emit(to_dict(job))
            bar.update(job.progress.station_days_done, max(1, job.progress.station_days_total), progress_text(job),
                       force=True)
    finally:
        bar.close()
    ctx.following = None
    if job is None:
        raise CliError(f"annotation job {job_id}: no update")
    state = state_name(job.state)
    if state in {"FAILED", "CANCELLED"}:
        raise CliError(f"annotation job {job_id} {state}" + (f": {job.error}" if job.error else ""))
    ctx.say(f"job {job_id} {state}: {job.events} events, {job.associated_picks} associated picks of "
            f"{job.progress.picks}, {job.progress.station_days_total} station-days"
            + (f", {len(job.missing_station_days)} without data" if job.missing_station_days else ""))
    for key in job.catalog_keys:
        ctx.say(f"  {key}")
    return job


def list_jobs(ctx: Ctx, args: argparse.Namespace) -> list[catalog_pb2.AnnotationJob]:
    request = job_list_request(catalog_pb2.ListAnnotationJobsRequest(), args)
    jobs = list_pages(ctx, stub(ctx).ListAnnotationJobs, request, args)
    ctx.emit([to_dict(j) for j in jobs])
    rows = [(j.job_id, state_name(j.state), f"{j.progress.station_days_done}/{j.progress.station_days_total}",
             j.progress.picks, j.events, j.picker, j.display_name) for j in jobs]
    ctx.say(table(rows, ("job", "state", "station-days", "picks", "events", "picker", "name")))
    return jobs


def cancel(ctx: Ctx, job_id: str) -> catalog_pb2.AnnotationJob:
    job = stub(ctx).CancelAnnotationJob(catalog_pb2.CancelAnnotationJobRequest(job_id=job_id), timeout=30).job
    ctx.emit(to_dict(job))
    ctx.say(f"job {job_id}: cancel requested ({state_name(job.state)})")
    return job


def get(ctx: Ctx, job_id: str, file_format: str, out: str | None) -> int:
    """The catalog file to -o FILE, or to stdout with -o - (default: JOB.xml / JOB.events.csv / JOB.picks.csv)."""
    chunks = stub(ctx).GetCatalog(catalog_pb2.GetCatalogRequest(job_id=job_id, format=FORMATS[file_format]),
                                  timeout=300)
    data = b"".join(c.chunk for c in chunks)
    if out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    path = Path(out or f"{job_id}{SUFFIXES[file_format]}")
    path.write_bytes(data)
    ctx.emit({"path": str(path), "bytes": len(data)})
    ctx.say(f"wrote {path} ({len(data)} bytes)")
    return 0


def evaluate(ctx: Ctx, job_id: str, reference: str, *, time_tolerance_s: float | None = None,
             distance_tolerance_km: float | None = None,
             out_dir: Path | None = None) -> catalog_pb2.EvaluateCatalogResponse:
    """EvaluateCatalog against a reference (a local file is uploaded first); the plots into out_dir."""
    result = stub(ctx).EvaluateCatalog(catalog_pb2.EvaluateCatalogRequest(
        job_id=job_id, reference=location(ctx, reference, "--reference"),
        time_tolerance_s=positive(time_tolerance_s, "--time-tolerance"),
        distance_tolerance_km=positive(distance_tolerance_km, "--distance-tolerance")), timeout=300)
    ctx.emit(to_dict(result))
    rows: list[tuple[str, Any]] = [
        ("events (catalog / reference / matched)", f"{result.predicted_events} / {result.reference_events} / "
                                                   f"{result.matched}"),
        ("precision", fmt(result.precision)), ("recall", fmt(result.recall)),
        ("median origin-time error (s)", fmt(result.median_origin_time_error_s)),
        ("median epicentral error (km)", fmt(result.median_epicentral_error_km)),
        ("magnitude bias", fmt(result.magnitude_bias)), ("magnitude RMSE", fmt(result.magnitude_rmse))]
    ctx.say(table(rows, ("figure", "value")))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        prefix = f"catalogs/{job_id}/"
        for key in result.artifact_keys:
            data = b"".join(c.chunk for c in stub(ctx).DownloadCatalogArtifact(
                catalog_pb2.DownloadCatalogArtifactRequest(job_id=job_id, path=key.removeprefix(prefix)), timeout=60))
            (out_dir / key.rsplit("/", 1)[-1]).write_bytes(data)
            ctx.say(f"wrote {out_dir / key.rsplit('/', 1)[-1]}")
    return result


def association_help() -> str:
    """Every association parameter with its default and range, for --help (a 4-station network once gave
    0 events under a min_picks=6 nobody could see)."""
    from quakestack.catalog.associate import ASSOCIATION_PARAMETERS

    def one(h) -> str:
        valid = "|".join(h.choices) if h.choices else f"{h.minimum:g}..{h.maximum:g}"
        return f"{h.name}={h.default} ({valid}: {h.description})"

    return "; ".join(one(h) for h in ASSOCIATION_PARAMETERS) + "; velocity_layers=[[depth_km,vp,vs],...] (1d)"


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    catalog = sub.add_parser("catalog", help="event catalogs from continuous archives: build, watch, get, evaluate")
    csub = catalog.add_subparsers(dest="catalog_command", required=True)
    p = csub.add_parser("build", parents=[common], help="start an annotation job and follow it")
    p.add_argument("--sds-prefix", help="SDS archive under this object-storage prefix")
    p.add_argument("--sds-path", help="SDS archive in this directory of the service's machine (allow-listed)")
    p.add_argument("--miniseed", nargs="+", metavar="KEY", help="explicit miniSEED object keys")
    p.add_argument("--inventory", required=True, help="StationXML: a local file (uploaded) or an object key")
    p.add_argument("--network", default="", help="FDSN pattern, e.g. XN or X?,YY (default *)")
    p.add_argument("--station", default="")
    p.add_argument("--location", default="", help='"--" is the empty location code')
    p.add_argument("--channel", default="", help="e.g. HH? or HH?,EH?")
    p.add_argument("--start", required=True, help="first instant (UTC), e.g. 2024-03-01")
    p.add_argument("--end", required=True, help="last instant, exclusive")
    p.add_argument("--picker", required=True, help=f"registered picker: {MODEL_REF_HELP}")
    p.add_argument("--magnitude-model", help=f"registered magnitude model: {MODEL_REF_HELP}")
    p.add_argument("--classifier", help=f"registered event classifier: {MODEL_REF_HELP}")
    p.add_argument("--param", nargs="*", metavar="KEY=VALUE",
                   help="association parameters (PyOcto), e.g. vp_km_s=6.2 min_picks=4; the defaults: "
                        + association_help())
    policy_arguments(p)  # the data-quality gate before the picker, as `annotate` takes it
    p.add_argument("--margin", type=float, default=None, help="seconds read beyond each station-day (default 60)")
    p.add_argument("--threshold", type=float, default=None, help="pick probability threshold (default 0.3)")
    p.add_argument("--workers", type=int, default=None, help="station-day workers side by side (default 1)")
    p.add_argument("--device", default="", help="auto, cpu, cuda or cuda:N (default: the service's)")
    p.add_argument("--remove-response", action="store_true", help="remove the instrument response first")
    p.add_argument("--display-name", default="")
    p.add_argument("--no-wait", action="store_true", help="return once the job is queued")
    p.set_defaults(func=lambda ctx, a: build(ctx, a) and 0)
    p = csub.add_parser("list", parents=[common], help="list annotation jobs, newest first")
    add_job_filters(p)
    p.set_defaults(func=lambda ctx, a: list_jobs(ctx, a) and 0)
    p = csub.add_parser("watch", parents=[common], help="follow a job's progress to its end")
    p.add_argument("job_id")
    p.set_defaults(func=lambda ctx, a: watch(ctx, a.job_id) and 0)
    p = csub.add_parser("cancel", parents=[common], help="cancel a job (finished station-days stay stored)")
    p.add_argument("job_id")
    p.set_defaults(func=lambda ctx, a: cancel(ctx, a.job_id) and 0)
    p = csub.add_parser("get", parents=[common], help="download a finished job's catalog")
    p.add_argument("job_id")
    p.add_argument("--format", default="quakeml", choices=sorted(FORMATS))
    p.add_argument("--out", "-o", help="file to write, - for stdout (default JOB.xml, JOB.events.csv, ...)")
    p.set_defaults(func=lambda ctx, a: get(ctx, a.job_id, a.format, a.out))
    p = csub.add_parser("evaluate", parents=[common], help="match a catalog against a reference catalog")
    p.add_argument("job_id")
    p.add_argument("--reference", required=True, help="QuakeML or CSV: a local file (uploaded) or an object key")
    p.add_argument("--time-tolerance", type=float, default=None, help="seconds (default 2)")
    p.add_argument("--distance-tolerance", type=float, default=None, help="km (default 10)")
    p.add_argument("--out", help="download the PNG plots into this folder")
    p.set_defaults(func=lambda ctx, a: evaluate(ctx, a.job_id, a.reference, time_tolerance_s=a.time_tolerance,
                                                distance_tolerance_km=a.distance_tolerance,
                                                out_dir=Path(a.out) if a.out else None) and 0)
