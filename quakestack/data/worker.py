"""The dataset runner of the job runtime: one attempt of a dataset job, from its spec and the store.

Started as `python -m quakestack.jobs.worker --job-id <id> --attempt <n>` (see quakestack.jobs.worker).
Phases: planning (download the sources the spec lists, plan the shards) -> writing (shards render
in a pool of `data_workers` processes while threads upload the finished ones) -> publishing (the
manifest, last). Every published shard is one progress event carrying its result, so a later
attempt skips the shards already stored with the same plan_sha256 and sha256s, and one rendered
locally before a crash is reused by `render_shard(resume=True)`: a retried job ends with the same
bytes, each shard published once. A cancel (the control record) kills this process group at once:
the finished shards stay, the manifest is never written.
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
import traceback
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from quakestack.data import DatasetSpec, ShardResult, plan_dataset, render_shard
from quakestack.data.jobs import PROGRESS_FIELDS, spec_parameters
from quakestack.data.manifest import manifest_json
from quakestack.data.pipeline import DatasetPlan, build_manifest
from quakestack.data.readers import minor_reasons
from quakestack.data.source_files import SourceFiles, fetch, source_spec
from quakestack.errors import NotFound, QuakestackError
from quakestack.jobs.events import with_retries
from quakestack.jobs.state import JobState
from quakestack.jobs.status import fold
from quakestack.jobs.worker import RETRY_STORAGE_S, WorkerContext, kill_own_group
from quakestack.layout import dataset_file_key, manifest_key, shards_prefix
from quakestack.logging import get_logger

__all__ = ["run_job"]
PROGRESS_EVERY_S = 1.0  # progress between shards (downloads) is reported at most this often
MAX_WARNINGS = 50


class JobFailed(Exception):
    """A job-level failure whose message is already precise."""


class Cancelled(Exception):
    """A cancel arrived while the manifest was being published: the job ends CANCELLED, without it."""


def _render_init() -> None:
    """Die with the forkserver: a render process must never outlive its job."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _started() -> None:
    """A no-op task: running one per process makes the pool start every process."""


