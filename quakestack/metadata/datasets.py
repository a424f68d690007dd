"""The dataset catalog's rows: a dataset exists exactly when its row is published.

The manifest and the shards stay in object storage; the row names the manifest and holds its sha256
(the dataset's lineage id), its window count and size, and the one job allowed to write it. Creating a
dataset claims the name (a row with its writer, one transaction: of two replicas accepting the same
name at once, one gets ALREADY_EXISTS); the writer publishes the row after the manifest is stored;
a delete removes the row first, so the dataset stops existing before its objects go.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from quakestack.errors import AlreadyExists, Conflict, NotFound
from quakestack.layout import manifest_key
from quakestack.metadata.database import Database
from quakestack.metadata.schema import datasets


@dataclass(frozen=True)
class DatasetRow:
    name: str
    manifest_key: str
    manifest_sha256: str
    windows: int
    size_bytes: int
    created_s: float


class DatasetCatalog:
    def __init__(self, db: Database):
        self.db = db

    # -- reads --------------------------------------------------------------------------------
    def find(self, name: str) -> DatasetRow | None:
        with self.db.read() as conn:
            row = conn.execute(sa.select(datasets).where(datasets.c.name == name, datasets.c.published)).first()
        if row is None:
            return None
        return DatasetRow(row.name, row.manifest_key, row.manifest_sha256, int(row.windows), int(row.size_bytes),
                          float(row.created_s))

    def get(self, name: str) -> DatasetRow:
        row = self.find(name)
        if row is None:
            raise NotFound(f"dataset {name!r} not found")
        return row

    def exists(self, name: str) -> bool:
        return self.find(name) is not None

    def writer(self, name: str) -> str | None:
        """The job holding the claim on a dataset that is not published (None when published or unclaimed)."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(datasets.c.writer_job_id, datasets.c.published)
                               .where(datasets.c.name == name)).first()
        return None if row is None or row.published else row.writer_job_id

    def names(self, after: str | None, size: int) -> tuple[list[str], bool]:
        """Published dataset names in order after `after` (keyset), and whether more follow."""
        query = sa.select(datasets.c.name).where(datasets.c.published).order_by(datasets.c.name).limit(size + 1)
        if after is not None:
            query = query.where(datasets.c.name > after)
        with self.db.read() as conn:
            names = list(conn.execute(query).scalars())
        return names[:size], len(names) > size

    # -- writes -------------------------------------------------------------------------------
    def claim(self, name: str, job_id: str, writer_unfinished: Callable[[str, float], bool]) -> None:
        """Make `job_id` the dataset's only writer: ALREADY_EXISTS when it is published, or while another
        writer that has not ended holds it (`writer_unfinished(job_id, claimed_at)`)."""
        now = time.time()
        try:
            with self.db.write() as conn:
                row = conn.execute(sa.select(datasets).where(datasets.c.name == name).with_for_update()).first()
                if row is None:
                    conn.execute(sa.insert(datasets).values(name=name, published=False, manifest_key="",
                                                            manifest_sha256="", windows=0, size_bytes=0,
                                                            created_s=0.0, writer_job_id=job_id,
                                                            writer_claimed_s=now))
                    return
                if row.published:
                    raise AlreadyExists(f"dataset {name!r} already exists")
                if row.writer_job_id and writer_unfinished(row.writer_job_id, float(row.writer_claimed_s)):
                    raise AlreadyExists(f"dataset {name!r} is being written by job {row.writer_job_id}")
                conn.execute(sa.update(datasets).where(datasets.c.name == name)
                             .values(writer_job_id=job_id, writer_claimed_s=now))
        except Conflict:
            raise AlreadyExists(f"dataset {name!r} is being written by another job, created just now") from None

    def publish(self, name: str, job_id: str, manifest: bytes, windows: int, size_bytes: int) -> DatasetRow:
        """The writer's last step, after the manifest is stored: the dataset exists from this commit on."""
        sha = hashlib.sha256(manifest).hexdigest()
        with self.db.write() as conn:
            changed = conn.execute(sa.update(datasets).where(datasets.c.name == name,
                                                             datasets.c.writer_job_id == job_id)
                                   .values(published=True, manifest_key=manifest_key(name), manifest_sha256=sha,
                                           windows=windows, size_bytes=size_bytes, created_s=time.time())).rowcount
        if not changed:
            raise Conflict(f"dataset {name!r} is no longer written by job {job_id}")
        return self.get(name)

    def unpublish(self, name: str, job_id: str) -> None:
        """A writer that lost a race with its own cancel takes its publication back."""
        with self.db.write() as conn:
            conn.execute(sa.update(datasets).where(datasets.c.name == name, datasets.c.writer_job_id == job_id)
                         .values(published=False))

    def delete(self, name: str) -> None:
        with self.db.write() as conn:
            gone = conn.execute(sa.delete(datasets).where(datasets.c.name == name, datasets.c.published)).rowcount
        if not gone:
            raise NotFound(f"dataset {name!r} not found")

    # -- the import of an older bucket --------------------------------------------------------
    def import_published(self, name: str, manifest: bytes, windows: int, size: int) -> bool:
        """A dataset an older version published (its manifest's bytes and figures); False when already here."""
        try:
            with self.db.write() as conn:
                if conn.execute(sa.select(datasets.c.name).where(datasets.c.name == name)).first() is not None:
                    return False
                conn.execute(sa.insert(datasets).values(
                    name=name, published=True, manifest_key=manifest_key(name),
                    manifest_sha256=hashlib.sha256(manifest).hexdigest(), windows=windows, size_bytes=int(size),
                    created_s=time.time(), writer_job_id=None, writer_claimed_s=0.0))
        except Conflict:
            return False
        return True

    def import_claim(self, name: str, job_id: str, claimed_s: float) -> None:
        try:
            with self.db.write() as conn:
                if conn.execute(sa.select(datasets.c.name).where(datasets.c.name == name)).first() is None:
                    conn.execute(sa.insert(datasets).values(
                        name=name, published=False, manifest_key="", manifest_sha256="", windows=0, size_bytes=0,
                        created_s=0.0, writer_job_id=job_id or None, writer_claimed_s=claimed_s))
        except Conflict:
            return
