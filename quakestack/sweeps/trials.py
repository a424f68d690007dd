"""A sweep's trials as plain records, read from Optuna's storage (the one truth about trials), and the summary
the controller reports as the sweep's progress."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

STATES = {TrialState.RUNNING: "running", TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned",
          TrialState.FAIL: "failed", TrialState.WAITING: "waiting"}
JOB_ATTR = "job_id"
MESSAGE_ATTR = "message"
PRUNE_ATTR = "pruned_at_epoch"


def trial_job_id(sweep_id: str, number: int) -> str:
    """Trial n's training job: named by the sweep and the number, so a restarted controller finds it again."""
    return f"{sweep_id}-t{number:04d}"


def trial_record(sweep_id: str, trial: FrozenTrial) -> dict[str, Any]:
    value = trial.value if trial.state is TrialState.COMPLETE else None
    return {"number": trial.number, "job_id": trial.user_attrs.get(JOB_ATTR) or trial_job_id(sweep_id, trial.number),
            "state": STATES.get(trial.state, "failed"), "parameters": dict(trial.params),
            "value": value if value is None or math.isfinite(value) else None,
            "intermediate_values": [[int(step), float(v)] for step, v in sorted(trial.intermediate_values.items())],
            "start_time": _utc(trial.datetime_start), "end_time": _utc(trial.datetime_complete),
            "message": str(trial.user_attrs.get(MESSAGE_ATTR, ""))}


def _utc(when: datetime | None) -> str | None:
    """Optuna stamps local naive times; RFC 3339 in UTC for everyone else."""
    return None if when is None else when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def counts(trials: list[FrozenTrial]) -> dict[str, int]:
    out = dict.fromkeys(STATES.values(), 0)
    for trial in trials:
        out[STATES.get(trial.state, "failed")] += 1
    return out


def best_trial(study: optuna.Study, trials: list[FrozenTrial]) -> FrozenTrial | None:
    complete = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    if not complete:
        return None
    pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
    return pick(complete, key=lambda t: (t.value, -t.number) if pick is max else (t.value, t.number))


def summary(sweep_id: str, study: optuna.Study, trials: list[FrozenTrial]) -> dict[str, Any]:
    """What the sweep's progress events carry (and ListSweeps shows without reading any trial)."""
    best = best_trial(study, trials)
    return {"trial_counts": counts(trials), "best_trial": None if best is None else trial_record(sweep_id, best)}
