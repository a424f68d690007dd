"""`quakestack data ...`: upload sources, create datasets and watch their ingestion, list, describe, delete."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from quakestack.cli.common import CliError, Ctx, duration, state_name, table, to_dict
from quakestack.cli.listing import add_job_filters, job_list_request, list_pages
from quakestack.cli.progress import ProgressBar, human_bytes
from quakestack.data.spec import DEFAULT_NOISE_MARGIN_S
from quakestack.digests import file_sha256
from quakestack.errors import InvalidArgument
from quakestack.inference.quality import DEFAULT_MAX_UPSAMPLING
from quakestack.pagination import all_pages
from quakestack.v1 import common_pb2, data_pb2, data_pb2_grpc

if TYPE_CHECKING:
    from types import ModuleType

    from quakestack.data.readers import Reader

CHUNK = 1 << 20
NORMALIZATIONS = {"none": data_pb2.NORMALIZATION_NONE, "std": data_pb2.NORMALIZATION_STD,
                  "peak": data_pb2.NORMALIZATION_PEAK}
GAPS = {"drop": data_pb2.GAP_POLICY_DROP, "zeros": data_pb2.GAP_POLICY_FILL_ZERO,
        "interpolate": data_pb2.GAP_POLICY_INTERPOLATE}


def stub(ctx: Ctx) -> data_pb2_grpc.DataServiceStub:
    return data_pb2_grpc.DataServiceStub(ctx.channel("data"))


# -- upload ------------------------------------------------------------------------------------
def upload_side_by_side(ctx: Ctx, paths: Sequence[Path]) -> str:
    """Each file into one upload under its own name; returns the upload's prefix (`raw/<upload_id>/`)."""
    upload_id = ""
    for path in paths:
        key = upload(ctx, [path], upload_id=upload_id)
        upload_id = upload_id or key.split("/")[1]
    return f"raw/{upload_id}/"


def upload(ctx: Ctx, paths: Sequence[Path], filename: str | None = None, upload_id: str = "") -> str:
    """Stream local files (concatenated, in order) to DataService.UploadFile; returns the object key.

    Several miniSEED files concatenate into one valid miniSEED file, so a multi-station day becomes one
    object that a single source with its catalog can name.
    """
    paths = [Path(p) for p in paths]
    size = sum(p.stat().st_size for p in paths)
    digest = file_sha256(*paths)
    name = filename or paths[0].name
    bar = ProgressBar(f"upload {name}", ctx.stderr, enabled=not ctx.quiet)
    started = time.monotonic()

    def requests() -> Iterator[data_pb2.UploadFileRequest]:
        yield data_pb2.UploadFileRequest(header=data_pb2.UploadFileHeader(
            filename=name, size_bytes=size, sha256=digest, upload_id=upload_id))
        sent = 0
        for p in paths:
            with p.open("rb") as f:
                for block in iter(lambda: f.read(CHUNK), b""):
                    sent += len(block)
                    rate = sent / max(time.monotonic() - started, 1e-6)
                    bar.update(sent, size, f"{human_bytes(sent)}/{human_bytes(size)} {human_bytes(rate)}/s")
                    yield data_pb2.UploadFileRequest(chunk=block)

    try:
        response = stub(ctx).UploadFile(requests(), timeout=max(60.0, size / 2e6))
    finally:
        bar.close()
    return response.object_key


# -- sources -----------------------------------------------------------------------------------
def _readers() -> ModuleType:
    """The reader registry, imported when a command needs it (its readers import ObsPy and h5py: ~0.7 s)."""
    from quakestack.data import readers

    return readers


def format_hint() -> str:
    """`give --format stead (HDF5 + metadata CSV), seisbench (a folder) or mseed (any ObsPy waveform file)`."""
    shown = [f"{r.command_name} ({r.summary})" if r.summary else r.command_name
             for r in _readers().registry().values()]
    return "give --format " + (", ".join(shown[:-1]) + " or " + shown[-1] if len(shown) > 1 else shown[0])


