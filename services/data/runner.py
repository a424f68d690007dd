"""Executes one dataset job off the RPC thread: planning -> downloading -> writing -> publishing.

Shards render in worker processes (forkserver: never fork the threaded gRPC process) while this
thread uploads each finished shard; the manifest is written last. A shard already published with
the plan_sha256 of the current plan (recorded in job.json) is skipped, and one rendered locally
before a crash is reused by `render_shard(resume=True)`, so a killed job reruns to the same bytes.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import structlog

from quakestack import metrics
from quakestack.config import Settings
from quakestack.data import DatasetSpec, ShardResult, plan_dataset, render_shard
from quakestack.data.manifest import manifest_json
from quakestack.data.pipeline import DatasetPlan, build_manifest
from quakestack.data.readers import minor_reasons
from quakestack.errors import NotFound, QuakestackError
from quakestack.layout import dataset_file_key, manifest_key, shards_prefix, spec_key
from quakestack.storage import ObjectStore
from services.data import sources as src
from services.data.job import CANCELLED, FAILED, RUNNING, SUCCEEDED, Job
from services.data.requests import parameters

log = structlog.get_logger()
PERSIST_INTERVAL_S = 1.0


class Interrupted(Exception):
    """The job was cancelled (by a user) or the service is shutting down (state left for a resume)."""


class JobFailed(Exception):
    """A job-level failure whose message is already precise."""


def _worker_init() -> None:
    """Die with the parent: a worker must never outlive a killed service and race its rerun."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pool_context() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["services.data.die_with_parent", "quakestack.data.pipeline"])
    return ctx


def _started() -> None:
    """A no-op task: running one per worker makes the pool start every process."""


