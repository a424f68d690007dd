"""The dataset jobs of this service: create (validated), run in threads, watch, cancel, resume at start.

State lives in `jobs/<id>/job.json` (kind "dataset"; the trainer keeps kind "training" beside it),
so jobs outlive the process: at start, unfinished dataset jobs are found and rerun.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import structlog

from quakestack.auth import current_identity
from quakestack.config import Settings
from quakestack.data import readers
from quakestack.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from quakestack.layout import JOBS_PREFIX, manifest_key, spec_key
from quakestack.pagination import PageRequest, paginate
from quakestack.quotas import check_queued_jobs
from quakestack.storage import ObjectStore, validate_name
from quakestack.v1 import data_pb2
from services.data import sources as src
from services.data.job import CANCELLED, KIND, QUEUED, RUNNING, Job
from services.data.requests import parameters, source_format
from services.data.runner import RenderPool, Runner

log = structlog.get_logger()
MAX_RUNNING = 2  # jobs rendering at once; they share the service's pool of data_workers processes
KEEP_FINISHED = 200


class JobManager:
    """Owns the live jobs of this process; storage holds all of them."""

    def __init__(self, store: ObjectStore, settings: Settings):
        readers.registry()  # a plugin that cannot load stops the start, naming it, not the first request
        self.store = store
        self.settings = settings
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(MAX_RUNNING)
        self.stopping = threading.Event()
        self.threads: dict[str, threading.Thread] = {}
        self.pool = RenderPool(settings.data_workers)
        self._recovered = False
        self.owners: dict[str, str] = {}  # job id -> token id, for the queued-jobs quota of this process

    # -- create -------------------------------------------------------------------------------
    def create(self, request: data_pb2.CreateDatasetRequest) -> Job:
        """Refuse what can be refused now (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, ALREADY_EXISTS)."""
        parameters(request)
        if not request.sources:
            raise InvalidArgument("a dataset needs at least one source")
        s = self.settings
        for i, source in enumerate(request.sources):
            source_format(source, i)
            src.check_location(self.store, source.waveforms, f"sources[{i}].waveforms", s.data_allowed_dirs,
                               s.cache_dir)
            if source.catalog.WhichOneof("location"):
                src.check_location(self.store, source.catalog, f"sources[{i}].catalog", s.data_allowed_dirs,
                                   s.cache_dir)
        owner = current_identity()
        with self.lock:
            check_queued_jobs(owner, sum(1 for job_id, who in self.owners.items()
                                         if who == owner.id and job_id in self.jobs and not self.jobs[job_id].terminal))
            if self.store.exists(manifest_key(request.name)):
                raise AlreadyExists(f"dataset {request.name!r} already exists")
            live = [j for j in self.jobs.values() if j.dataset == request.name and not j.terminal]
            if live:
                raise AlreadyExists(f"dataset {request.name!r} is being written by job {live[0].job_id}")
            job = Job(f"ds-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}", request)
            self.store.put_json(spec_key(job.job_id), job.to_record())
            self.jobs[job.job_id] = job
            self.owners[job.job_id] = owner.id
        self._start(job)
        return job

    def _start(self, job: Job) -> None:
        thread = threading.Thread(target=self._run, args=(job,), name=f"dataset-job-{job.job_id}", daemon=True)
        self.threads[job.job_id] = thread
        thread.start()

    def _run(self, job: Job) -> None:
        while not self.slots.acquire(timeout=0.5):
            if self.stopping.is_set():
                return
            if job.cancel_requested.is_set():
                job.finish(lambda: self.store.put_json(spec_key(job.job_id), job.to_record()), state=CANCELLED)
                return
        try:
            Runner(job, self.store, self.settings, self.stopping.is_set, self.pool).run()
        finally:
            self.slots.release()
            self._forget_old()

    def _forget_old(self) -> None:
        with self.lock:
            ended = sorted((j for j in self.jobs.values() if j.terminal), key=lambda j: j.create_time)
            for j in ended[: max(0, len(ended) - KEEP_FINISHED)]:
                self.jobs.pop(j.job_id, None)
                self.threads.pop(j.job_id, None)

    # -- resume -------------------------------------------------------------------------------
    def recover(self) -> None:
        """Once, when storage is first reachable: rerun the dataset jobs a dead process left unfinished."""
        with self.lock:
            if self._recovered:
                return
            self._recovered = True
        resumed = []
        for record in self._stored_records():
            if record.get("state") not in (QUEUED, RUNNING):
                continue
            with self.lock:
                if record["job_id"] in self.jobs:
                    continue
                job = Job.from_record(record)
                self.jobs[job.job_id] = job
            job.update(state=QUEUED, phase="queued")
            resumed.append(job.job_id)
            self._start(job)
        if resumed:
            log.info("resuming dataset jobs", jobs=resumed)

    def _stored_records(self) -> Iterator[dict]:
        for job_id in self.store.list_dirs(JOBS_PREFIX):
            try:
                record = self.store.get_json(spec_key(job_id))
            except (NotFound, InvalidArgument):  # gone meanwhile, or a folder no job id names
                continue
            if isinstance(record, dict) and record.get("kind") == KIND and record.get("job_id") == job_id:
                yield record

    def shutdown(self) -> None:
        """Stop rendering without ending the jobs: their state stays RUNNING and the next start resumes them."""
        self.stopping.set()
        for thread in list(self.threads.values()):
            thread.join(timeout=10)
        self.pool.discard()

    # -- queries ------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        validate_name(job_id, "job id")
        with self.lock:
            job = self.jobs.get(job_id)
        if job is not None:
            return job
        try:
            record = self.store.get_json(spec_key(job_id))
        except NotFound:
            raise NotFound(f"dataset job {job_id!r} not found") from None
        if not isinstance(record, dict) or record.get("kind") != KIND:
            raise NotFound(f"dataset job {job_id!r} not found")
        return Job.from_record(record)

    def list(self, page: PageRequest) -> tuple[list[Job], str]:
        """One page of this process's and stored jobs, newest first, and the next page's token."""
        with self.lock:
            live = dict(self.jobs)
        found = {r["job_id"]: Job.from_record(r) for r in self._stored_records() if r["job_id"] not in live}
        return paginate([*live.values(), *found.values()], page, lambda j: (j.create_time, j.job_id), descending=True)

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.terminal:
            raise FailedPrecondition(f"dataset job {job_id} already ended ({job.state})")
        with self.lock:
            live = self.jobs.get(job_id) is job
        if not live:  # owned by no thread here (a dead process's job not resumed yet): end it in storage
            job.finish(lambda: self.store.put_json(spec_key(job_id), job.to_record()), state=CANCELLED)
            return job
        job.cancel_requested.set()
        deadline = time.monotonic() + 15
        seen = -1
        while not job.terminal and time.monotonic() < deadline:
            seen = job.wait_change(seen, 0.5)
        return job

    def watch(self, job_id: str, active) -> Iterator[data_pb2.DatasetJob]:
        """The current state, then every change (the newest state when several happened) until the end."""
        job = self.get(job_id)
        seen = -1
        while True:
            with job.cond:
                version, ended = job.version, job.terminal
                snapshot = job.to_proto()
            if version != seen:
                yield snapshot
                seen = version
            if ended or not active():
                return
            job.wait_change(seen, 1.0)