def _reader(fmt: str) -> Reader:
    try:
        return _readers().by_command_name(fmt)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def catalog_format_of(fmt: str, path: str, given: str | None) -> int:
    """--catalog-format, or what the format's reader guesses from the file name (0: none)."""
    from services.data.requests import catalog_format_value

    reader = _reader(fmt)
    if given and given not in reader.catalog_formats:
        known = ", ".join(reader.catalog_formats) or "none"
        raise CliError(f"--catalog-format {given}: {fmt} sources read these catalog formats: {known}")
    name = given or reader.guess_catalog_format(path)
    return catalog_format_value(name) if name else 0


def guess_format(inputs: Sequence[str]) -> str:
    """--format from the first local input: the reader most sure of it (by structure, name or content);
    otherwise a CliError with a hint."""
    if not inputs:
        raise CliError("give at least one input file or directory")
    first = Path(inputs[0])
    if not first.exists():
        raise CliError(f"{first}: no such file or directory")
    reader = _readers().guess(first)
    if reader is not None:
        return reader.command_name
    if first.is_dir():
        raise CliError(f"{first}: cannot tell the source format of this folder; {format_hint()}")
    kinds = " and not ".join(r.file_kind for r in _readers().registry().values() if r.file_kind)
    raise CliError(f"{first}: not {kinds}; {format_hint()}")


def check_inputs(fmt: str, inputs: Sequence[str], catalog: str | None, window_s: float) -> None:
    """Local files, before anything is uploaded: they exist, they are what --format says, a window fits them."""
    if catalog and not Path(catalog).is_file():
        raise CliError(f"--catalog {catalog}: no such file")
    reader = _reader(fmt)
    try:
        reader.check_inputs(inputs, catalog, window_s)
    except _readers().base.NotThisFormat as exc:
        other = _readers().guess(exc.path)
        if other is not None and other is not reader and other.sniff(exc.path) > 1:
            raise CliError(f"{exc.path}: looks like a {other.command_name} file ({other.summary}), not "
                           f"{reader.file_kind or 'a ' + reader.command_name + ' file'}; "
                           f"give --format {other.command_name}") from None
        raise CliError(f"{exc}; {format_hint()}") from None
    except InvalidArgument as exc:
        raise CliError(str(exc)) from None


def _catalog_required(fmt: str, catalog: str | None) -> None:
    reader = _reader(fmt)
    if reader.needs_catalog and not catalog:
        raise CliError(f"--catalog is required for {fmt} sources (catalog formats: "
                       f"{', '.join(reader.catalog_formats)})")


def _source(fmt: str, waveforms: common_pb2.Location, catalog: common_pb2.Location | None = None,
            catalog_format: int = 0) -> data_pb2.DataSource:
    """A DataSource naming its format by enum where the contract has one, else by format_name."""
    from services.data.requests import source_format_value

    name = _reader(fmt).name
    number = source_format_value(name)
    source = data_pb2.DataSource(format=number, format_name="" if number else name, waveforms=waveforms,
                                 catalog_format=catalog_format)
    if catalog is not None:
        source.catalog.CopyFrom(catalog)
    return source


def build_sources(ctx: Ctx, fmt: str, inputs: Sequence[str], *, catalog: str | None = None,
                  catalog_format: str | None = None, local: bool = False,
                  keys: bool = False) -> list[data_pb2.DataSource]:
    """DataSources for the inputs: uploaded (default), allow-listed server paths (--local) or object keys."""
    reader = _reader(fmt)
    _catalog_required(fmt, catalog)
    if not inputs:
        raise CliError("give at least one input file or directory")

    def where(text: str) -> common_pb2.Location:
        if keys:
            return common_pb2.Location(object_key=text)
        return common_pb2.Location(local_path=str(Path(text).resolve()))

    cat_fmt = catalog_format_of(fmt, catalog, catalog_format) if catalog else 0
    if local or keys:
        return [_source(fmt, where(item), where(catalog) if catalog else None, cat_fmt) for item in inputs]
    if catalog and not Path(catalog).is_file():
        raise CliError(f"--catalog {catalog}: no such file")
    try:
        groups = reader.upload_groups(inputs, catalog)
    except InvalidArgument as exc:
        raise CliError(str(exc)) from None
    sources = []
    for group in groups:
        wave_key = upload(ctx, group.files, group.filename) if group.filename or len(group.files) == 1 \
            else upload_side_by_side(ctx, group.files)
        cat = common_pb2.Location(object_key=upload(ctx, [group.catalog])) if group.catalog else None
        sources.append(_source(fmt, common_pb2.Location(object_key=wave_key), cat, cat_fmt if cat else 0))
    return sources


