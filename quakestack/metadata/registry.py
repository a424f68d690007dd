"""The model registry's rows: model names, versions with their cards, and aliases.

Weights stay in object storage under the key a version's row names. A version number is the model's
highest plus one, taken inside the write transaction that inserts the row (a replica that loses the
race on the primary key takes the next), so two replicas registering at once get two versions, never
one twice. Alias moves are single statements; a version's delete takes its aliases with it.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from quakestack.errors import Conflict, NotFound
from quakestack.metadata.database import Database, dumps, loads
from quakestack.metadata.schema import model_aliases, model_versions, models
from quakestack.protoconv import utc_now_iso

REGISTER_RETRIES = 20


class Registry:
    def __init__(self, db: Database):
        self.db = db

    # -- reads --------------------------------------------------------------------------------
    def names(self, after: str | None = None, size: int | None = None) -> tuple[list[str], bool]:
        """Registered model names in order, after a name (keyset), and whether more follow."""
        query = sa.select(models.c.name).order_by(models.c.name)
        if after is not None:
            query = query.where(models.c.name > after)
        if size is not None:
            query = query.limit(size + 1)
        with self.db.read() as conn:
            names = list(conn.execute(query).scalars().all())
        if size is None:
            return names, False
        return names[:size], len(names) > size

    def version_numbers(self, name: str) -> list[int]:
        with self.db.read() as conn:
            return [int(v) for v in conn.execute(sa.select(model_versions.c.version)
                                                 .where(model_versions.c.name == name)
                                                 .order_by(model_versions.c.version)).scalars()]

    def aliases(self, name: str) -> dict[str, int]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(model_aliases.c.alias, model_aliases.c.version)
                                .where(model_aliases.c.name == name)).all()
        return {r.alias: int(r.version) for r in rows}

    def card(self, name: str, version: int) -> dict[str, Any]:
        with self.db.read() as conn:
            raw = conn.execute(sa.select(model_versions.c.card).where(model_versions.c.name == name,
                                                                      model_versions.c.version == int(version))
                               ).scalar()
            if raw is None:
                raise NotFound(f"model {name!r} has no version {version}")
            aliases = conn.execute(sa.select(model_aliases.c.alias).where(
                model_aliases.c.name == name, model_aliases.c.version == int(version))).scalars().all()
        return {**loads(raw), "aliases": sorted(aliases)}

    def cards(self, name: str) -> list[dict[str, Any]]:
        """Every version's card, oldest first (one model's history)."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(model_versions.c.version, model_versions.c.card)
                                .where(model_versions.c.name == name).order_by(model_versions.c.version)).all()
            aliases = conn.execute(sa.select(model_aliases.c.alias, model_aliases.c.version)
                                   .where(model_aliases.c.name == name)).all()
        by_version: dict[int, list[str]] = {}
        for a in aliases:
            by_version.setdefault(int(a.version), []).append(a.alias)
        return [{**loads(r.card), "aliases": sorted(by_version.get(int(r.version), []))} for r in rows]

    def with_alias(self, alias: str) -> list[tuple[str, int]]:
        """(name, version) of every model whose alias `alias` is set."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(model_aliases.c.name, model_aliases.c.version)
                                .where(model_aliases.c.alias == alias).order_by(model_aliases.c.name)).all()
        return [(r.name, int(r.version)) for r in rows]

    def trained_on(self, dataset: str, limit: int) -> tuple[int, list[tuple[str, int]]]:
        """How many versions name a dataset in their lineage, and the first few."""
        where = model_versions.c.dataset == dataset
        with self.db.read() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(model_versions).where(where)).scalar()
                        or 0)
            rows = conn.execute(sa.select(model_versions.c.name, model_versions.c.version).where(where)
                                .order_by(model_versions.c.name, model_versions.c.version).limit(limit)).all()
        return total, [(r.name, int(r.version)) for r in rows]

    def weights_shared(self, weights_key: str) -> int:
        """How many versions use one weights object (a delete removes it only when the last one goes)."""
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(model_versions)
                                    .where(model_versions.c.weights_key == weights_key)).scalar() or 0)

    # -- writes -------------------------------------------------------------------------------
    def add_version(self, name: str, card: dict[str, Any], aliases: list[str]) -> int:
        """Insert the next version of `name` with its card (weights already stored); its number."""
        for _ in range(REGISTER_RETRIES):
            try:
                with self.db.write() as conn:
                    _ensure_model(conn, name)
                    version = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(model_versions.c.version), 0))
                                               .where(model_versions.c.name == name)).scalar()) + 1
                    full = {**card, "name": name, "version": version, "create_time": utc_now_iso()}
                    full.pop("aliases", None)
                    conn.execute(sa.insert(model_versions).values(_version_row(name, version, full)))
                    for alias in aliases:
                        _set_alias(conn, name, alias, version)
                return version
            except Conflict:
                continue  # another replica took this number: take the next
        raise Conflict(f"model {name!r}: could not take a version number after {REGISTER_RETRIES} tries")

    def set_alias(self, name: str, alias: str, version: int) -> None:
        with self.db.write() as conn:
            exists = conn.execute(sa.select(model_versions.c.version).where(
                model_versions.c.name == name, model_versions.c.version == int(version))).first()
            if exists is None:
                raise NotFound(f"model {name!r} has no version {version}")
            _set_alias(conn, name, alias, int(version))

    def delete_alias(self, name: str, alias: str) -> None:
        with self.db.write() as conn:
            gone = conn.execute(sa.delete(model_aliases).where(model_aliases.c.name == name,
                                                               model_aliases.c.alias == alias)).rowcount
        if not gone:
            raise NotFound(f"model {name!r} has no alias {alias!r}")

    def delete_version(self, name: str, version: int) -> dict[str, Any]:
        """Remove the version's row and its aliases (the version stops existing at once); its card. A model
        whose last version goes is no longer listed."""
        with self.db.write() as conn:
            raw = conn.execute(sa.select(model_versions.c.card).where(
                model_versions.c.name == name, model_versions.c.version == int(version))).scalar()
            if raw is None:
                raise NotFound(f"model {name!r} has no version {version}")
            conn.execute(sa.delete(model_aliases).where(model_aliases.c.name == name,
                                                        model_aliases.c.version == int(version)))
            conn.execute(sa.delete(model_versions).where(model_versions.c.name == name,
                                                         model_versions.c.version == int(version)))
            left = conn.execute(sa.select(model_versions.c.version).where(model_versions.c.name == name)
                                .limit(1)).first()
            if left is None:
                conn.execute(sa.delete(models).where(models.c.name == name))
        return loads(raw)

    # -- the import of an older bucket --------------------------------------------------------
    def import_version(self, name: str, version: int, card: dict[str, Any]) -> bool:
        """An older version's card as it was (number and weights key kept); False when already there."""
        card = {**card, "name": name, "version": int(version)}
        card.pop("aliases", None)
        card.setdefault("create_time", utc_now_iso())
        try:
            with self.db.write() as conn:
                _ensure_model(conn, name)
                conn.execute(sa.insert(model_versions).values(_version_row(name, int(version), card)))
        except Conflict:
            return False
        return True

    def import_aliases(self, name: str, aliases: dict[str, int]) -> None:
        with self.db.write() as conn:
            known = set(conn.execute(sa.select(model_versions.c.version).where(model_versions.c.name == name))
                        .scalars())
            for alias, version in aliases.items():
                if version in known:
                    _set_alias(conn, name, alias, version)


def _ensure_model(conn: sa.Connection, name: str) -> None:
    if conn.execute(sa.select(models.c.name).where(models.c.name == name)).first() is None:
        conn.execute(sa.insert(models).values(name=name, created_s=time.time()))


def _set_alias(conn: sa.Connection, name: str, alias: str, version: int) -> None:
    moved = conn.execute(sa.update(model_aliases).where(model_aliases.c.name == name, model_aliases.c.alias == alias)
                         .values(version=version)).rowcount
    if not moved:
        conn.execute(sa.insert(model_aliases).values(name=name, alias=alias, version=version))


def _version_row(name: str, version: int, card: dict[str, Any]) -> dict[str, Any]:
    source = card.get("source") or {}
    return {"name": name, "version": version, "architecture": str(card.get("architecture", "")),
            "dataset": str(card.get("dataset", "")), "source_job_id": str(source.get("job_id", "")),
            "weights_key": str(card.get("weights_key", "")), "weights_sha256": str(card.get("weights_sha256", "")),
            "create_time": str(card.get("create_time", "")), "card": dumps(card)}