class RenderPool:
    """The job's shard renderers (forkserver: this process has threads), started while it plans.

    Started from the main thread: PR_SET_PDEATHSIG fires when the parent *thread* ends, so a
    forkserver started from a short-lived thread would be killed with it."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._warming: list[Future] = []

    def start(self) -> None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["quakestack.data.die_with_parent", "quakestack.data.pipeline"])
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_render_init)
        self._warming = [self._pool.submit(_started) for _ in range(self.workers)]

    def get(self) -> ProcessPoolExecutor:
        if self._pool is None:
            raise RuntimeError("the render pool was not started")
        for future in self._warming:
            future.result()
        return self._pool

    def discard(self) -> None:
        """Kill the render processes now."""
        pool = self._pool
        if pool is not None:
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                with contextlib.suppress(OSError):
                    proc.kill()
            pool.shutdown(wait=False, cancel_futures=True)


class DatasetRunner:
    """One attempt: plan, write, publish; the progress it reports is the job's only state."""

    def __init__(self, ctx: WorkerContext):
        self.ctx = ctx
        self.spec = ctx.spec
        self.dataset: str = ctx.spec["dataset"]
        self.cache_dir = ctx.settings.cache_dir
        self.work_dir = os.path.join(self.cache_dir, "work", ctx.job_id)
        self.pool = RenderPool(ctx.settings.data_workers)
        self.publishing = threading.Lock()  # a cancel waits for a manifest being written (then undoes it)
        self.progress: dict[str, Any] = {k: 0 for k in PROGRESS_FIELDS} | {"phase": "planning"}
        self.skipped: Counter[str] = Counter()
        self.warnings: list[str] = []
        self._last_emit = 0.0
        self._lock = threading.Lock()  # upload threads add bytes concurrently

    # -- reporting ----------------------------------------------------------------------------
    def report(self, force: bool = True, shard: dict[str, Any] | None = None, warnings: bool = False,
               **changes: Any) -> None:
        with self._lock:
            self.progress.update(changes)
            now = time.monotonic()
            if not (force or shard or warnings) and now - self._last_emit < PROGRESS_EVERY_S:
                return
            self._last_emit = now
            event = {"type": "progress", **self.progress, "skipped": dict(sorted(self.skipped.items()))}
            if shard is not None:
                event["shard"] = shard
            if warnings:
                event["warnings"] = list(self.warnings)
        self.ctx.emit(event)

    def add_skipped(self, counts: dict[str, int], examples: list[str]) -> bool:
        """Count skips; True when new warnings were kept (the next event carries them)."""
        self.skipped.update(counts)
        room = MAX_WARNINGS - len(self.warnings)
        kept = [self.local_message(x) for x in examples[: max(room, 0)]]
        self.warnings.extend(kept)
        return bool(kept)

    def local_message(self, text: str) -> str:
        """Library messages name cached files; show the object keys users know instead."""
        return text.replace(os.path.join(self.cache_dir, "objects") + os.sep, "")

    # -- cancel -------------------------------------------------------------------------------
    def on_cancel(self) -> None:
        """The job was ended CANCELLED (by the heartbeat thread): stop everything, at once."""
        with self.publishing:
            self.pool.discard()
            shutil.rmtree(self.work_dir, ignore_errors=True)
            kill_own_group()

    # -- the phases ---------------------------------------------------------------------------
    def run(self) -> None:
        started = time.monotonic()
        try:
            spec, plan = self._plan()
            results = self._write(spec, plan)
            self._publish(spec, plan, results)
        finally:
            self.pool.discard()
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self.ctx.state(JobState.SUCCEEDED, f"dataset {self.dataset!r} published", elapsed_s=time.monotonic() - started)

    def _plan(self) -> tuple[DatasetSpec, DatasetPlan]:
        sources = self.spec["sources"]
        keys = sum(len(SourceFiles.from_dict(s[part]).keys) for s in sources for part in ("waveforms", "catalog")
                   if s.get(part))
        self.report(phase="downloading", items_done=0, items_total=keys)

        def fetched(_key: str, _size: int) -> None:
            self.report(force=False, items_done=self.progress["items_done"] + 1)

        specs = []
        for i, source in enumerate(sources):
            wave = fetch(self.ctx.store, SourceFiles.from_dict(source["waveforms"]), self.cache_dir, fetched)
            cat = (fetch(self.ctx.store, SourceFiles.from_dict(source["catalog"]), self.cache_dir, fetched)
                   if source.get("catalog") else None)
            specs.append(source_spec(source, i, wave, cat, self.cache_dir))
        spec = DatasetSpec(name=self.dataset, sources=specs, **spec_parameters(self.spec["parameters"]))
        self.report(phase="planning")
        plan = plan_dataset(spec)
        # readers' minor reasons last (amplitude readings: counted, but rarely what went wrong)
        minor = minor_reasons()
        shown = sorted(plan.skipped, key=lambda x: x.reason in minor)[:20]
        self.skipped = Counter(plan.skipped_counts)
        self.warnings = [self.local_message(x.message) for x in shown]
        self.report(warnings=True)
        if not plan.shards:
            raise JobFailed(self._nothing_message(plan.n_listed, plan.skipped_counts, plan.filtered))
        return spec, plan

    def _nothing_message(self, listed: int, skipped: dict[str, int], filtered: dict[str, int]) -> str:
        parts = [f"{reason}: {n}" for reason, n in sorted({**skipped, **filtered}.items())]
        return f"no windows to write: {listed} items listed; " + ("; ".join(parts) or "no items in the sources")

    def _published(self) -> dict[str, dict[str, Any]]:
        """The shards earlier attempts of this job published (their progress events), by key."""
        events = with_retries(lambda: self.ctx.log.read(), RETRY_STORAGE_S)
        accepted = fold(self.ctx.record.create_time, events)[1]
        return {e["shard"]["key"]: e["shard"] for e in accepted if e.get("type") == "progress" and e.get("shard")}

    def _reusable(self, prev: dict[str, Any] | None, plan_sha256: str) -> ShardResult | None:
        """A shard already published for the same plan, still stored with the recorded sha256s."""
        if not prev or prev.get("plan_sha256") != plan_sha256:
            return None
        try:
            for name, sha in prev["sha256"].items():
                if self.ctx.store.stat(dataset_file_key(self.dataset, f"{prev['key']}/{name}")).sha256 != sha:
                    return None
        except NotFound:
            return None
        return ShardResult.from_dict({**prev, "reused": True})

    def _write(self, spec: DatasetSpec, plan: DatasetPlan) -> list[ShardResult]:
        published = self._published()
        results: list[ShardResult] = []
        todo = []
        for sp in plan.shards:
            done = self._reusable(published.get(sp.key), sp.plan_sha256)
            (results.append(done) if done else todo.append(sp))  # type: ignore[func-returns-value]
        for r in results:
            self.add_skipped(r.skipped, [])
        self.report(phase="writing", items_total=len(plan.shards), items_done=len(results),
                    windows_written=sum(r.count for r in results), windows_per_s=0.0, eta_s=0.0)
        if not todo:
            return results
        started, fresh_windows, fresh_shards = time.monotonic(), 0, 0
        pending: set[Future] = set()
        uploads: set[Future] = set()
        # renders run in worker processes; uploads overlap them, one upload thread per process
        uploader = ThreadPoolExecutor(max_workers=self.pool.workers, thread_name_prefix="shard-upload")
        try:
            pool = self.pool.get()
            pending = {pool.submit(render_shard, sp, spec, self.work_dir, True) for sp in todo}
            while pending or uploads:
                finished, _ = wait(pending | uploads, timeout=0.25, return_when=FIRST_COMPLETED)
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
                    new_warnings = self.add_skipped(r.skipped, r.skipped_examples)
                    self.report(shard={**r.to_dict(), "files": {}, "reused": False}, warnings=new_warnings,
                                items_done=len(results), windows_written=self.progress["windows_written"] + r.count,
                                windows_per_s=fresh_windows / elapsed, eta_s=left * elapsed / fresh_shards)
        finally:
            for fut in pending:
                fut.cancel()
            uploader.shutdown(wait=True, cancel_futures=True)
        return results

    def _upload(self, r: ShardResult) -> ShardResult:
        """Put a shard's files under datasets/<name>/<shard key>/ (skipped when already stored identical)."""
        store = self.ctx.store
        for name, path in sorted(r.files.items()):
            key = dataset_file_key(self.dataset, f"{r.key}/{name}")
            try:
                if store.stat(key).sha256 == r.sha256[name]:
                    continue
            except NotFound:
                pass
            with_retries(lambda key=key, path=path, name=name: store.put_file(key, path, sha256=r.sha256[name]),
                         RETRY_STORAGE_S)
            size = r.sizes.get(name) or os.path.getsize(path)
            with self._lock:
                self.progress["bytes_written"] += size
        return r

    def _publish(self, spec: DatasetSpec, plan: DatasetPlan, results: list[ShardResult]) -> None:
        self.report(phase="publishing", items_done=0, items_total=1, eta_s=0.0)
        written = sum(r.count for r in results)
        if written == 0:
            skipped: Counter[str] = Counter(plan.skipped_counts)
            for r in results:
                skipped.update(r.skipped)
            raise JobFailed(self._nothing_message(plan.n_listed, dict(skipped), plan.filtered))
        store = self.ctx.store
        names = results[0].sha256
        wanted = {dataset_file_key(self.dataset, f"{sp.key}/{name}") for sp in plan.shards for name in names}
        for info in store.list(shards_prefix(self.dataset)):
            if info.key not in wanted:  # left by a cancelled job of another request under this name
                store.delete(info.key)
        text = manifest_json(build_manifest(spec, plan, results)).encode()
        with self.publishing:
            if self.ctx.control().get("cancel"):
                raise Cancelled()
            with_retries(lambda: store.put_bytes(manifest_key(self.dataset), text, content_type="application/json"),
                         RETRY_STORAGE_S)
            self.report(phase="done", items_done=1, bytes_written=self.progress["bytes_written"] + len(text))
            if self._cancelled_meanwhile():
                store.delete(manifest_key(self.dataset))  # a cancel won the race: no manifest
                raise Cancelled()

    def _cancelled_meanwhile(self) -> bool:
        events = with_retries(lambda: self.ctx.log.read(), RETRY_STORAGE_S)
        return fold(self.ctx.record.create_time, events)[0]["state"] == JobState.CANCELLED.value


