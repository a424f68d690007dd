"""DataService over gRPC on the real stack: ingest, watch, datasets, determinism, cancel, bad inputs.

Faults (a killed service or worker, replicas) are in test_data_restart.py."""

from __future__ import annotations

import csv
import os
import shutil
import time
import uuid
from collections import Counter
from pathlib import Path

import grpc
import h5py
import numpy as np
import pandas as pd
import pytest
from obspy import UTCDateTime

from quakestack.data import read_shard
from quakestack.data.synthetic import write_catalog, write_continuous, write_stead, write_stead_from_metadata
from quakestack.storage import ObjectStore
from quakestack.v1 import common_pb2, data_pb2, data_pb2_grpc
from tests.conftest import SHARED_DATA
from tests.helpers import sample_value, scrape
from tests.trainer.conftest import stored_events

REAL_CSV = str(SHARED_DATA / "stead_100samples.csv")
D = data_pb2
STEAD, SEISBENCH, CATALOG = D.SOURCE_FORMAT_STEAD, D.SOURCE_FORMAT_SEISBENCH, D.SOURCE_FORMAT_WAVEFORM_CATALOG
SUCCEEDED, FAILED = common_pb2.JOB_STATE_SUCCEEDED, common_pb2.JOB_STATE_FAILED
CANCELLED = common_pb2.JOB_STATE_CANCELLED


# ------------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def stub(data_channel) -> data_pb2_grpc.DataServiceStub:
    return data_pb2_grpc.DataServiceStub(data_channel)


def _key(loc: str) -> common_pb2.Location:
    return common_pb2.Location(local_path=loc) if loc.startswith("/") else common_pb2.Location(object_key=loc)


def _put(store: ObjectStore, paths: list[str], prefix: str | None = None) -> str:
    prefix = prefix or f"incoming/{uuid.uuid4().hex[:8]}"
    for p in paths:
        store.put_file(f"{prefix}/{os.path.basename(p)}", p)
    return prefix


def _request(name: str, waveforms: str, fmt=STEAD, catalog: str | None = None, cat_fmt=0,
             **kw) -> D.CreateDatasetRequest:
    source = D.DataSource(format=fmt, waveforms=_key(waveforms), catalog_format=cat_fmt)
    if catalog:
        source.catalog.CopyFrom(_key(catalog))
    kw.setdefault("window", D.WindowSpec(include_noise=True))
    kw.setdefault("shard_size", 40)
    kw.setdefault("seed", 3)
    return D.CreateDatasetRequest(name=name, sources=[source], **kw)


def _run(stub, request, timeout_s: float = 180) -> tuple[D.DatasetJob, list[D.DatasetJob]]:
    """Create, then watch to the end; returns (final job, every watched state)."""
    job = stub.CreateDataset(request, timeout=30).job
    assert job.state in (common_pb2.JOB_STATE_QUEUED, common_pb2.JOB_STATE_RUNNING)
    seen = [r.job for r in stub.WatchDatasetJob(D.WatchDatasetJobRequest(job_id=job.job_id), timeout=timeout_s)]
    return seen[-1], seen


def _manifest(store: ObjectStore, name: str) -> dict:
    return store.get_json(f"datasets/{name}/manifest.json")


def _download(store: ObjectStore, name: str, shard: dict, dest: Path) -> Path:
    out = dest / name / shard["key"]
    for fname, f in shard["files"].items():
        store.get_file(f"datasets/{name}/{f['key']}", out / fname, sha256=f["sha256"])
    return out


def _all_rows(store: ObjectStore, name: str, dest: Path) -> tuple[np.ndarray, pd.DataFrame]:
    xs, metas = [], []
    for shard in _manifest(store, name)["shards"]:
        x, meta = read_shard(str(_download(store, name, shard, dest)))
        xs.append(x)
        metas.append(meta)
    return np.concatenate(xs), pd.concat(metas, ignore_index=True)


def _csv_rows() -> list[dict]:
    with open(REAL_CSV, newline="") as fh:
        return list(csv.DictReader(fh))


def _code(exc: pytest.ExceptionInfo) -> grpc.StatusCode:
    return exc.value.code()


