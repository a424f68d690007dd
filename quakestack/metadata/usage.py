"""Bytes each token has stored through uploads (its storage quota), one row per token."""

from __future__ import annotations

import sqlalchemy as sa

from quakestack.errors import Conflict
from quakestack.metadata.database import Database
from quakestack.metadata.schema import usage


class UsageLedger:
    def __init__(self, db: Database):
        self.db = db

    def used(self, identity_id: str) -> int:
        with self.db.read() as conn:
            value = conn.execute(sa.select(usage.c.stored_bytes).where(usage.c.identity_id == identity_id)).scalar()
        return int(value or 0)

    def add(self, identity_id: str, size: int) -> None:
        """Add to the token's total atomically (two uploads finishing at once both count)."""
        self._apply(identity_id, lambda conn: conn.execute(
            sa.update(usage).where(usage.c.identity_id == identity_id)
            .values(stored_bytes=usage.c.stored_bytes + int(size))).rowcount, int(size))

    def set(self, identity_id: str, total: int) -> None:
        self._apply(identity_id, lambda conn: conn.execute(
            sa.update(usage).where(usage.c.identity_id == identity_id).values(stored_bytes=int(total))).rowcount,
            int(total))

    def _apply(self, identity_id: str, change, initial: int) -> None:
        for _ in range(3):
            try:
                with self.db.write() as conn:
                    if not change(conn):
                        conn.execute(sa.insert(usage).values(identity_id=identity_id, stored_bytes=initial))
                return
            except Conflict:
                continue  # the first row of this token was inserted meanwhile: update it
        raise Conflict(f"usage of {identity_id!r}: could not record the upload")