def run_job(ctx: WorkerContext) -> int:
    """One attempt of a dataset job; its outcome is in the log (the exit code is for the executor)."""
    log = get_logger(job_id=ctx.job_id, attempt=ctx.attempt)
    runner = DatasetRunner(ctx)
    runner.pool.start()  # first: its processes import the data library while this one reports and plans
    ctx.start_heartbeat(on_cancel=runner.on_cancel, on_fenced=kill_own_group)
    try:
        ctx.state(JobState.RUNNING, f"worker started ({ctx.settings.data_workers} render process(es))")
        log.info("dataset job", dataset=runner.dataset)
        runner.run()
        return 0
    except Cancelled:
        ctx.state(JobState.CANCELLED, "cancelled")  # ignored when the heartbeat thread said it first
        reason = ""
    except BrokenProcessPool:
        reason = "a worker process died while rendering shards (out of memory or killed)"
    except (JobFailed, QuakestackError, ValueError, OSError) as exc:
        reason = runner.local_message(str(exc))
    except Exception as exc:  # noqa: BLE001 - a job must end FAILED, never vanish
        log.error("dataset job crashed", error=str(exc), traceback=traceback.format_exc())
        reason = f"{type(exc).__name__}: {runner.local_message(str(exc))}"
    if reason:
        ctx.state(JobState.FAILED, reason[:2000])
    shutil.rmtree(runner.work_dir, ignore_errors=True)  # nothing of an ended job is reused
    return 1 if reason else 0