# -- request -----------------------------------------------------------------------------------
@dataclass
class IngestOptions:
    """Window, preprocessing, filter and split options; defaults follow the contract's defaults."""

    length_s: float = 60.0
    sampling_rate_hz: float = 100.0
    p_offset_s: float = 0.0
    p_offset_range: tuple[float, float] | None = None
    include_noise: bool = True
    noise_per_event: int = 0
    noise_margin_s: float = DEFAULT_NOISE_MARGIN_S
    location_clusters: int = 0
    detrend: bool = False
    taper: float = 0.0
    freqmin: float = 0.0
    freqmax: float = 0.0
    components: str = "ZNE"
    gaps: str = "zeros"
    max_upsampling: float = DEFAULT_MAX_UPSAMPLING
    normalization: str = "none"
    magnitude_types: tuple[str, ...] = ()
    min_magnitude: float | None = None
    max_magnitude: float | None = None
    min_snr_db: float | None = None
    min_distance_km: float | None = None
    max_distance_km: float | None = None
    max_count: int = 0
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_by: str = "event"
    shard_size: int = 0
    float16: bool = False
    seed: int = 0
    description: str = ""
    workers: int = 0


def dataset_request(name: str, sources: Sequence[data_pb2.DataSource],
                    o: IngestOptions) -> data_pb2.CreateDatasetRequest:
    lo, hi = o.p_offset_range or (0.0, 0.0)
    filters = data_pb2.Filters(magnitude_types=list(o.magnitude_types), max_count=o.max_count)
    for field_name, value in (("min_magnitude", o.min_magnitude), ("max_magnitude", o.max_magnitude),
                              ("min_snr_db", o.min_snr_db), ("min_distance_km", o.min_distance_km),
                              ("max_distance_km", o.max_distance_km)):
        if value is not None:
            setattr(filters, field_name, value)
    return data_pb2.CreateDatasetRequest(
        name=name, sources=list(sources),
        window=data_pb2.WindowSpec(length_s=o.length_s, sampling_rate_hz=o.sampling_rate_hz, p_offset_s=o.p_offset_s,
                                   p_offset_min_s=lo, p_offset_max_s=hi, include_noise=o.include_noise,
                                   noise_windows_per_event=o.noise_per_event, location_clusters=o.location_clusters,
                                   noise_margin_s=o.noise_margin_s),
        preprocessing=data_pb2.Preprocessing(detrend=o.detrend, taper_fraction=o.taper, freqmin_hz=o.freqmin,
                                             freqmax_hz=o.freqmax, component_order=o.components,
                                             gap_policy=GAPS[o.gaps], normalization=NORMALIZATIONS[o.normalization],
                                             max_upsampling=o.max_upsampling),
        filters=filters,
        split=data_pb2.SplitSpec(train=o.split[0], val=o.split[1], test=o.split[2],
                                 strategy=data_pb2.SPLIT_STRATEGY_BY_TIME if o.split_by == "time"
                                 else data_pb2.SPLIT_STRATEGY_BY_EVENT),
        shard_size=o.shard_size, dtype=data_pb2.SAMPLE_DTYPE_FLOAT16 if o.float16 else data_pb2.SAMPLE_DTYPE_FLOAT32,
        seed=o.seed, description=o.description, workers=o.workers)


