"""Optuna underneath a sweep: its RDB storage on the platform's own database, and the sampler and pruner a
sweep's spec names.

Optuna keeps its own tables and its own Alembic history, whose version table has the same name as ours, so
it gets a namespace of its own: on PostgreSQL the schema `optuna` of the same database (one server, one
backup), on SQLite the file `optuna.db` beside `metadata.db`. The tables are created once, under the
metadata store's migration lock, when a trainer starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.storages import RDBStorage

from quakestack.metadata.database import Database, sqlite_url

optuna.logging.set_verbosity(optuna.logging.WARNING)
optuna.logging.disable_propagation()
logging.getLogger("optuna").setLevel(logging.WARNING)

SCHEMA = "optuna"
SQLITE_FILE = "optuna.db"


def _target(db: Database) -> tuple[str, dict[str, Any]]:
    if db.is_sqlite:
        path = Path(str(db.url.database)).with_name(SQLITE_FILE)
        return sqlite_url(path), {"connect_args": {"timeout": 60}}
    return db.url.render_as_string(hide_password=False), {
        "connect_args": {"options": f"-csearch_path={SCHEMA}"}, "pool_pre_ping": True}


def prepare_storage(db: Database) -> None:
    """Create Optuna's namespace and tables (once; under the migration lock, so replicas never race)."""
    with db.exclusive():
        if not db.is_sqlite:
            with db.write() as conn:
                conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        open_storage(db)


def open_storage(db: Database) -> RDBStorage:
    url, engine_kwargs = _target(db)
    with contextlib.redirect_stderr(None):  # Optuna prints an experimental-feature banner for heartbeats
        return RDBStorage(url, engine_kwargs=engine_kwargs)


def trial_seed(seed: int, number: int) -> int:
    """A trial's own sampler seed: the same trial number draws the same values after any restart."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{number}".encode()).digest()[:4], "little")


def make_sampler(spec: dict[str, Any], number: int,
                 grid: dict[str, list[Any]] | None = None) -> optuna.samplers.BaseSampler:
    seed = trial_seed(int(spec.get("seed", 0)), number)
    kind = spec["sampler"]
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "grid":
        return optuna.samplers.GridSampler(grid or {}, seed=int(spec.get("seed", 0)))
    startup = max(1, min(10, int(spec.get("max_trials", 10)) // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def make_pruner(spec: dict[str, Any]) -> optuna.pruners.BasePruner:
    kind = spec["pruner"]
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, int(spec["pruner_warmup_epochs"])),
                                              max_resource=int(spec["epochs"]), reduction_factor=3)
    return optuna.pruners.MedianPruner(n_startup_trials=int(spec["pruner_startup_trials"]),
                                       n_warmup_steps=int(spec["pruner_warmup_epochs"]))


def direction(spec: dict[str, Any]) -> str:
    return "maximize" if spec["objective"]["direction"] == "maximize" else "minimize"


def load_study(storage: RDBStorage, spec: dict[str, Any], sweep_id: str, number: int = 0,
               grid: dict[str, list[Any]] | None = None) -> optuna.Study:
    return optuna.load_study(study_name=sweep_id, storage=storage, sampler=make_sampler(spec, number, grid),
                             pruner=make_pruner(spec))


def create_study(storage: RDBStorage, spec: dict[str, Any], sweep_id: str) -> optuna.Study:
    return optuna.create_study(study_name=sweep_id, storage=storage, direction=direction(spec),
                               load_if_exists=True)


def tell(study: optuna.Study, trial: optuna.Trial, value: float | None = None,
         state: optuna.trial.TrialState | None = None) -> None:
    """`study.tell`, once. The grid sampler asks the study to stop when its grid is used up, which only an
    optimize loop can take; the trial is stored either way, and the controller ends the sweep by its own count."""
    try:
        study.tell(trial, value, state=state)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise
