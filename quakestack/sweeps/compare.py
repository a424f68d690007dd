"""Run comparison: any training jobs (a sweep's trials, or jobs picked by hand) with their hyper-parameters,
their per-epoch curves and one ranking metric, best first. Reads the jobs' own rows and epoch events only, so
its cost is the runs asked for (at most MAX_RUNS), never the history."""

from __future__ import annotations

from typing import Any

from quakestack.errors import InvalidArgument, NotFound
from quakestack.metadata.jobs import JobStore
from quakestack.sweeps.spec import objective_metrics, objective_value
from quakestack.training.jobs import KIND as TRAINING
from quakestack.training.jobs import job_record

MAX_RUNS = 100


def compare_runs(jobs: JobStore, job_ids: list[str], *, metric: str = "", direction: str = "minimize",
                 trials: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The runs, best first by `metric` at each run's best epoch for it; runs without the metric last."""
    job_ids = list(dict.fromkeys(job_ids))
    if not job_ids:
        raise InvalidArgument("give sweep_id or job_ids: there is nothing to compare")
    if len(job_ids) > MAX_RUNS:
        raise InvalidArgument(f"at most {MAX_RUNS} runs are compared at once, got {len(job_ids)}")
    views = jobs.many(job_ids)
    missing = [j for j in job_ids if j not in views or views[j].record.kind != TRAINING]
    if missing:
        raise NotFound(f"no training job {', '.join(missing[:5])}")
    metric = metric or "val_loss"
    runs = []
    for job_id in job_ids:
        record = job_record(views[job_id])
        if metric not in objective_metrics(record["architecture"]):
            raise InvalidArgument(f"metric {metric!r} is not reported by {record['architecture']} (job {job_id}); "
                                  f"valid: {', '.join(objective_metrics(record['architecture']))}")
        epochs = jobs.all_events(job_id, ("epoch",))
        values = [v for v in (objective_value(e, metric) for e in epochs) if v is not None]
        best = (max(values) if direction == "maximize" else min(values)) if values else None
        trial = (trials or {}).get(job_id)
        runs.append({"job_id": job_id, "display_name": record.get("display_name", ""),
                     "architecture": record["architecture"], "dataset": record["dataset"], "state": record["state"],
                     "hyper_parameters": {**record["hyper_parameters"], **record["training_hyper_parameters"]},
                     "objective": best, "epochs": epochs, "class_names": record.get("class_names") or [],
                     "trial_number": -1 if trial is None else int(trial["number"]),
                     "trial_state": "" if trial is None else trial["state"]})
    sign = -1.0 if direction == "maximize" else 1.0
    runs.sort(key=lambda r: (r["objective"] is None, sign * (r["objective"] or 0.0), r["job_id"]))
    return {"runs": runs, "metric": metric, "direction": direction, "varying_parameters": varying(runs)}


def varying(runs: list[dict[str, Any]]) -> list[str]:
    """Hyper-parameters whose values differ between the runs: the columns worth a look."""
    names = sorted({n for r in runs for n in r["hyper_parameters"]})
    return [n for n in names if len({repr(r["hyper_parameters"].get(n)) for r in runs}) > 1]