# -- commands ----------------------------------------------------------------------------------
def ingest(ctx: Ctx, name: str, sources: Sequence[data_pb2.DataSource], options: IngestOptions,
           *, wait: bool = True) -> data_pb2.DatasetJob:
    """CreateDataset, then (unless wait=False) watch the job to its end; returns the last job state."""
    job = stub(ctx).CreateDataset(dataset_request(name, sources, options), timeout=60).job
    ctx.following = (f"dataset job {job.job_id}", f"quakestack data watch {job.job_id}")
    ctx.say(f"dataset job {job.job_id} for {name!r}: {state_name(job.state)}")
    if not wait:
        ctx.emit(to_dict(job))
        return job
    return watch_job(ctx, job.job_id)


def _progress_text(p: data_pb2.DatasetJobProgress) -> str:
    items = f"{p.items_done}/{p.items_total}" if p.items_total else ""
    rate = f"{p.windows_per_s:.0f} win/s" if p.windows_per_s else ""
    eta = f"ETA {duration(p.eta_s)}" if p.eta_s else ""
    return " ".join(x for x in (p.phase, items, f"{p.windows_written} windows", rate, eta) if x)


def watch_job(ctx: Ctx, job_id: str) -> data_pb2.DatasetJob:
    """Follow WatchDatasetJob with a progress bar (or JSON lines); raise CliError when the job fails."""
    ctx.following = (f"dataset job {job_id}", f"quakestack data watch {job_id}")
    bar = ProgressBar("ingest", ctx.stderr, enabled=not ctx.quiet and not ctx.as_json)
    job = None
    try:
        for event in stub(ctx).WatchDatasetJob(data_pb2.WatchDatasetJobRequest(job_id=job_id)):
            job = event.job
            ctx.emit(to_dict(job))
            p = job.progress
            bar.update(p.items_done, p.items_total, _progress_text(p))
    finally:
        bar.close()
    if job is None:
        job = stub(ctx).GetDatasetJob(data_pb2.GetDatasetJobRequest(job_id=job_id), timeout=30).job
    ctx.following = None
    state = state_name(job.state)
    explain_warnings(ctx, job)
    if state != "SUCCEEDED":
        raise CliError(f"dataset job {job_id} {state}" + (f": {job.error}" if job.error else ""))
    skipped = ", ".join(f"{k}: {v}" for k, v in sorted(job.skipped.items()))
    filled = job.progress.windows_gap_filled
    ctx.say(f"dataset {job.dataset!r} published: {job.progress.windows_written} windows, "
            f"{human_bytes(job.progress.bytes_written)}" + (f" (skipped {skipped})" if skipped else "")
            + (f"; {filled} windows hold samples filled by the gap policy (each window's count: metadata "
               "trace_gap_filled_samples)" if filled else ""))
    return job


def explain_warnings(ctx: Ctx, job: data_pb2.DatasetJob) -> None:
    """The job's per-item reasons on stderr: counts by reason, then each warning (unmatched picks name the pick,
    why it matched nothing and the SEED ids the waveforms hold)."""
    if not job.skipped and not job.warnings:
        return
    counts = ", ".join(f"{reason}: {n}" for reason, n in sorted(job.skipped.items()))
    ctx.note(f"skipped: {counts}" if counts else "warnings:")
    for warning in job.warnings:
        ctx.note(f"  {warning}")
    if len(job.warnings) < sum(job.skipped.values()):
        ctx.note(f"  ... (the first {len(job.warnings)} shown; quakestack data watch {job.job_id} --json has the job)")