# --------------------------------------------------------------------------------------------- STEAD
@pytest.fixture(scope="module")
def real_prefix(store, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("stead_real")
    h5, csv_path = write_stead_from_metadata(REAL_CSV, str(out), seed=7)
    return _put(store, [h5, csv_path])


@pytest.fixture(scope="module")
def real_dataset(stub, real_prefix) -> tuple[str, D.DatasetJob, list[D.DatasetJob]]:
    name = f"stead-real-{uuid.uuid4().hex[:6]}"
    job, seen = _run(stub, _request(name, real_prefix, description="real STEAD rows"))
    assert job.state == SUCCEEDED, job.error
    return name, job, seen


def test_sample_dataset_returns_the_splits_first_windows_with_their_labels(stub, store, real_dataset, tmp_path):
    name, _, _ = real_dataset
    reply = stub.SampleDataset(D.SampleDatasetRequest(name=name, split="train", count=5), timeout=30)
    x = np.frombuffer(reply.waveforms.data, "<f4").reshape(list(reply.waveforms.shape))
    first = next(sh for sh in _manifest(store, name)["shards"] if sh["split"] == "train")
    stored, meta = read_shard(str(_download(store, name, first, tmp_path)), dtype="float32")
    assert reply.split == "train" and x.shape == (5, 3, 6000) and np.array_equal(x, stored[:5])
    assert reply.waveforms.component_order == "ZNE" and reply.waveforms.sampling_rate_hz == 100.0
    for label, row in zip(reply.labels, meta.head(5).itertuples(), strict=True):
        assert (label.trace_name, label.p_arrival_sample, label.s_arrival_sample, label.magnitude) == (
            row.trace_name, row.trace_p_arrival_sample, row.trace_s_arrival_sample, row.source_magnitude)
        assert label.magnitude_type == row.source_magnitude_type and label.station.count(".") == 2
    assert len(stub.SampleDataset(D.SampleDatasetRequest(name=name), timeout=30).labels) == 4  # default count
    for bad, code in ((D.SampleDatasetRequest(name=name, count=17), grpc.StatusCode.INVALID_ARGUMENT),
                      (D.SampleDatasetRequest(name=name, split="holdout"), grpc.StatusCode.INVALID_ARGUMENT),
                      (D.SampleDatasetRequest(name="no-such-dataset"), grpc.StatusCode.NOT_FOUND)):
        with pytest.raises(grpc.RpcError) as exc:
            stub.SampleDataset(bad, timeout=30)
        assert _code(exc) == code, exc.value.details()


def test_stead_every_row_accounted_and_labels_equal_csv(stub, store, real_dataset, tmp_path, stack):
    name, job, seen = real_dataset
    rows = {r["trace_name"]: r for r in _csv_rows()}
    manifest = _manifest(store, name)
    assert manifest["counts"]["listed"] == 100 and manifest["counts"]["written"] + manifest["counts"]["skipped"] == 100
    assert job.progress.windows_written == manifest["counts"]["written"] == 100 and dict(job.skipped) == {}
    x, meta = _all_rows(store, name, tmp_path)
    assert sorted(meta.trace_source_name) == sorted(rows) and x.shape == (100, 3, 6000)
    for r in meta.itertuples():
        row = rows[r.trace_source_name]
        assert r.trace_p_arrival_sample == float(row["p_arrival_sample"])
        assert r.trace_s_arrival_sample == float(row["s_arrival_sample"])
        assert r.source_magnitude == float(row["source_magnitude"])
        assert r.source_magnitude_type == row["source_magnitude_type"].lower()
        assert r.source_id == row["source_id"]
    # the summary and the manifest agree
    ds = stub.GetDataset(D.GetDatasetRequest(name=name), timeout=10).dataset
    assert ds.window_samples == 6000 and ds.sampling_rate_hz == 100 and ds.component_order == "ZNE"
    assert sum(s.windows for s in ds.splits) == 100 and ds.description == "real STEAD rows"
    assert [s.split for s in ds.splits] == ["train", "val", "test"]
    assert sum(s.categories["earthquake"] for s in ds.splits) == 100
    assert ds.size_bytes == sum(f["size"] for sh in manifest["shards"] for f in sh["files"].values()) > 100 * 72000
    assert ds.manifest_sha256 == store.stat(f"datasets/{name}/manifest.json").sha256
    described = stub.DescribeDataset(D.DescribeDatasetRequest(name=name), timeout=10)
    assert described.manifest["counts"]["written"] == 100 and described.dataset == ds
    assert name in [d.name for d in stub.ListDatasets(D.ListDatasetsRequest(), timeout=10).datasets]
    # the watch began with the queued/running job and walked the phases to the end
    phases = [j.progress.phase for j in seen]
    assert seen[0].state in (common_pb2.JOB_STATE_QUEUED, common_pb2.JOB_STATE_RUNNING)
    assert "writing" in phases and phases[-1] == "done" and seen[-1].end_time.seconds > 0
    listed = stub.ListDatasetJobs(D.ListDatasetJobsRequest(page_size=1000), timeout=10).jobs
    assert job.job_id in [j.job_id for j in listed]
    metrics = scrape(f"http://127.0.0.1:{stack.settings.data_metrics_port}/metrics")
    assert sample_value(metrics, "quakestack_windows_written_total") >= 100  # every dataset's, never per dataset
    assert sample_value(metrics, "quakestack_bytes_stored_total", kind="shard") >= ds.size_bytes


def test_magnitude_scale_filter_keeps_what_the_csv_says(stub, store, real_prefix, tmp_path):
    rows = _csv_rows()
    want = Counter(r["source_magnitude_type"].lower() for r in rows)
    assert want == {"ml": 97, "mb": 2, "mw": 1}
    names = {scales: f"stead-{'-'.join(scales)}-{uuid.uuid4().hex[:6]}" for scales in (("ml",), ("MB", "mw"))}
    jobs = {s: stub.CreateDataset(_request(n, real_prefix, filters=D.Filters(magnitude_types=list(s))), timeout=30).job
            for s, n in names.items()}
    for scales, job in jobs.items():
        end = list(stub.WatchDatasetJob(D.WatchDatasetJobRequest(job_id=job.job_id), timeout=120))[-1].job
        assert end.state == SUCCEEDED, end.error
        _, meta = _all_rows(store, names[scales], tmp_path)
        assert dict(Counter(meta.source_magnitude_type)) == {s.lower(): want[s.lower()] for s in scales}
        assert _manifest(store, names[scales])["counts"]["selected"] == len(meta)


def test_downloaded_shard_opens_with_seisbench(store, real_dataset, tmp_path):
    sbd = pytest.importorskip("seisbench.data")
    name = real_dataset[0]
    shard = _manifest(store, name)["shards"][0]
    directory = _download(store, name, shard, tmp_path)
    x, meta = read_shard(str(directory))
    ds = sbd.WaveformDataset(str(directory), component_order="ZNE", dimension_order="NCW", sampling_rate=100)
    assert len(ds) == shard["count"] == len(meta)
    np.testing.assert_array_equal(ds.get_waveforms(np.arange(len(ds))), x)
    for col in ("trace_p_arrival_sample", "trace_s_arrival_sample", "source_magnitude"):
        np.testing.assert_array_equal(ds.metadata[col].to_numpy(float), meta[col].to_numpy(float))


def test_same_request_gives_identical_shards(stub, store, real_prefix, real_dataset):
    name = real_dataset[0]
    again = f"{name}-again"
    job, _ = _run(stub, _request(again, real_prefix, description="real STEAD rows"))
    assert job.state == SUCCEEDED, job.error

    def digests(n: str) -> list:
        return [(s["key"], s["plan_sha256"], sorted((k, f["sha256"]) for k, f in s["files"].items()))
                for s in _manifest(store, n)["shards"]]

    assert digests(name) == digests(again) and len(digests(name)) == 4  # 80 train windows in shards of 40
    deleted = stub.DeleteDataset(D.DeleteDatasetRequest(name=again), timeout=30).objects_deleted
    assert deleted == 1 + 2 * 4  # the manifest and two files per shard (the catalog row goes first)
    assert store.list(f"datasets/{again}/") == []
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetDataset(D.GetDatasetRequest(name=again), timeout=10)
    assert _code(exc) == grpc.StatusCode.NOT_FOUND


# ------------------------------------------------------------------------------------ miniSEED + picks
@pytest.fixture(scope="module")
def continuous(stack):
    out = Path(stack.settings.data_allowed_dirs[0]) / "cont"
    paths, qml, truth = write_continuous(str(out), seed=11, duration_s=900, n_events=4, catalog_formats=("csv",))
    return out, paths, qml, truth


def _onset_at(z: np.ndarray, p: int) -> bool:
    d = np.abs(np.diff(z.astype(np.float64)))
    return bool(d[p - 1 : p + 3].max() > 3 * d[p - 200 : p - 1].max())


@pytest.mark.parametrize("how", ["quakeml-from-storage", "csv-local-paths"])
def test_miniseed_with_picks_p_at_offset_noise_pick_free(stub, store, continuous, tmp_path, how):
    out, paths, qml, truth = continuous
    window = D.WindowSpec(length_s=20, p_offset_s=4, include_noise=True, noise_windows_per_event=1)
    name = f"cont-{how}-{uuid.uuid4().hex[:6]}"
    if how == "quakeml-from-storage":
        prefix = _put(store, paths)
        cat = _put(store, [qml]) + "/" + os.path.basename(qml)
        request = _request(name, prefix, CATALOG, cat, D.CATALOG_FORMAT_QUAKEML, window=window, shard_size=100)
    else:
        assert {os.path.dirname(p) for p in paths} == {str(out)}  # the folder holds the catalogs too
        request = _request(name, str(out), CATALOG, str(out / "catalog.csv"), D.CATALOG_FORMAT_CSV, window=window,
                           shard_size=100)
    job, _ = _run(stub, request)
    assert job.state == SUCCEEDED, job.error
    x, meta = _all_rows(store, name, tmp_path)
    ev = meta[meta.trace_category == "earthquake"]
    assert len(ev) == 4 * len(paths) and (ev.trace_p_arrival_sample == 400).all()
    for i in ev.index:
        assert _onset_at(x[i, 0], 400) and not _onset_at(x[i, 0], 410)
    noise = meta[meta.trace_category == "noise"]
    assert 0 < len(noise) <= len(ev) and noise.trace_p_arrival_sample.isna().all()
    picks = np.array([float(pk["time"].timestamp) for e in truth for pk in e["picks"]])
    for r in noise.itertuples():
        t0 = float(UTCDateTime(r.trace_start_time).timestamp)
        assert not ((picks >= t0) & (picks <= t0 + 20)).any()


# ---------------------------------------------------------------------------------------- bad inputs
def _rpc_error(stub, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as exc:
        stub.CreateDataset(request, timeout=30)
    return exc.value


def test_requests_refused_in_the_rpc(stub, store, real_prefix, real_dataset, stack):
    name = real_dataset[0]
    cases = [
        (_request("ratios", real_prefix, split=D.SplitSpec(train=0.5, val=0.3, test=0.1)),
         grpc.StatusCode.INVALID_ARGUMENT, "split ratios must sum to 1"),
        (_request("neg", real_prefix, window=D.WindowSpec(length_s=-5)), grpc.StatusCode.INVALID_ARGUMENT,
         "window.length_s must be > 0, got -5"),
        (_request("rate", real_prefix, window=D.WindowSpec(sampling_rate_hz=-100)), grpc.StatusCode.INVALID_ARGUMENT,
         "window.sampling_rate_hz must be > 0"),
        (_request("../up", real_prefix), grpc.StatusCode.INVALID_ARGUMENT, "dataset name '../up'"),
        (_request("crowd", real_prefix, workers=257), grpc.StatusCode.INVALID_ARGUMENT,
         "workers must be in [1, 256], got 257"),
        (_request("negative", real_prefix, workers=-2), grpc.StatusCode.INVALID_ARGUMENT,
         "workers must be in [1, 256], got -2"),
        (_request("fmt", real_prefix, fmt=0), grpc.StatusCode.INVALID_ARGUMENT,
         "sources[0].format 0 (SOURCE_FORMAT_UNSPECIFIED) is not valid; valid: SOURCE_FORMAT_STEAD"),
        (_request(name, real_prefix), grpc.StatusCode.ALREADY_EXISTS, f"dataset {name!r} already exists"),
        (_request("outside", "/etc"), grpc.StatusCode.PERMISSION_DENIED,
         "/etc is outside QUAKESTACK_DATA_ALLOWED_DIRS"),
        (_request("escape", str(Path(stack.settings.data_allowed_dirs[0]) / ".." / "s3")),
         grpc.StatusCode.PERMISSION_DENIED, "outside QUAKESTACK_DATA_ALLOWED_DIRS"),
        (_request("missing", "incoming/does-not-exist/x.hdf5"), grpc.StatusCode.NOT_FOUND,
         "no object 'incoming/does-not-exist/x.hdf5'"),
    ]
    for request, code, text in cases:
        err = _rpc_error(stub, request)
        assert err.code() == code and text in err.details(), (request.name, err.code(), err.details())
    for call, req in ((stub.GetDataset, D.GetDatasetRequest(name="nope")),
                      (stub.DescribeDataset, D.DescribeDatasetRequest(name="nope")),
                      (stub.DeleteDataset, D.DeleteDatasetRequest(name="nope")),
                      (stub.GetDatasetJob, D.GetDatasetJobRequest(job_id="nope"))):
        with pytest.raises(grpc.RpcError) as exc:
            call(req, timeout=10)
        assert _code(exc) == grpc.StatusCode.NOT_FOUND and "'nope' not found" in exc.value.details()


@pytest.fixture(scope="module")
def small_stead(tmp_path_factory) -> tuple[str, str]:
    out = tmp_path_factory.mktemp("small_stead")
    ((h5, csv_path),) = write_stead(str(out), n_events=8, n_noise=2, seed=5)
    return h5, csv_path


def test_bad_sources_fail_or_skip_with_precise_messages(stub, store, small_stead, continuous, real_dataset, tmp_path):
    h5, csv_path = small_stead
    before = store.stat(f"datasets/{real_dataset[0]}/manifest.json").sha256
    # corrupt HDF5: the job fails naming the object
    garbage = tmp_path / "garbage" / "chunk0.hdf5"
    garbage.parent.mkdir()
    garbage.write_bytes(os.urandom(4096))
    shutil.copy(csv_path, garbage.parent / "chunk0.csv")
    prefix = _put(store, [str(garbage), str(garbage.parent / "chunk0.csv")])
    # truncated HDF5
    trunc = tmp_path / "trunc" / "chunk0.hdf5"
    trunc.parent.mkdir()
    data = Path(h5).read_bytes()
    trunc.write_bytes(data[: len(data) // 3])
    shutil.copy(csv_path, trunc.parent / "chunk0.csv")
    trunc_prefix = _put(store, [str(trunc), str(trunc.parent / "chunk0.csv")])
    # CSV missing a required column
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False).drop(columns=["receiver_code"])
    nocol = tmp_path / "nocol"
    nocol.mkdir()
    shutil.copy(h5, nocol / "chunk0.hdf5")
    df.to_csv(nocol / "chunk0.csv", index=False)
    nocol_prefix = _put(store, [str(nocol / "chunk0.hdf5"), str(nocol / "chunk0.csv")])
    # NaN samples in two traces of a good file: skipped and counted, never fatal
    nan = tmp_path / "nan"
    nan.mkdir()
    shutil.copy(h5, nan / "chunk0.hdf5")
    shutil.copy(csv_path, nan / "chunk0.csv")
    with h5py.File(nan / "chunk0.hdf5", "r+") as f:
        for trace in list(f["data"])[:2]:
            arr = f["data"][trace][()]
            arr[100:200, 1] = np.nan
            f["data"][trace][...] = arr
    nan_prefix = _put(store, [str(nan / "chunk0.hdf5"), str(nan / "chunk0.csv")])
    # truncated miniSEED
    out, paths, qml, truth = continuous
    mseed = tmp_path / "XS.TRUNC.00.mseed"
    shutil.copy(paths[0], mseed)
    os.truncate(mseed, os.path.getsize(mseed) // 2 + 1000)
    mseed_prefix = _put(store, [str(mseed)])
    qml_key = _put(store, [qml]) + "/" + os.path.basename(qml)
    # a pick matching no waveform
    events = [dict(e, picks=list(e["picks"])) for e in truth]
    events[0]["picks"].append({"seed_id": "XS.NOPE.00.HHZ", "phase": "P", "time": events[0]["picks"][0]["time"]})
    extra_csv = write_catalog(events, str(tmp_path / "extra.csv"), "csv")
    extra_key = _put(store, [extra_csv]) + "/extra.csv"
    wave_prefix = _put(store, paths)
    cat_window = D.WindowSpec(length_s=20, p_offset_s=4)

    u = uuid.uuid4().hex[:6]
    cases = {
        f"garbage-{u}": (_request(f"garbage-{u}", prefix), FAILED, f"{prefix}/chunk0.hdf5: cannot open HDF5 file"),
        f"trunc-{u}": (_request(f"trunc-{u}", trunc_prefix), FAILED, f"{trunc_prefix}/chunk0.hdf5: cannot open HDF5"),
        f"nocol-{u}": (_request(f"nocol-{u}", nocol_prefix), FAILED,
                       f"{nocol_prefix}/chunk0.csv: metadata CSV is missing required columns: receiver_code"),
        f"long-{u}": (_request(f"long-{u}", _put(store, [h5, csv_path]),
                               window=D.WindowSpec(length_s=70, include_noise=True)), FAILED,
                      "no windows to write: 10 items listed; window longer than trace: 10"),
        f"mseed-{u}": (_request(f"mseed-{u}", mseed_prefix, CATALOG, qml_key, D.CATALOG_FORMAT_QUAKEML,
                                window=cat_window), FAILED,
                       f"{mseed_prefix}/XS.TRUNC.00.mseed: truncated miniSEED: file size"),
        f"nan-{u}": (_request(f"nan-{u}", nan_prefix), SUCCEEDED, ""),
        f"nopick-{u}": (_request(f"nopick-{u}", wave_prefix, CATALOG, extra_key, D.CATALOG_FORMAT_CSV,
                                 window=cat_window), SUCCEEDED, ""),
    }
    jobs = {n: stub.CreateDataset(req, timeout=30).job for n, (req, _, _) in cases.items()}
    ended = {n: list(stub.WatchDatasetJob(D.WatchDatasetJobRequest(job_id=j.job_id), timeout=180))[-1].job
             for n, j in jobs.items()}
    for n, (_, state, text) in cases.items():
        job = ended[n]
        assert job.state == state and text in job.error, (n, job.state, job.error)
        assert store.exists(f"datasets/{n}/manifest.json") == (state == SUCCEEDED)
    assert dict(ended[f"nan-{u}"].skipped) == {"non-finite samples (NaN/inf)": 2}
    assert ended[f"nan-{u}"].progress.windows_written == 8
    assert any("chunk0.hdf5" in w and "non-finite" in w for w in ended[f"nan-{u}"].warnings)
    assert dict(ended[f"nopick-{u}"].skipped) == {"pick matches no waveform": 1}
    assert any("XS.NOPE.00.HHZ" in w for w in ended[f"nopick-{u}"].warnings)
    # nothing stored before was touched
    assert store.stat(f"datasets/{real_dataset[0]}/manifest.json").sha256 == before


def test_wrong_sampling_rate_in_seisbench_metadata_is_skipped(stub, store, real_dataset, tmp_path):
    shard = _manifest(store, real_dataset[0])["shards"][0]
    directory = _download(store, real_dataset[0], shard, tmp_path)
    meta = pd.read_csv(directory / "metadata.csv", dtype=str, keep_default_na=False)
    meta.loc[:2, "trace_sampling_rate_hz"] = "0"
    meta.to_csv(directory / "metadata.csv", index=False)
    prefix = _put(store, [str(directory / "waveforms.hdf5"), str(directory / "metadata.csv")])
    name = f"sb-{uuid.uuid4().hex[:6]}"
    job, _ = _run(stub, _request(name, prefix, SEISBENCH))
    assert job.state == SUCCEEDED, job.error
    assert sum(job.skipped.values()) == 3 and job.progress.windows_written == shard["count"] - 3, dict(job.skipped)


def test_cancel_leaves_no_manifest(stub, store, metadata, small_stead):
    prefix = _put(store, list(small_stead))
    name = f"cancel-{uuid.uuid4().hex[:6]}"
    slow = D.Preprocessing(detrend=True, taper_fraction=0.05, freqmin_hz=1, freqmax_hz=20)
    job = stub.CreateDataset(_request(name, prefix, shard_size=1, preprocessing=slow,
                                      window=D.WindowSpec(include_noise=True, sampling_rate_hz=40)), timeout=30).job
    cancelled = stub.CancelDatasetJob(D.CancelDatasetJobRequest(job_id=job.job_id), timeout=30).job
    assert cancelled.state == CANCELLED
    assert not store.exists(f"datasets/{name}/manifest.json")
    with pytest.raises(grpc.RpcError) as exc:
        stub.CancelDatasetJob(D.CancelDatasetJobRequest(job_id=job.job_id), timeout=30)
    assert _code(exc) == grpc.StatusCode.FAILED_PRECONDITION
    states = [e["state"] for e in stored_events(metadata, job.job_id) if e["type"] == "state"]
    assert states[-1] == "CANCELLED", states


def test_watchers_many_and_slow(stub, store, small_stead):
    prefix = _put(store, list(small_stead))
    name = f"watch-{uuid.uuid4().hex[:6]}"
    job = stub.CreateDataset(_request(name, prefix, shard_size=2), timeout=30).job
    streams = [stub.WatchDatasetJob(D.WatchDatasetJobRequest(job_id=job.job_id), timeout=120) for _ in range(5)]
    slow = streams.pop()
    first = next(slow)
    ends = [list(s)[-1].job for s in streams]
    assert all(e.state == SUCCEEDED for e in ends)
    time.sleep(0.5)
    rest = [r.job for r in slow]
    assert first.job.job_id == job.job_id and rest[-1].state == SUCCEEDED and rest[-1].progress.windows_written == 10
