"""Metadata at scale: a trainer over N finished training jobs (30 events each), on SQLite and PostgreSQL,
against the object-storage runtime it replaces (the last commit before the metadata store) in the same run.

For each store and N: the jobs are written in bulk through the store's own API (JobStore.create_many; the
older runtime's through its own EventLog, one object per event); a trainer process is started on them and
measured: process start → SERVING → first complete List page (50 jobs), List p50/p95 with and without a
state filter, Get p50, Create p50 and create → RUNNING, paging through every job (50 a page), RSS, and
idle CPU and S3 requests per second (a counting proxy in front of SeaweedFS sees every request the
trainer sends, health probes told apart). Goals at the largest N (this machine): start → List ≤ 2 s,
List and Create p50 ≤ 20 ms, RSS within 50 MB of N = 1,000, idle CPU ≤ 1 % and no S3 request from the
idle scheduler, paging linear in N. The last line is one JSON object.

    python bench/metadata.py [--quick] [--sizes 1000,10000,100000] [--baseline-sizes 1000,5000]

`--quick`: N = 1,000 and 10,000, no object-storage baseline (its start alone takes minutes at 1,000 jobs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import grpc
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.s3_counter import S3RequestCounter  # noqa: E402
from quakestack.client import channel, health_status  # noqa: E402
from quakestack.config import (
    load_settings,  # noqa: E402
    settings_env,  # noqa: E402
)
from quakestack.data.manifest import manifest_json, manifest_size, manifest_windows  # noqa: E402
from quakestack.data.pipeline import DatasetSpec, SourceSpec, run_dataset  # noqa: E402
from quakestack.data.split import SplitSpec  # noqa: E402
from quakestack.data.synthetic import write_stead  # noqa: E402
from quakestack.data.windows import WindowSpec  # noqa: E402
from quakestack.embedded.postgres import PostgresServer  # noqa: E402
from quakestack.embedded.seaweed import SeaweedServer  # noqa: E402
from quakestack.jobs.executor import stop_local_workers  # noqa: E402
from quakestack.jobs.spec import JobRecord, new_job_id  # noqa: E402
from quakestack.layout import dataset_file_key, manifest_key  # noqa: E402
from quakestack.metadata.database import Database, sqlite_url  # noqa: E402
from quakestack.metadata.datasets import DatasetCatalog  # noqa: E402
from quakestack.metadata.jobs import JobStore  # noqa: E402
from quakestack.protoconv import iso_from_seconds  # noqa: E402
from quakestack.stack import with_free_ports  # noqa: E402
from quakestack.storage import ObjectStore  # noqa: E402
from quakestack.training.jobs import build_spec  # noqa: E402
from quakestack.v1 import common_pb2, trainer_pb2, trainer_pb2_grpc  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "ba64360"  # the last commit whose job runtime kept every record on object storage
DATASET = "bench-ds"
PAGE = 50
EPOCHS = 27  # QUEUED, RUNNING, 27 epochs, the end: 30 events a job
GOALS = {"start_to_list_s": 2.0, "list_p50_ms": 20.0, "create_p50_ms": 20.0, "rss_growth_mb": 50.0,
         "idle_cpu_pct": 1.0, "idle_scheduler_s3_requests_per_s": 0.0}


# -- the jobs ---------------------------------------------------------------------------------------
def history(i: int, rng: random.Random) -> list[dict[str, Any]]:
    """A finished job's 30 events: 90 % SUCCEEDED, 5 % FAILED, 5 % CANCELLED (as a year of a lab's work)."""
    end = "SUCCEEDED" if i % 20 > 1 else ("FAILED" if i % 20 == 0 else "CANCELLED")
    events = [{"type": "state", "state": "QUEUED", "message": "created"},
              {"type": "state", "state": "RUNNING", "message": "worker started (1 process(es)), from the start",
               "world_size": 1, "p_offset_s": 5.0, "attempt": 1}]
    loss = 1.5
    for epoch in range(1, EPOCHS + 1):
        loss *= 0.93 + 0.04 * rng.random()
        events.append({"type": "epoch", "epoch": epoch, "train_loss": loss, "val_loss": loss * 1.1,
                       "metrics": {"rmse": loss ** 0.5, "mae": loss * 0.7, "r2": 1 - loss / 2},
                       "best_epoch": epoch, "learning_rate": 0.001, "elapsed_s": 12.5 * epoch,
                       "samples_per_s": 850.0, "eta_s": 12.5 * (EPOCHS - epoch), "attempt": 1})
    events.append({"type": "state", "state": end, "message": "done" if end == "SUCCEEDED" else end.lower(),
                   "attempt": 1})
    return events


def fill(db: Database, spec: dict[str, Any], n: int, batch: int = 1000) -> float:
    """n finished jobs, created a minute apart, written in bulk; their insert rate (jobs/s)."""
    jobs = JobStore(db)
    rng = random.Random(n)
    start = time.time() - n * 60.0
    began = time.perf_counter()
    for first in range(0, n, batch):
        rows = []
        for i in range(first, min(n, first + batch)):
            record = JobRecord(kind="training", version=1, job_id=new_job_id(),
                               create_time=iso_from_seconds(start + 60.0 * i), spec=spec)
            rows.append((record, {"epochs": EPOCHS, "attempt": 1}, history(i, rng)))
        jobs.create_many(rows)
    return n / (time.perf_counter() - began)


def settle(db: Database) -> None:
    """Statistics and visibility maps of the bulk-loaded tables brought up to date (as the database's own
    autovacuum soon would), so the trainer is measured on a database at rest, not one digesting the load."""
    with db.engine.connect() as conn:
        if db.is_sqlite:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        else:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("VACUUM ANALYZE jobs, job_events, job_counts")


# -- a small real dataset (Create needs one) ------------------------------------------------------------
def build_dataset(root: Path) -> tuple[Path, dict[str, Any]]:
    pairs = write_stead(str(root / "raw"), n_events=40, n_noise=4, seed=1)
    spec = DatasetSpec(name=DATASET, sources=[SourceSpec("stead", [h for h, _ in pairs], [c for _, c in pairs])],
                       window=WindowSpec(length_s=60.0), split=SplitSpec(0.7, 0.15, 0.15), shard_size=256, seed=1)
    run_dataset(spec, str(root / "dataset"))
    manifest = json.loads((root / "dataset" / "manifest.json").read_text())
    manifest["name"] = DATASET
    return root / "dataset", manifest


def upload_dataset(store: ObjectStore, directory: Path, manifest: dict[str, Any]) -> bytes:
    for shard in manifest["shards"]:
        for info in shard["files"].values():
            store.put_file(dataset_file_key(DATASET, info["key"]), directory / info["key"], sha256=info["sha256"])
    text = manifest_json(manifest).encode()
    store.put_bytes(manifest_key(DATASET), text, content_type="application/json")
    return text


def publish(db: Database, manifest: dict[str, Any], text: bytes) -> None:
    catalog = DatasetCatalog(db)
    catalog.claim(DATASET, "bench", lambda job_id, claimed_at: False)
    catalog.publish(DATASET, "bench", text, manifest_windows(manifest), manifest_size(manifest))


# -- measuring one trainer ----------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(fn, count: int) -> list[float]:
    out = []
    for _ in range(count):
        began = time.perf_counter()
        fn()
        out.append((time.perf_counter() - began) * 1000.0)
    return out


def start_trainer(settings, log_path: Path, cwd: Path, env_drop: tuple[str, ...] = ()) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
    env.update({k: v for k, v in settings_env(settings).items() if k not in env_drop})
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(cwd))
    log = log_path.open("ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "services.trainer"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(cwd),
                                start_new_session=True)
    finally:
        log.close()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def start_and_list(settings, n: int, log_dir: Path, cwd: Path, env_drop: tuple[str, ...],
                   timeout_s: float) -> tuple[subprocess.Popen, float, float, trainer_pb2.ListTrainingJobsResponse]:
    """A trainer process started: (it, seconds to SERVING, seconds to its first complete List page, the page)."""
    began = time.monotonic()
    proc = start_trainer(settings, log_dir / f"trainer-{n}.log", cwd, env_drop)
    try:
        # a fresh channel per poll: a channel that found nothing listening backs off for a second or more
        while not _polled(settings.trainer_addr, lambda ch: health_status(ch) == "SERVING"):
            if proc.poll() is not None or time.monotonic() - began > timeout_s:
                raise RuntimeError(f"trainer did not start: see {log_dir}")
            time.sleep(0.02)
        serving = time.monotonic() - began
        request = trainer_pb2.ListTrainingJobsRequest(page_size=PAGE)
        last_error = "fewer jobs than a page"

        def complete_page(ch) -> trainer_pb2.ListTrainingJobsResponse | None:
            nonlocal last_error
            try:
                reply = trainer_pb2_grpc.TrainerServiceStub(ch).ListTrainingJobs(request, timeout=timeout_s)
            except grpc.RpcError as exc:  # a List that times out during an older trainer's load
                last_error = f"{exc.code().name}: {exc.details()}"
                return None
            return reply if len(reply.jobs) == min(n, PAGE) else None

        while (page := _polled(settings.trainer_addr, complete_page)) is None:
            if time.monotonic() - began > timeout_s:
                raise RuntimeError(f"no complete List page: {last_error}")
            time.sleep(0.02)
        return proc, serving, time.monotonic() - began, page
    except BaseException:
        stop(proc)
        raise


def measure(settings, n: int, counter: S3RequestCounter, log_dir: Path, *, cwd: Path = REPO,
            env_drop: tuple[str, ...] = (), idle_s: float, calls: int, create: bool, page_all: bool,
            start_timeout_s: float, starts: int = 3) -> dict[str, Any]:
    """`starts` starts of a trainer (the first on a database nothing has read since its load; the median is the
    figure: a restart), then the rest measured on the last one."""
    out: dict[str, Any] = {"n": n}
    timings = []
    for index in range(starts):
        proc, serving, listed, page = start_and_list(settings, n, log_dir, cwd, env_drop, start_timeout_s)
        timings.append((serving, listed))
        if index < starts - 1:
            stop(proc)
    out["start_to_serving_s"] = round(statistics.median(t[0] for t in timings), 2)
    out["start_to_list_s"] = round(statistics.median(t[1] for t in timings), 2)
    out["first_start_to_list_s"] = round(timings[0][1], 2)
    request = trainer_pb2.ListTrainingJobsRequest(page_size=PAGE)
    try:
        with channel(settings.trainer_addr) as ch:
            stub = trainer_pb2_grpc.TrainerServiceStub(ch)
            ids = [j.job_id for j in page.jobs]
            latencies = timed(lambda: stub.ListTrainingJobs(request, timeout=60), calls)
            failed = trainer_pb2.ListTrainingJobsRequest(page_size=PAGE, state=common_pb2.JOB_STATE_FAILED)
            filtered = timed(lambda: stub.ListTrainingJobs(failed, timeout=60), calls)
            gets = timed(lambda: stub.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=random.choice(ids)),
                                                     timeout=60), calls)
            out.update(list_p50_ms=round(percentile(latencies, 0.5), 2),
                       list_p95_ms=round(percentile(latencies, 0.95), 2),
                       list_state_p50_ms=round(percentile(filtered, 0.5), 2),
                       list_state_p95_ms=round(percentile(filtered, 0.95), 2),
                       get_p50_ms=round(percentile(gets, 0.5), 2))
            ps = psutil.Process(proc.pid)
            time.sleep(1.0)
            cpu0, s3_0, t0 = sum(ps.cpu_times()[:2]), counter.snapshot(), time.monotonic()
            time.sleep(idle_s)
            cpu1, s3_1, t1 = sum(ps.cpu_times()[:2]), counter.snapshot(), time.monotonic()
            idle = Counter({k: v for k, v in (s3_1 - s3_0).items()})
            out["idle_cpu_pct"] = round(100.0 * (cpu1 - cpu0) / (t1 - t0), 2)
            out["idle_s3_requests_per_s"] = round(sum(idle.values()) / (t1 - t0), 2)
            out["idle_scheduler_s3_requests_per_s"] = round(
                sum(v for k, v in idle.items() if k != "bucket") / (t1 - t0), 2)
            out["idle_s3_requests"] = dict(idle)
            out["rss_mb"] = round(ps.memory_info().rss / 1e6, 1)
            if page_all:
                began_paging, pages, token = time.perf_counter(), 0, ""
                while True:
                    reply = stub.ListTrainingJobs(trainer_pb2.ListTrainingJobsRequest(page_size=PAGE, page_token=token),
                                                  timeout=120)
                    pages += 1
                    token = reply.next_page_token
                    if not token:
                        break
                out["paging_all_s"] = round(time.perf_counter() - began_paging, 2)
                out["paging_ms_per_page"] = round(1000 * out["paging_all_s"] / pages, 2)
            if create:
                out.update(creates(stub, calls))
    finally:
        stop(proc)
        stop_local_workers(settings.s3_endpoint, settings.s3_bucket)
    return out


def _polled(addr: str, probe):
    with channel(addr) as ch:
        return probe(ch)


def creates(stub, count: int) -> dict[str, Any]:
    """Create p50 (each job queued behind the first; one CPU slot), the first one's create → RUNNING; all
    cancelled afterwards so that nothing runs on."""
    hp = {"n_samples": 3000, "epochs": 1}
    from google.protobuf import struct_pb2

    values = struct_pb2.Struct()
    values.update(hp)
    request = trainer_pb2.CreateTrainingJobRequest(dataset=DATASET, architecture="convnetquake_ingv",
                                                   hyper_parameters=values)
    latencies, created = [], []
    for _ in range(count):
        began = time.perf_counter()
        created.append(stub.CreateTrainingJob(request, timeout=60).job.job_id)
        latencies.append((time.perf_counter() - began) * 1000.0)
        if len(created) == 1:
            first_at = began
    while True:
        job = stub.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=created[0]), timeout=60).job
        if job.state in (common_pb2.JOB_STATE_RUNNING, common_pb2.JOB_STATE_SUCCEEDED):
            to_running = time.perf_counter() - first_at
            break
        if time.perf_counter() - first_at > 180:
            to_running = float("nan")
            break
        time.sleep(0.02)
    for job_id in created:
        with contextlib.suppress(grpc.RpcError):  # one that finished meanwhile
            stub.CancelTrainingJob(trainer_pb2.CancelTrainingJobRequest(job_id=job_id), timeout=60)
    return {"create_p50_ms": round(percentile(latencies, 0.5), 2), "create_to_running_s": round(to_running, 2)}


# -- the object-storage runtime of the last commit before the metadata store ---------------------------
OLD_WRITER = r"""
import json, sys, time, uuid, random
from concurrent.futures import ThreadPoolExecutor
sys.path.insert(0, ".")
from quakestack.config import load_settings
from quakestack.storage import ObjectStore
from quakestack.jobs.spec import JobRecord, write_record
from quakestack.jobs.control import create_control
from quakestack.jobs.events import EventLog
from quakestack.protoconv import iso_from_seconds
n = int(sys.argv[1])
spec, events = json.load(open(sys.argv[2]))
store = ObjectStore.from_settings(load_settings())
start = time.time() - 60.0 * n
def one(i):
    job_id = uuid.uuid4().hex[:16]
    write_record(store, JobRecord(kind="training", version=1, job_id=job_id,
                                  create_time=iso_from_seconds(start + 60.0 * i), spec=spec))
    create_control(store, job_id, epochs=27, attempt=1)
    log = EventLog(store, job_id)
    for event in events[i % len(events)]:
        log.append(event)