def check_name_free(ctx: Ctx, name: str) -> None:
    """Before any upload: a dataset of that name must not exist or be in the making (the server checks again)."""
    try:
        stub(ctx).GetDataset(data_pb2.GetDatasetRequest(name=name), timeout=30)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
    else:
        raise CliError(f"ALREADY_EXISTS: dataset {name!r} already exists (quakestack data rm {name}, or choose "
                       "another name)")
    jobs = all_pages(stub(ctx).ListDatasetJobs, data_pb2.ListDatasetJobsRequest(dataset=name), "jobs", timeout=30)
    live = [j for j in jobs if state_name(j.state) in ("QUEUED", "RUNNING")]
    if live:
        raise CliError(f"ALREADY_EXISTS: dataset {name!r} is being written by job {live[0].job_id}")


def list_dataset_jobs(ctx: Ctx, args: argparse.Namespace) -> list[data_pb2.DatasetJob]:
    request = job_list_request(data_pb2.ListDatasetJobsRequest(), args)
    jobs = list_pages(ctx, stub(ctx).ListDatasetJobs, request, args)
    ctx.emit([to_dict(j) for j in jobs])
    rows = [(j.job_id, j.dataset, state_name(j.state), j.progress.windows_written, sum(j.skipped.values()),
             j.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"), j.error[:60]) for j in jobs]
    ctx.say(table(rows, ("job", "dataset", "state", "windows", "skipped", "created", "error")))
    return jobs


def check_request(name: str, options: IngestOptions) -> None:
    """The server's own validation of everything but the sources, run here before any upload."""
    from quakestack.errors import InvalidArgument
    from services.data.requests import parameters

    try:
        parameters(dataset_request(name, [], options))
    except InvalidArgument as exc:
        raise CliError(f"INVALID_ARGUMENT: {exc}") from None


def list_formats(ctx: Ctx) -> int:
    """The registered source formats (built-in, entry points, QUAKESTACK_DATA_READERS), as --format names them."""
    found = list(_readers().registry().values())
    ctx.emit([{"format": r.command_name, "name": r.name, "summary": r.summary, "needsCatalog": r.needs_catalog,
               "catalogFormats": list(r.catalog_formats)} for r in found])
    rows = [(r.command_name, r.name, r.summary, ", ".join(r.catalog_formats) if r.needs_catalog else "")
            for r in found]
    ctx.say(table(rows, ("format", "reader", "what", "catalog")))
    return 0


def list_datasets(ctx: Ctx) -> list[data_pb2.Dataset]:
    datasets = list(all_pages(stub(ctx).ListDatasets, data_pb2.ListDatasetsRequest(), "datasets", timeout=30))
    ctx.emit([to_dict(d) for d in datasets])
    rows = [(d.name, sum(s.windows for s in d.splits), " ".join(f"{s.split}={s.windows}" for s in d.splits),
             d.window_samples, f"{d.sampling_rate_hz:g}", d.component_order, human_bytes(d.size_bytes))
            for d in datasets]
    ctx.say(table(rows, ("name", "windows", "splits", "samples", "Hz", "comp", "size")))
    return datasets


def describe_dataset(ctx: Ctx, name: str) -> data_pb2.DescribeDatasetResponse:
    response = stub(ctx).DescribeDataset(data_pb2.DescribeDatasetRequest(name=name), timeout=30)
    ctx.emit(to_dict(response))
    d = response.dataset
    ctx.say(f"dataset {d.name}  (manifest sha256 {d.manifest_sha256[:16]}..., version {d.version})")
    ctx.say(f"  windows of {d.window_samples} samples at {d.sampling_rate_hz:g} Hz, components {d.component_order},"
            f" {human_bytes(d.size_bytes)}")
    if d.description:
        ctx.say(f"  {d.description}")
    rows = [(s.split, s.windows, ", ".join(f"{k}={v}" for k, v in sorted(s.categories.items()))) for s in d.splits]
    ctx.say(table(rows, ("split", "windows", "categories")))
    return response


def delete_dataset(ctx: Ctx, name: str, force: bool = False) -> int:
    """DeleteDataset; refused by the service (with the list) while jobs or model versions use it, unless forced."""
    response = stub(ctx).DeleteDataset(data_pb2.DeleteDatasetRequest(name=name, force=force), timeout=60)
    deleted = response.objects_deleted
    ctx.emit({"name": name, **to_dict(response)})
    ctx.say(f"deleted dataset {name!r} ({deleted} objects)")
    return deleted


# -- argparse ----------------------------------------------------------------------------------
def _floats(text: str, n: int, flag: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != n:
        raise CliError(f"{flag}: expected {n} comma-separated numbers, got {text!r}")
    return values


def options_from_args(args: argparse.Namespace) -> IngestOptions:
    return IngestOptions(
        length_s=args.window_s, sampling_rate_hz=args.rate, p_offset_s=args.p_offset,
        p_offset_range=_floats(args.p_offset_range, 2, "--p-offset-range") if args.p_offset_range else None,
        include_noise=not args.no_noise, noise_per_event=args.noise_per_event, location_clusters=args.clusters,
        noise_margin_s=args.noise_margin_s,
        detrend=args.detrend, taper=args.taper, freqmin=args.freqmin, freqmax=args.freqmax,
        components=args.components, gaps=args.gaps, normalization=args.normalization,
        max_upsampling=args.max_upsampling,
        magnitude_types=tuple(t for t in (args.magnitude_types or "").split(",") if t),
        min_magnitude=args.min_magnitude, max_magnitude=args.max_magnitude, min_snr_db=args.min_snr,
        min_distance_km=args.min_distance, max_distance_km=args.max_distance, max_count=args.max_count,
        split=_floats(args.split, 3, "--split"), split_by=args.split_by, shard_size=args.shard_size,
        float16=args.float16, seed=args.seed, description=args.description, workers=args.workers)


def cmd_ingest(ctx: Ctx, args: argparse.Namespace) -> int:
    """Check everything (options, files, the name) before the first byte is uploaded, then ingest."""
    options = options_from_args(args)
    check_request(args.name, options)
    fmt = args.format
    if args.keys:
        fmt = fmt or _readers().get_reader(_readers().DEFAULT_FORMAT).command_name
        _catalog_required(fmt, args.catalog)
    else:
        fmt = fmt or guess_format(args.inputs)
        _catalog_required(fmt, args.catalog)
        if not args.local:
            check_inputs(fmt, args.inputs, args.catalog, options.length_s)
    check_name_free(ctx, args.name)
    sources = build_sources(ctx, fmt, args.inputs, catalog=args.catalog, catalog_format=args.catalog_format,
                            local=args.local, keys=args.keys)
    ingest(ctx, args.name, sources, options, wait=not args.no_wait)
    return 0


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    data = sub.add_parser("data", help="datasets: ingest, list, describe, delete")
    dsub = data.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("ingest", parents=[common], help="create a dataset from source files and watch the job")
    p.add_argument("name", help="dataset name")
    p.add_argument("inputs", nargs="+", help="files or folders (or object keys with --keys)")
    p.add_argument("--format", default=None,
                   help="source format, one of `quakestack data formats` (default: from the first input's "
                        "extension or content)")
    p.add_argument("--catalog", help="pick catalog (mseed sources need one)")
    p.add_argument("--catalog-format", help="one the format reads (`quakestack data formats`; default: from the "
                                            "extension)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--local", action="store_true", help="paths on the server, under QUAKESTACK_DATA_ALLOWED_DIRS")
    how.add_argument("--keys", action="store_true", help="inputs are object keys / prefixes in the bucket")
    g = p.add_argument_group("windows")
    g.add_argument("--window-s", type=float, default=60.0, help="window length in s (default 60)")
    g.add_argument("--rate", type=float, default=100.0, help="sampling rate in Hz (default 100)")
    g.add_argument("--p-offset", type=float, default=0.0, help="P at this many s into the window (0: source's)")
    g.add_argument("--p-offset-range", metavar="MIN,MAX", help="draw the P offset per window from this range")
    g.add_argument("--no-noise", action="store_true", help="leave out noise windows")
    g.add_argument("--noise-per-event", type=int, default=0, help="noise windows per event (continuous data)")
    g.add_argument("--noise-margin-s", type=float, default=DEFAULT_NOISE_MARGIN_S,
                   help="continuous data: noise windows keep this many seconds from every pick and origin time "
                        "(default %(default)g; records without such a stretch give no noise, and the summary says so)")
    g.add_argument("--clusters", type=int, default=0, help="k-means location clusters (ConvNetQuake)")
    g = p.add_argument_group("preprocessing")
    g.add_argument("--detrend", action="store_true")
    g.add_argument("--taper", type=float, default=0.0, help="cosine taper fraction")
    g.add_argument("--freqmin", type=float, default=0.0, help="band-pass lower corner, Hz")
    g.add_argument("--freqmax", type=float, default=0.0, help="band-pass upper corner, Hz")
    g.add_argument("--components", default="ZNE")
    g.add_argument("--gaps", choices=sorted(GAPS), default="zeros",
                   help="samples a record lacks (gaps, NaN): zeros (default) fills them with zeros, interpolate "
                        "linearly, drop skips the record; filled windows are counted in the summary and each "
                        "window's count is its metadata's trace_gap_filled_samples")
    g.add_argument("--max-upsampling", type=float, default=DEFAULT_MAX_UPSAMPLING,
                   help="skip (and count) a record that would be upsampled by more than this factor to --rate "
                        "(default %(default)g: 40 Hz to 100 Hz passes, 20 Hz does not)")
    g.add_argument("--normalization", choices=sorted(NORMALIZATIONS), default="none")
    g = p.add_argument_group("filters")
    g.add_argument("--magnitude-types", help="comma-separated, e.g. ml,md")
    g.add_argument("--min-magnitude", type=float)
    g.add_argument("--max-magnitude", type=float)
    g.add_argument("--min-snr", type=float, help="dB")
    g.add_argument("--min-distance", type=float, help="km")
    g.add_argument("--max-distance", type=float, help="km")
    g.add_argument("--max-count", type=int, default=0)
    g = p.add_argument_group("split and shards")
    g.add_argument("--split", default="0.8,0.1,0.1", metavar="TRAIN,VAL,TEST")
    g.add_argument("--split-by", choices=("event", "time"), default="event")
    g.add_argument("--shard-size", type=int, default=0, help="windows per shard (default 1024)")
    g.add_argument("--float16", action="store_true", help="store float16 samples")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--description", default="")
    g.add_argument("--workers", type=int, default=0,
                   help="workers rendering shards side by side (pods of an Indexed Job on Kubernetes; default 1)")
    p.add_argument("--no-wait", action="store_true", help="return once the job is queued")
    p.set_defaults(func=cmd_ingest)
    dsub.add_parser("formats", parents=[common], help="source formats --format accepts").set_defaults(
        func=lambda ctx, a: list_formats(ctx))
    dsub.add_parser("ls", parents=[common], help="list datasets").set_defaults(
        func=lambda ctx, a: list_datasets(ctx) and 0)
    p = dsub.add_parser("describe", parents=[common], help="a dataset's splits, categories and manifest")
    p.add_argument("name")
    p.set_defaults(func=lambda ctx, a: describe_dataset(ctx, a.name) and 0)
    p = dsub.add_parser("rm", parents=[common], help="delete a dataset (refused while jobs or models use it)")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="delete even if training jobs or model versions use it")
    p.set_defaults(func=lambda ctx, a: delete_dataset(ctx, a.name, a.force) and 0)
    p = dsub.add_parser("jobs", parents=[common], help="list ingestion jobs, newest first")
    add_job_filters(p, dataset=True)
    p.set_defaults(func=lambda ctx, a: list_dataset_jobs(ctx, a) and 0)
    p = dsub.add_parser("watch", parents=[common], help="follow an ingestion job")
    p.add_argument("job_id")
    p.set_defaults(func=lambda ctx, a: watch_job(ctx, a.job_id) and 0)
