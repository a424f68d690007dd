"""The dataset runner of the job runtime: one attempt of a dataset job, from its spec and the store.

Started as `python -m quakestack.jobs.worker --job-id <id> --attempt <n>` (see quakestack.jobs.worker).
Phases: planning (download the sources the spec lists, plan the shards) -> writing (shards render
in a pool of `data_workers` processes while threads upload the finished ones) -> publishing (the
manifest, last). Every published shard is one progress event carrying its result, so a later
attempt skips the shards already stored with the same plan_sha256 and sha256s, and one rendered
locally before a crash is reused by `render_shard(resume=True)`: a retried job ends with the same
bytes, each shard published once. A cancel (the control record) kills this process group at once:
the finished shards stay, the manifest is never written.

Fan-out (spec `workers` = n > 1, quakestack.jobs.fanout): every worker plans (the plan is a pure
function of the spec and the sources' bytes) and renders shards ``i::n``; each uploaded shard's
result is created once, conditionally, under `jobs/<id>/shards/`. Rank 0 alone reports: it turns the
peers' results into the shard events, watches the peers' heartbeats and renders the share of a
peer that died or stalled itself (a shard is recorded once even if a stalled peer finishes it too:
the bytes are the same), then publishes the manifest. Locally rank 0 starts the peers; on Kubernetes
they are the other pods of the Indexed Job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import threading
import time
import traceback
from collections import Counter
from collections.abc import Container
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from quakestack.data import DatasetSpec, ShardResult, plan_dataset, render_shard
from quakestack.data.jobs import PROGRESS_FIELDS, spec_parameters
from quakestack.data.manifest import manifest_json, manifest_size, manifest_windows
from quakestack.data.pipeline import DatasetPlan, build_manifest
from quakestack.data.readers import minor_reasons
from quakestack.data.records import NO_NOISE_REASON, NOISE_CATEGORY
from quakestack.data.source_files import SourceFiles, fetch, source_spec
from quakestack.errors import Conflict, NotFound, QuakestackError
from quakestack.jobs import fanout
from quakestack.jobs.executor import worker_command
from quakestack.jobs.heartbeat import HeartbeatWatch
from quakestack.jobs.retry import with_retries
from quakestack.jobs.state import JobState
from quakestack.jobs.worker import RETRY_STORAGE_S, WorkerContext, kill_own_group
from quakestack.layout import dataset_file_key, manifest_key, shard_result_key, shard_results_prefix, shards_prefix
from quakestack.logging import get_logger
from quakestack.metadata.datasets import DatasetCatalog

__all__ = ["run_job"]
PROGRESS_EVERY_S = 1.0  # progress between shards (downloads) is reported at most this often
PEERS_POLL_S = 0.5  # how often rank 0 lists the peers' shard results
MAX_WARNINGS = 50
_RESULT_FIELDS = {f.name for f in dataclasses.fields(ShardResult)}


class JobFailed(Exception):
    """A job-level failure whose message is already precise."""


class Cancelled(Exception):
    """A cancel arrived while the manifest was being published: the job ends CANCELLED, without it."""


def _render_init() -> None:
    """Die with the forkserver: a render process must never outlive its job."""
    fanout.die_with_parent()
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
        os.environ["RENDER_POOL_PARENT"] = str(os.getpid())  # die_with_parent's check (this process's pid)
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

    def __init__(self, ctx: WorkerContext, rank: int = 0, count: int = 1):
        self.ctx = ctx
        self.spec = ctx.spec
        self.rank, self.count = rank, count
        self.dataset: str = ctx.spec["dataset"]
        self.cache_dir = ctx.settings.cache_dir
        self.job_dir = os.path.join(self.cache_dir, "work", ctx.job_id)
        self.work_dir = os.path.join(self.job_dir, f"worker-{rank}")  # local peers share the cache
        self.pool = RenderPool(fanout.local_share(ctx.settings.data_workers, count))
        self.peers: list[subprocess.Popen] = []  # local peers (rank 0 on this machine only)
        self.publishing = threading.Lock()  # a cancel waits for a manifest being written (then undoes it)
        self.progress: dict[str, Any] = {k: 0 for k in PROGRESS_FIELDS} | {"phase": "planning"}
        self.skipped: Counter[str] = Counter()
        self.warnings: list[str] = []
        self._last_emit = 0.0
        self._lock = threading.Lock()  # upload threads add bytes concurrently

    # -- reporting ----------------------------------------------------------------------------
    def report(self, force: bool = True, shard: dict[str, Any] | None = None, warnings: bool = False,
               **changes: Any) -> None:
        if self.rank != 0:
            return  # rank 0 reports for every worker
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
            shutil.rmtree(self.job_dir, ignore_errors=True)
            kill_own_group()

    def leave(self) -> None:
        """A peer's end on cancel or a newer attempt: its renderers and itself, never rank 0's group."""
        self.pool.discard()
        os._exit(0)

    # -- the phases ---------------------------------------------------------------------------
    def run(self) -> None:
        started = time.monotonic()
        try:
            spec, plan = self._plan()
            results = self._write(spec, plan)
            if self.rank != 0:
                return
            fanout.stop_peers(self.peers)
            self._publish(spec, plan, results)
        finally:
            self.pool.discard()
            fanout.stop_peers(self.peers)
        shutil.rmtree(self.job_dir, ignore_errors=True)
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
        return {e["shard"]["key"]: e["shard"] for e in self.ctx.events(("progress",)) if e.get("shard")}

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
        return ShardResult.from_dict({**{k: v for k, v in prev.items() if k in _RESULT_FIELDS}, "reused": True})

    def _stored_results(self, known: Container[str] = ()) -> dict[str, dict[str, Any]]:
        """The shard results the job's workers created so far (any attempt) and not in `known`, by shard key:
        one LIST, then a GET for each new one (rank 0 polls this; results once read are never read again)."""
        job_prefix = shard_results_prefix(self.ctx.job_id).removesuffix("shards/")
        infos = with_retries(lambda: self.ctx.store.list(shard_results_prefix(self.ctx.job_id)), RETRY_STORAGE_S)
        out = {}
        for info in infos:
            if info.key[len(job_prefix):].removesuffix(".json") in known:
                continue
            value = with_retries(lambda key=info.key: self.ctx.store.get_json(key), RETRY_STORAGE_S)
            out[value["key"]] = value
        return out

    def _write(self, spec: DatasetSpec, plan: DatasetPlan) -> list[ShardResult]:
        """Render this worker's share; rank 0 also gathers every peer's and renders a lost peer's share."""
        planned = {sp.key: sp for sp in plan.shards}
        published = self._published()
        results: dict[str, ShardResult] = {}
        for sp in plan.shards:
            done = self._reusable(published.get(sp.key), sp.plan_sha256)
            if done:
                results[sp.key] = done
        for r in results.values():
            self.add_skipped(r.skipped, [])
        self.report(phase="writing", items_total=len(plan.shards), items_done=len(results),
                    windows_written=sum(r.count for r in results.values()), windows_per_s=0.0, eta_s=0.0,
                    windows_gap_filled=sum(r.gap_filled_windows for r in results.values()))
        clock = Rate(self, len(plan.shards), len(results))
        gather = PeerGather(self, planned, results) if self.rank == 0 and self.count > 1 else None
        if gather is not None:  # results an earlier attempt's peers recorded count before anything is rendered
            for r in gather.poll(force=True):
                clock.accepted(r, fresh=False, peer=True)
        elif self.rank != 0:
            stored = self._stored_results()
            for key, value in stored.items():
                done = self._reusable(value, planned[key].plan_sha256) if key in planned else None
                if done:
                    results[key] = done
        mine = [sp for sp in fanout.share(plan.shards, self.rank, self.count) if sp.key not in results]
        if not mine and gather is None:
            return list(results.values())
        pending: dict[Future, Any] = {}
        uploads: set[Future] = set()
        # renders run in worker processes; uploads overlap them, one upload thread per process
        uploader = ThreadPoolExecutor(max_workers=self.pool.workers, thread_name_prefix="shard-upload")
        try:
            pool = self.pool.get()
            pending = {pool.submit(render_shard, sp, spec, self.work_dir, True): sp for sp in mine}
            taken = {sp.key for sp in mine}  # everything this worker renders, until it is recorded
            while pending or uploads or (gather is not None and len(results) < len(plan.shards)):
                if pending or uploads:
                    finished, _ = wait(set(pending) | uploads, timeout=0.25, return_when=FIRST_COMPLETED)
                else:
                    finished = set()
                    time.sleep(0.25)
                for fut in finished & set(pending):
                    pending.pop(fut)
                    uploads.add(uploader.submit(self._upload, fut.result()))
                for fut in finished & uploads:
                    uploads.discard(fut)
                    r = fut.result()
                    if r.key not in results:
                        results[r.key] = r
                        clock.accepted(r, fresh=True)
                if gather is not None:
                    for r in gather.poll():
                        clock.accepted(r, fresh=True, peer=True)
                    for sp in gather.orphaned(taken):
                        taken.add(sp.key)
                        pending[pool.submit(render_shard, sp, spec, self.work_dir, True)] = sp
        finally:
            for fut in pending:
                fut.cancel()
            uploader.shutdown(wait=True, cancel_futures=True)
        return [results[sp.key] for sp in plan.shards if sp.key in results]

    def _upload(self, r: ShardResult) -> ShardResult:
        """Put a shard's files under datasets/<name>/<shard key>/ (skipped when already stored identical),
        then create its result once (another worker's identical result may have won)."""
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
        body = {**r.to_dict(), "files": {}, "reused": False, "rank": self.rank, "attempt": self.ctx.attempt}
        with contextlib.suppress(Conflict):
            with_retries(lambda: store.put_if(shard_result_key(self.ctx.job_id, r.key),
                                              json.dumps(body).encode()), RETRY_STORAGE_S)
        return r

    def _publish(self, spec: DatasetSpec, plan: DatasetPlan, results: list[ShardResult]) -> None:
        self.report(phase="publishing", items_done=0, items_total=1, eta_s=0.0)
        written = sum(r.count for r in results)
        skipped: Counter[str] = Counter(plan.skipped_counts)
        for r in results:
            skipped.update(r.skipped)
        if written == 0:
            raise JobFailed(self._nothing_message(plan.n_listed, dict(skipped), plan.filtered))
        if only_noise_left(plan, results):  # one outcome whenever the events are gone: FAILED, reasons counted
            raise JobFailed(f"no event window to write: every event item was refused, and the {written} noise "
                            "windows left are not published as the dataset; "
                            + "; ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items())))
        store = self.ctx.store
        names = results[0].sha256
        wanted = {dataset_file_key(self.dataset, f"{sp.key}/{name}") for sp in plan.shards for name in names}
        for info in store.list(shards_prefix(self.dataset)):
            if info.key not in wanted:  # left by a cancelled job of another request under this name
                store.delete(info.key)
        manifest = build_manifest(spec, plan, results)
        text = manifest_json(manifest).encode()
        catalog = DatasetCatalog(self.ctx.jobs.db)
        with self.publishing:
            if self.ctx.control().get("cancel"):
                raise Cancelled()
            with_retries(lambda: store.put_bytes(manifest_key(self.dataset), text, content_type="application/json"),
                         RETRY_STORAGE_S)
            with_retries(lambda: catalog.publish(self.dataset, self.ctx.job_id, text, manifest_windows(manifest),
                                                 manifest_size(manifest)), RETRY_STORAGE_S)
            self.report(phase="done", items_done=1, bytes_written=self.progress["bytes_written"] + len(text))
            if self._cancelled_meanwhile():  # a cancel won the race: no dataset
                with_retries(lambda: catalog.unpublish(self.dataset, self.ctx.job_id), RETRY_STORAGE_S)
                store.delete(manifest_key(self.dataset))
                raise Cancelled()

    def _cancelled_meanwhile(self) -> bool:
        return self.ctx.status()["state"] == JobState.CANCELLED.value


def only_noise_left(plan: DatasetPlan, results: list[ShardResult]) -> bool:
    """Events were asked for (listed, or refused while listing) and none was written: what is left is noise
    the request did not want alone (a noise-only source, with nothing refused, is published as it is)."""
    events_written = sum(n for r in results for category, n in r.category_counts.items() if category != NOISE_CATEGORY)
    if events_written:
        return False
    events_listed = sum(1 for sp in plan.shards for item in sp.items if item.category != NOISE_CATEGORY)
    refused_while_listing = sum(n for reason, n in plan.skipped_counts.items() if reason != NO_NOISE_REASON)
    return bool(events_listed or refused_while_listing)


class Rate:
    """Rank 0's writing progress: one shard event per newly recorded shard, with speed and ETA."""

    def __init__(self, runner: DatasetRunner, total: int, done: int):
        self.runner, self.total, self.done = runner, total, done
        self.started, self.windows, self.shards = time.monotonic(), 0, 0

    def accepted(self, r: ShardResult, fresh: bool, peer: bool = False) -> None:
        runner = self.runner
        self.done += 1
        if peer:  # this worker's own uploads count their bytes as they go
            with runner._lock:
                runner.progress["bytes_written"] += sum(int(v) for v in r.sizes.values())
        if fresh:
            self.windows += r.count
            self.shards += 1
        elapsed = max(time.monotonic() - self.started, 1e-6)
        new_warnings = runner.add_skipped(r.skipped, r.skipped_examples)
        runner.report(shard={**r.to_dict(), "files": {}, "reused": False}, warnings=new_warnings,
                      items_done=self.done, windows_written=runner.progress["windows_written"] + r.count,
                      windows_gap_filled=runner.progress["windows_gap_filled"] + r.gap_filled_windows,
                      windows_per_s=self.windows / elapsed,
                      eta_s=(self.total - self.done) * elapsed / max(self.shards, 1))


class PeerGather:
    """Rank 0's view of its peers: their recorded shards (one LIST a poll) and whether each is still alive
    (its heartbeat moves, its local process runs); a lost peer's unrecorded shards are handed to rank 0."""

    def __init__(self, runner: DatasetRunner, planned: dict[str, Any], results: dict[str, ShardResult]):
        self.runner, self.planned, self.results = runner, planned, results
        ctx = runner.ctx
        self.watches = {rank: HeartbeatWatch(ctx.settings.jobs_lost_after_s) for rank in range(1, runner.count)}
        self.lost: set[int] = set()
        self.last_poll = 0.0

    def poll(self, force: bool = False) -> list[ShardResult]:
        """The peers' results not seen before (verified against this worker's own plan)."""
        if not force and time.monotonic() - self.last_poll < PEERS_POLL_S:
            return []
        self.last_poll = time.monotonic()
        self._watch()  # before the LIST: a peer seen exited has every result it made in it
        fresh = []
        for key, value in self.runner._stored_results(known=self.results.keys()).items():
            if key in self.results or key not in self.planned:
                continue
            if value.get("plan_sha256") != self.planned[key].plan_sha256:
                raise JobFailed(f"worker {value.get('rank')} planned shard {key} differently from worker 0 "
                                f"(plan sha256 {value.get('plan_sha256')} vs {self.planned[key].plan_sha256}): "
                                "the sources changed while the job ran")
            done = self.runner._reusable(value, value["plan_sha256"])
            if done is not None:
                self.results[key] = done
                fresh.append(done)
        return fresh

    def _watch(self) -> None:
        ctx = self.runner.ctx
        local = {rank: peer for rank, peer in enumerate(self.runner.peers, start=1)}
        for rank, watch in self.watches.items():
            if rank in self.lost:
                continue
            try:
                beat = ctx.jobs.heartbeat(ctx.job_id, rank)
            except QuakestackError:
                watch.storage_unreachable()
                continue
            current = beat if beat is not None and int(beat.get("attempt", -1)) == ctx.attempt else None
            watch.observe(current)
            process_ended = rank in local and local[rank].poll() is not None
            if watch.lost or process_ended or (current or {}).get("exited"):
                self.lost.add(rank)

    def orphaned(self, taken: set[str]) -> list[Any]:
        """The unrecorded shards of lost peers that rank 0 is not yet rendering: now rank 0's."""
        runner = self.runner
        shards = list(self.planned.values())
        out = []
        for rank in sorted(self.lost):
            for sp in fanout.share(shards, rank, runner.count):
                if sp.key not in self.results and sp.key not in taken:
                    out.append(sp)
        if out:
            get_logger(job_id=runner.ctx.job_id).warning("taking over the shards of lost workers",
                                                         workers=sorted(self.lost), shards=len(out))
        return out


def run_job(ctx: WorkerContext) -> int:
    """One attempt of a dataset job (rank 0), or one peer's share of it; the outcome is in the log (the exit
    code is for the executor)."""
    rank, count = fanout.index(), max(1, int(ctx.spec.get("workers", 1)))
    log = get_logger(job_id=ctx.job_id, attempt=ctx.attempt, rank=rank)
    runner = DatasetRunner(ctx, rank, count)
    runner.pool.start()  # first: its processes import the data library while this one reports and plans
    if rank != 0:
        ctx.start_heartbeat(on_cancel=runner.leave, on_fenced=runner.leave)
        try:
            runner.run()
            return 0
        except Exception as exc:  # noqa: BLE001 - rank 0 sees the missing shards and takes them over
            log.error("dataset worker failed", error=str(exc), traceback=traceback.format_exc())
            return 1
        finally:
            runner.pool.discard()
            shutil.rmtree(runner.work_dir, ignore_errors=True)
    ctx.start_heartbeat(on_cancel=runner.on_cancel, on_fenced=kill_own_group)
    try:
        ctx.state(JobState.RUNNING, f"worker started ({count} worker(s), {runner.pool.workers} render process(es) "
                                    "each)" if count > 1 else
                  f"worker started ({runner.pool.workers} render process(es))")
        if count > 1 and not fanout.in_pods():
            runner.peers = fanout.spawn_peers(worker_command(ctx.job_id, ctx.attempt), count)
        log.info("dataset job", dataset=runner.dataset, workers=count)
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
    shutil.rmtree(runner.job_dir, ignore_errors=True)  # nothing of an ended job is reused
    return 1 if reason else 0