with ThreadPoolExecutor(16) as pool:
    list(pool.map(one, range(n)))
"""


def old_tree(root: Path) -> Path | None:
    """The baseline commit's code, from this repository's history (None when the history is not here)."""
    target = root / "baseline"
    archive = root / "baseline.tar"
    with archive.open("wb") as fh:
        done = subprocess.run(["git", "-C", str(REPO), "archive", BASELINE_COMMIT, "quakestack", "services"],
                              stdout=fh, stderr=subprocess.PIPE)
    if done.returncode:
        print(f"object-storage baseline skipped: git archive {BASELINE_COMMIT}: {done.stderr.decode().strip()}",
              file=sys.stderr)
        return None
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def object_storage_baseline(settings, tree: Path, spec: dict[str, Any], dataset: tuple[Path, dict[str, Any]], n: int,
                            counter: S3RequestCounter, log_dir: Path, args) -> dict[str, Any]:
    bucket = f"old-runtime-{n}"
    own = settings.replace(s3_bucket=bucket)
    store = ObjectStore.from_settings(own)
    store.ensure_bucket()
    upload_dataset(store, *dataset)  # the older runtime's dataset exists by its manifest alone
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
    env.update({k: v for k, v in settings_env(own).items() if not k.startswith("QUAKESTACK_DATABASE")})
    env["QUAKESTACK_S3_ENDPOINT"] = settings.s3_endpoint  # writes straight to storage, not through the counter
    rng = random.Random(n)
    inputs = log_dir / f"old-writer-{n}.json"
    inputs.write_text(json.dumps([spec, [history(i, rng) for i in range(20)]]))
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", OLD_WRITER, str(n), str(inputs)], cwd=str(tree), env=env, check=True)
    written = time.perf_counter() - began
    result = measure(own.replace(s3_endpoint=counter.endpoint), n, counter, log_dir, cwd=tree,
                     env_drop=("QUAKESTACK_DATABASE_URL", "QUAKESTACK_DATABASE_URL_FILE",
                               "QUAKESTACK_DATABASE_TIMEOUT_S"),
                     idle_s=args.idle_s, calls=args.calls, create=True, page_all=True, start_timeout_s=1800,
                     starts=1)  # its start reads the whole history: one is enough
    return {**result, "write_s": round(written, 1)}


# -- the run ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default="")
    parser.add_argument("--baseline-sizes", default="")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    sizes = [int(x) for x in (args.sizes or ("1000,10000" if args.quick else "1000,10000,100000")).split(",")]
    baseline_sizes = [int(x) for x in (args.baseline_sizes or ("" if args.quick else "1000,5000")).split(",") if x]
    args.idle_s, args.calls, args.starts = (4.0, 20, 2) if args.quick else (10.0, 40, 3)
    backends = [b for b in args.backends.split(",") if b]
    bench_began = time.perf_counter()
    results: dict[str, dict[int, dict[str, Any]]] = {b: {} for b in backends}
    baseline: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="quakestack-bench-metadata-") as tmp:
        root = Path(tmp)
        log_dir = root / "logs"
        log_dir.mkdir()
        weed = SeaweedServer(root / "s3", log_path=log_dir / "s3.log", bucket="quakestack").start()
        counter = S3RequestCounter(weed.endpoint).start()
        postgres = PostgresServer(root / "pg" / "data", log_path=log_dir / "postgres.log") \
            if "postgresql" in backends else None
        try:
            if postgres is not None:
                postgres.start()
            base = with_free_ports(load_settings({})).replace(
                s3_endpoint=weed.endpoint, s3_access_key=weed.credentials.access_key,
                s3_secret_key=weed.credentials.secret_key, storage_dir=str(root / "s3"),
                cache_dir=str(root / "cache"), jobs_heartbeat_s=1.0)
            store = ObjectStore.from_settings(base)
            store.ensure_bucket()
            directory, manifest = build_dataset(root / "dataset")
            text = upload_dataset(store, directory, manifest)
            with closing(Database(sqlite_url(root / "scratch.db"))) as db:  # the spec every job carries
                db.upgrade()
                publish(db, manifest, text)
                spec = {**build_spec(store, DatasetCatalog(db), dataset=DATASET, architecture="convnetquake_ingv",
                                     values={"n_samples": 3000}, device="cpu", display_name="", gpu_count=0),
                        "owner": "anonymous"}
            for backend in backends:
                for n in sizes:
                    url = sqlite_url(root / f"{backend}-{n}.db") if backend == "sqlite" else postgres.create_database()
                    with closing(Database(url)) as db:
                        db.upgrade()
                        publish(db, manifest, text)
                        rate = fill(db, spec, n)
                        settle(db)
                    settings = with_free_ports(base).replace(database_url=url, s3_endpoint=counter.endpoint)
                    result = measure(settings, n, counter, log_dir, idle_s=args.idle_s, calls=args.calls,
                                     create=True, page_all=True, start_timeout_s=120, starts=args.starts)
                    results[backend][n] = {**result, "insert_jobs_per_s": round(rate)}
                    print(f"{backend:>10} N={n:>7}: {json.dumps(results[backend][n])}", file=sys.stderr, flush=True)
            tree = old_tree(root) if baseline_sizes else None
            for n in baseline_sizes if tree is not None else []:
                baseline[n] = object_storage_baseline(with_free_ports(base), tree, spec, (directory, manifest), n,
                                                      counter, log_dir, args)
                print(f"{'objects':>10} N={n:>7}: {json.dumps(baseline[n])}", file=sys.stderr, flush=True)
        finally:
            counter.stop()
            weed.stop()
            if postgres is not None:
                postgres.stop()
    report(results, baseline, sizes, time.perf_counter() - bench_began)


def summary(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    largest, smallest = runs[max(runs)], runs[min(runs)]
    out = {k: largest[k] for k in ("start_to_list_s", "list_p50_ms", "create_p50_ms", "idle_cpu_pct",
                                   "idle_s3_requests_per_s", "idle_scheduler_s3_requests_per_s")}
    out["rss_growth_mb"] = round(largest["rss_mb"] - smallest["rss_mb"], 1)
    out["paging_ms_per_page_growth"] = round(largest["paging_ms_per_page"] / max(smallest["paging_ms_per_page"], 1e-9),
                                             2)
    out["goals_met"] = {k: out[k] <= limit for k, limit in GOALS.items()}
    return out


def report(results, baseline, sizes, elapsed_s: float) -> None:
    rows = ["| store | N | start→SERVING s | start→List s (first start) | List p50/p95 ms | List (state) p50/p95 ms | "
            "Get p50 ms | Create p50 ms | create→RUNNING s | paging all s (ms/page) | RSS MB | idle CPU % | "
            "idle S3 req/s |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, runs in [*results.items(), ("object storage (before)", baseline)]:
        for n, r in sorted(runs.items()):
            rows.append(f"| {name} | {n:,} | {r['start_to_serving_s']} | {r['start_to_list_s']} "
                        f"({r['first_start_to_list_s']}) | "
                        f"{r['list_p50_ms']} / {r['list_p95_ms']} | {r['list_state_p50_ms']} / "
                        f"{r['list_state_p95_ms']} | {r['get_p50_ms']} | "
                        f"{r.get('create_p50_ms', '-')} | {r.get('create_to_running_s', '-')} | "
                        f"{r.get('paging_all_s', '-')} ({r.get('paging_ms_per_page', '-')}) | {r['rss_mb']} | "
                        f"{r['idle_cpu_pct']} | {r['idle_s3_requests_per_s']} ({r['idle_scheduler_s3_requests_per_s']} "
                        "not health probes) |")
    print("\n".join(rows))
    out: dict[str, Any] = {"n": max(sizes) if any(results.values()) else None, "elapsed_s": round(elapsed_s, 1)}
    if "postgresql" in results and results["postgresql"]:
        out.update(summary(results["postgresql"]))
    if "sqlite" in results and results["sqlite"]:
        out["sqlite"] = summary(results["sqlite"])
    if baseline:
        out["object_storage"] = {str(n): {k: r[k] for k in ("start_to_list_s", "list_p50_ms", "create_p50_ms",
                                                            "rss_mb", "idle_cpu_pct", "idle_s3_requests_per_s",
                                                            "paging_all_s")} for n, r in baseline.items()}
        ref = results.get("postgresql") or results.get("sqlite") or {}
        common = [n for n in baseline if n in ref]
        if common:
            n = max(common)
            out["ratio_start_to_list_vs_object_storage"] = round(baseline[n]["start_to_list_s"]
                                                                 / ref[n]["start_to_list_s"], 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