class RenderPool:
    """The service's shard renderers, started with the service and kept warm.

    A forkserver worker imports the service's main module and the data library on its first task
    (about 1 s on 2 cores); a pool per job paid that in every job. Jobs share this pool; a cancelled
    job cancels only its own pending shards, and the processes are killed only at shutdown or when
    one dies (the next job then starts a new pool).
    """

    def __init__(self, workers: int):
        self.workers = workers
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def get(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=_pool_context(),
                                                 initializer=_worker_init)
                for future in [self._pool.submit(_started) for _ in range(self.workers)]:
                    future.result()
            return self._pool

    def discard(self) -> None:
        """Kill the workers now (shutdown, or a broken pool)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.kill()
            pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class Runner:
    """Runs `job` to an end state (or leaves it RUNNING on shutdown, for the next start to resume)."""

    job: Job
    store: ObjectStore
    settings: Settings
    stopping: Callable[[], bool]  # the service is shutting down
    pool: RenderPool
    _last_persist: float = 0.0
    _count_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def work_dir(self) -> str:
        return os.path.join(self.settings.cache_dir, "work", self.job.job_id)

    def persist(self, force: bool = True) -> None:
        now = time.monotonic()
        if force or now - self._last_persist >= PERSIST_INTERVAL_S:
            self.store.put_json(spec_key(self.job.job_id), self.job.to_record())
            self._last_persist = now

    def check(self) -> None:
        if self.job.cancel_requested.is_set() or self.stopping():
            raise Interrupted()

    def _local_message(self, text: str) -> str:
        """Library messages name cached files; show the object keys users know instead."""
        return text.replace(os.path.join(self.settings.cache_dir, "objects") + os.sep, "")

    # -- the phases ---------------------------------------------------------------------------
    def run(self) -> None:
        job = self.job
        started = time.monotonic()
        log_ = log.bind(job_id=job.job_id, dataset=job.dataset)
        outcome = "interrupted"
        try:
            job.update(state=RUNNING, phase="planning", error="")
            self.persist()
            spec, plan = self._plan()
            results = self._write(spec, plan)
            self._publish(spec, plan, results)
            final, outcome = {"state": SUCCEEDED, "phase": "done"}, "succeeded"
        except Interrupted:
            if not job.cancel_requested.is_set():
                log_.info("job interrupted by shutdown; it resumes at the next start")
                self._persist_quietly()
                return
            final, outcome = {"state": CANCELLED}, "cancelled"
        except BrokenProcessPool:
            final = {"state": FAILED, "error": "a worker process died while rendering shards (out of memory or killed)"}
        except (JobFailed, QuakestackError, ValueError, OSError) as exc:
            final = {"state": FAILED, "error": self._local_message(str(exc))}
        except Exception as exc:  # noqa: BLE001 - a job must end FAILED, never vanish
            log_.exception("dataset job crashed")
            final = {"state": FAILED, "error": f"{type(exc).__name__}: {self._local_message(str(exc))}"}
        outcome = outcome if final["state"] != FAILED else "failed"
        job.finish(self._persist_quietly, eta_s=0.0, **final)
        metrics.INGEST_JOB_SECONDS.labels(outcome).observe(time.monotonic() - started)
        log_.info("dataset job ended", state=job.state, error=job.error or None)
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def _persist_quietly(self) -> None:
        try:
            self.persist()
        except QuakestackError as exc:
            log.warning("cannot persist job state", job_id=self.job.job_id, error=str(exc))

    def _plan(self) -> tuple[DatasetSpec, DatasetPlan]:
        job, request, s = self.job, self.job.request, self.settings
        params = parameters(request)
        located = []
        for i, source in enumerate(request.sources):
            src.source_format(source, i)
            wave = src.check_location(self.store, source.waveforms, f"sources[{i}].waveforms", s.data_allowed_dirs,
                                      s.cache_dir)
            cat = None
            if source.catalog.WhichOneof("location"):
                cat = src.check_location(self.store, source.catalog, f"sources[{i}].catalog", s.data_allowed_dirs,
                                         s.cache_dir)
            located.append((source, wave, cat))
        keys = sum(len(f.keys) for _, w, c in located for f in (w, c) if f is not None)
        job.update(phase="downloading", items_done=0, items_total=keys)
        self.persist()

        def fetched(_key: str, _size: int) -> None:
            job.update(items_done=job.items_done + 1)
            self.check()

        for _, wave, cat in located:
            for files in (wave, cat):
                if files is not None:
                    src.fetch(self.store, files, s.cache_dir, fetched)
        specs = [src.source_spec(source, i, wave, cat) for i, (source, wave, cat) in enumerate(located)]
        spec = DatasetSpec(name=job.dataset, sources=specs, **params.spec_kwargs())
        self.check()
        plan = plan_dataset(spec)
        counts = plan.skipped_counts
        for reason, n in counts.items():
            metrics.ITEMS_SKIPPED.labels(reason).inc(n)
        # the plan's skips are recounted from scratch on a rerun
        # readers' minor reasons last (amplitude readings: counted, but rarely what went wrong)
        minor = minor_reasons()
        shown = sorted(plan.skipped, key=lambda x: x.reason in minor)[:20]
        job.update(skipped=Counter(counts), warnings=[self._local_message(x.message) for x in shown])
        if not plan.shards:
            raise JobFailed(self._nothing_message(plan.n_listed, plan.skipped_counts, plan.filtered))
        return spec, plan

    def _nothing_message(self, listed: int, skipped: dict[str, int], filtered: dict[str, int]) -> str:
        parts = [f"{reason}: {n}" for reason, n in sorted({**skipped, **filtered}.items())]
        return f"no windows to write: {listed} items listed; " + ("; ".join(parts) or "no items in the sources")

    def _reusable(self, key: str, plan_sha256: str) -> ShardResult | None:
        """A shard this job already published for the same plan, still stored with the recorded sha256s."""
        prev = self.job.results.get(key)
        if not prev or prev.get("plan_sha256") != plan_sha256:
            return None
        try:
            for name, sha in prev["sha256"].items():
                if self.store.stat(dataset_file_key(self.job.dataset, f"{key}/{name}")).sha256 != sha:
                    return None
        except NotFound:
            return None
        return ShardResult.from_dict({**prev, "reused": True})

    def _write(self, spec: DatasetSpec, plan: DatasetPlan) -> list[ShardResult]:
        job = self.job
        results: list[ShardResult] = []
        todo = []
        for sp in plan.shards:
            done = self._reusable(sp.key, sp.plan_sha256)
            (results.append(done) if done else todo.append(sp))  # type: ignore[func-returns-value]
        stale = set(job.results) - {sp.key for sp in plan.shards}
        for key in stale:
            job.results.pop(key, None)
        for r in results:
            job.add_skipped(r.skipped, [])
        job.update(phase="writing", items_total=len(plan.shards), items_done=len(results),
                   windows_written=sum(r.count for r in results), windows_per_s=0.0, eta_s=0.0)
        self.persist()
        if not todo:
            return results
        started, fresh_windows, fresh_shards = time.monotonic(), 0, 0
        pending: set[Future] = set()
        uploads: set[Future] = set()
        # renders run in worker processes; uploads overlap them, one upload thread per worker
        uploader = ThreadPoolExecutor(max_workers=self.pool.workers, thread_name_prefix="shard-upload")
        try:
            pool = self.pool.get()
            pending = {pool.submit(render_shard, sp, spec, self.work_dir, True) for sp in todo}
            while pending or uploads:
                finished, _ = wait(pending | uploads, timeout=0.25, return_when=FIRST_COMPLETED)
                self.check()
                for fut in finished & pending:
                    pending.discard(fut)
                    uploads.add(uploader.submit(self._upload, fut.result()))
                for fut in finished & uploads:
                    uploads.discard(fut)
                    r = fut.result()
                    results.append(r)
                    fresh_windows += r.count
                    fresh_shards += 1
                    elapsed = max(time.monotonic() - started, 1e-6)
                    left = len(plan.shards) - len(results)
                    job.add_skipped(r.skipped, [self._local_message(x) for x in r.skipped_examples])
                    job.results[r.key] = {**r.to_dict(), "files": {}, "reused": False}
                    job.update(items_done=len(results), windows_written=job.windows_written + r.count,
                               windows_per_s=fresh_windows / elapsed, eta_s=left * elapsed / fresh_shards)
                    if not r.reused:
                        metrics.WINDOWS_WRITTEN.labels(job.dataset).inc(r.count)
                        for reason, n in r.skipped.items():
                            metrics.ITEMS_SKIPPED.labels(reason).inc(n)
                    self.persist(force=False)
        except BrokenProcessPool:
            self.pool.discard()
            raise
        finally:
            for fut in pending:
                fut.cancel()
            uploader.shutdown(wait=True, cancel_futures=True)
        return results

    def _upload(self, r: ShardResult) -> ShardResult:
        """Put a shard's files under datasets/<name>/<shard key>/ (skipped when already stored identical)."""
        for name, path in sorted(r.files.items()):
            key = dataset_file_key(self.job.dataset, f"{r.key}/{name}")
            try:
                if self.store.stat(key).sha256 == r.sha256[name]:
                    continue
            except NotFound:
                pass
            self.store.put_file(key, path, sha256=r.sha256[name])
            size = r.sizes.get(name) or os.path.getsize(path)
            metrics.BYTES_STORED.labels("shard").inc(size)
            with self._count_lock:  # upload threads add concurrently
                self.job.update(bytes_written=self.job.bytes_written + size)
        return r

    def _publish(self, spec: DatasetSpec, plan: DatasetPlan, results: list[ShardResult]) -> None:
        job = self.job
        job.update(phase="publishing", items_done=0, items_total=1, eta_s=0.0)
        self.persist()
        written = sum(r.count for r in results)
        if written == 0:
            skipped: Counter[str] = Counter(plan.skipped_counts)
            for r in results:
                skipped.update(r.skipped)
            raise JobFailed(self._nothing_message(plan.n_listed, dict(skipped), plan.filtered))
        self.check()
        wanted = {dataset_file_key(job.dataset, f"{sp.key}/{name}") for sp in plan.shards for name in results[0].sha256}
        for info in self.store.list(shards_prefix(job.dataset)):
            if info.key not in wanted:  # left by a cancelled job of another request under this name
                self.store.delete(info.key)
        text = manifest_json(build_manifest(spec, plan, results)).encode()
        self.check()
        self.store.put_bytes(manifest_key(job.dataset), text, content_type="application/json")
        metrics.BYTES_STORED.labels("manifest").inc(len(text))
        job.update(items_done=1, bytes_written=job.bytes_written + len(text))
