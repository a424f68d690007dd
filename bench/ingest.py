"""Ingest N synthetic STEAD traces through the data service into shards on a local S3, versus the limit.

The limit is what no ingester can beat on this machine: reading the same traces with h5py plus
putting the same number of bytes (the shards' total, in shard-sized objects) to the same S3, one
after the other in one process. The ingest is timed end to end through the service (CreateDataset
until the job SUCCEEDED: listing, reading, windowing, writing SeisBench shards, sha256, uploading,
manifest), once with one render process and once with two, then with the job fanned out over two job
workers of one render process each (`workers=2`: the same two render processes, split between two
worker processes that each plan and upload; `fanout_vs_one_worker` compares it with the two-process
run, since on one machine fan-out only redistributes the cores; on Kubernetes each worker is a pod).
The source is an allow-listed local path, as the limit reads from local disk too. Prints one JSON
object as its last line.

    python bench/ingest.py [--quick] [--traces N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quakestack.client import channel  # noqa: E402
from quakestack.config import load_settings  # noqa: E402
from quakestack.data.synthetic import write_stead  # noqa: E402
from quakestack.embedded.seaweed import SeaweedServer  # noqa: E402
from quakestack.stack import Stack, with_free_ports  # noqa: E402
from quakestack.storage import ObjectStore  # noqa: E402
from quakestack.v1 import common_pb2, data_pb2, data_pb2_grpc  # noqa: E402

SHARD_SIZE = 128


def ingest(settings, state_dir: Path, source_dir: str, name: str, workers: int, fanout: int = 1) -> dict:
    """Start a data service with `workers` render processes, ingest with `fanout` job workers sharing them
    (quakestack.jobs.fanout: each gets workers // fanout), return the job's figures."""
    own = Stack(settings.replace(data_workers=workers), state_dir=state_dir / f"svc-{workers}-{fanout}")
    own.log_dir.mkdir(parents=True, exist_ok=True)
    own.settings = with_free_ports(own.settings)
    own.start_process("data")
    try:
        own.wait_healthy(60, names=("data",))
        with channel(own.settings.data_addr) as ch:
            stub = data_pb2_grpc.DataServiceStub(ch)
            request = data_pb2.CreateDatasetRequest(
                name=name, seed=1, shard_size=SHARD_SIZE, window=data_pb2.WindowSpec(include_noise=True),
                workers=fanout,
                sources=[data_pb2.DataSource(format=data_pb2.SOURCE_FORMAT_STEAD,
                                             waveforms=common_pb2.Location(local_path=source_dir))])
            started = time.perf_counter()
            job = stub.CreateDataset(request, timeout=30).job
            last, phases = None, {}
            for event in stub.WatchDatasetJob(data_pb2.WatchDatasetJobRequest(job_id=job.job_id), timeout=600):
                last = event.job
                phases.setdefault(last.progress.phase, round(time.perf_counter() - started, 2))
            seconds = time.perf_counter() - started
            if last is None or last.state != common_pb2.JOB_STATE_SUCCEEDED:
                raise SystemExit(f"ingest failed: {last}\n{own.log_tail('data')}")
            dataset = stub.GetDataset(data_pb2.GetDatasetRequest(name=name), timeout=30).dataset
    finally:
        own.stop()
    return {"seconds": seconds, "windows": last.progress.windows_written, "bytes": dataset.size_bytes,
            "writing_windows_per_s": last.progress.windows_per_s, "phases_at_s": phases}


def limit(h5_path: str, store: ObjectStore, n_bytes: int, n_windows: int) -> dict:
    """h5py read of every trace + put of the same bytes in shard-sized objects, back to back."""
    started = time.perf_counter()
    with h5py.File(h5_path, "r") as f:
        group = f["data"]
        arrays = [np.ascontiguousarray(group[name][()].T, dtype=np.float32) for name in group]
    read_s = time.perf_counter() - started
    per_object = max(1, n_bytes * SHARD_SIZE // max(n_windows, 1))
    payload = np.concatenate([a.ravel() for a in arrays]).view(np.uint8).tobytes()
    payload = (payload * (1 + n_bytes // max(len(payload), 1)))[:n_bytes]
    started = time.perf_counter()
    for i, a in enumerate(range(0, n_bytes, per_object)):
        store.put_bytes(f"bench/limit/{i:05d}", payload[a : a + per_object])
    put_s = time.perf_counter() - started
    return {"read_s": read_s, "put_s": put_s, "windows_per_s": len(arrays) / (read_s + put_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer traces (under a minute on 2 cores)")
    parser.add_argument("--traces", type=int, default=None)
    args = parser.parse_args()
    n = args.traces or (1000 if args.quick else 5000)
    with tempfile.TemporaryDirectory(prefix="qs-bench-ingest-") as tmp:
        state = Path(tmp)
        source = state / "allowed" / "stead"
        t0 = time.perf_counter()
        ((h5_path, _csv),) = write_stead(str(source), n_events=n * 9 // 10, n_noise=n - n * 9 // 10, seed=3)
        gen_s = time.perf_counter() - t0
        weed = SeaweedServer(state / "s3", log_path=state / "weed.log").start()
        try:
            settings = with_free_ports(load_settings({})).replace(
                s3_endpoint=weed.endpoint, s3_access_key=weed.credentials.access_key,
                s3_secret_key=weed.credentials.secret_key, storage_dir=str(state / "s3"),
                cache_dir=str(state / "cache"), data_allowed_dirs=(state / "allowed",), log_level="warning")
            one = ingest(settings, state, str(source), "bench-1", workers=1)
            two = ingest(settings, state, str(source), "bench-2", workers=2)
            fanned = ingest(settings, state, str(source), "bench-2x1", workers=2, fanout=2)
            store = ObjectStore.from_settings(settings)
            lim = limit(h5_path, store, one["bytes"], one["windows"])
        finally:
            weed.stop()
    rate1 = one["windows"] / one["seconds"]
    rate2 = two["windows"] / two["seconds"]
    rate_fanned = fanned["windows"] / fanned["seconds"]
    print(f"traces {n} (generated in {gen_s:.1f} s), shards of {SHARD_SIZE}, {one['bytes'] / 1e6:.1f} MB stored",
          file=sys.stderr)
    print(f"1 worker: {one['seconds']:.2f} s end to end ({rate1:.0f} windows/s; writing phase "
          f"{one['writing_windows_per_s']:.0f}/s); 2 workers: {two['seconds']:.2f} s ({rate2:.0f} windows/s)",
          file=sys.stderr)
    print(f"2 job workers x 1 render process (fan-out): {fanned['seconds']:.2f} s ({rate_fanned:.0f} windows/s)",
          file=sys.stderr)
    print(f"phase start times (s): 1 worker {one['phases_at_s']}, 2 workers {two['phases_at_s']}, "
          f"fan-out {fanned['phases_at_s']}", file=sys.stderr)
    print(f"limit: h5py read {lim['read_s']:.2f} s + S3 put {lim['put_s']:.2f} s = "
          f"{lim['windows_per_s']:.0f} windows/s", file=sys.stderr)
    print(json.dumps({
        "bench": "ingest", "traces": n, "windows_per_s": round(rate1, 1),
        "limit_windows_per_s": round(lim["windows_per_s"], 1), "ratio": round(rate1 / lim["windows_per_s"], 3),
        "workers": 1, "two_worker_windows_per_s": round(rate2, 1), "two_worker_speedup": round(rate2 / rate1, 3),
        "fanout_windows_per_s": round(rate_fanned, 1), "fanout_vs_one_worker": round(rate_fanned / rate2, 3),
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
