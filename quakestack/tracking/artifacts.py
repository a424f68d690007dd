"""A training job's tracking artifacts on object storage: its TensorBoard event file and the archives of its folders.

The worker publishes the event file after every epoch and once more with the job's end; the trainer serves a
job's `tensorboard/` or `eval/` folder as one tar.gz (DownloadArtifact `tensorboard.tar.gz`, `eval.tar.gz`),
whose members are `<job-id>/<file>`, so that archives of several jobs extract side by side into one logdir.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterable, Mapping
from typing import Any

from quakestack.layout import JOB_ARCHIVES, TENSORBOARD_DIR, job_archive_prefix, job_prefix, tensorboard_key
from quakestack.protoconv import seconds_from_iso
from quakestack.storage import ObjectStore
from quakestack.tracking.tensorboard import render_event_file


def publish_event_file(store: ObjectStore, job_id: str, spec: Mapping[str, Any], create_time: str,
                       epochs: Iterable[Mapping[str, Any]], end_state: str | None = None) -> str:
    """Render the job's event file from its epoch events and store it under its one key (replacing the last)."""
    data = render_event_file(job_id, spec, create_time, epochs, end_state)
    store.put_bytes(tensorboard_key(job_id), data, content_type="application/octet-stream")
    return tensorboard_key(job_id)


def tar_gz(members: Iterable[tuple[str, bytes]], mtime: float = 0.0) -> bytes:
    """A gzip'd tar of (name, bytes) members: the same members give the same bytes (fixed times, no owner)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), int(mtime), 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def job_archive(store: ObjectStore, job_id: str, path: str, *, spec: Mapping[str, Any], create_time: str,
                epochs: list[Mapping[str, Any]], state: str) -> bytes:
    """The tar.gz DownloadArtifact sends for `path` (a key of JOB_ARCHIVES). A job whose worker stored no event
    file (trained by an earlier version, or ended before its first epoch) gets one rendered from its events."""
    prefix = job_archive_prefix(job_id, path)
    if prefix is None:
        raise KeyError(path)
    base = job_prefix(job_id)
    members = [(f"{job_id}/{info.key[len(prefix):]}", store.get_bytes(info.key)) for info in store.list(prefix)]
    if not members and JOB_ARCHIVES[path] == TENSORBOARD_DIR:
        data = render_event_file(job_id, spec, create_time, epochs, state)
        members = [(f"{job_id}/{tensorboard_key(job_id)[len(base) + len(TENSORBOARD_DIR):]}", data)]
    last = max((seconds_from_iso(e.get("time")) or 0.0 for e in epochs), default=0.0)
    return tar_gz(sorted(members), mtime=last or (seconds_from_iso(create_time) or 0.0))
