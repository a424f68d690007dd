"""`quakestack experiments ...`: hand quakestack's runs to the tracking tools users already have (MLflow)."""

from __future__ import annotations

import argparse
import dataclasses
import os

from quakestack.cli.common import CliError, Ctx
from quakestack.tracking.mlflow_export import MlflowExporter
from quakestack.tracking.mlflow_rest import MlflowError, MlflowRest
from quakestack.tracking.source import GrpcSource

EXPORT_HELP = """\
Replays training jobs, sweeps and registered model versions into an MLflow tracking server through its REST API
(no mlflow package needed here). Each job is a run: params are its hyper-parameters, metrics every epoch's
scalars with step = epoch, tags its dataset, architecture, state and quakestack.job_id, artifacts its TensorBoard
event files and evaluation plots. A sweep is a parent run with its trials' runs nested under it. Each registered
version becomes an MLflow model version (its source the job's run, with weights.pt and model_card.json) with the
same aliases. With no --job, --model or --sweep, everything is exported. Running it again adds only what is new.
Credentials come from MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, as for
MLflow's own client."""


def export_mlflow(ctx: Ctx, tracking_uri: str, *, experiment: str = "quakestack", job_ids: list[str] | None = None,
                  model_names: list[str] | None = None, sweep_ids: list[str] | None = None,
                  artifacts: bool = True) -> dict:
    """Run the export and print what it did; the report as a dict (also the --json output)."""
    if not tracking_uri:
        raise CliError("give --tracking-uri (or set MLFLOW_TRACKING_URI), e.g. http://127.0.0.1:5000")
    try:
        client = MlflowRest(tracking_uri)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    exporter = MlflowExporter(client, GrpcSource(ctx.channel("trainer")), experiment=experiment, artifacts=artifacts,
                              note=lambda text: ctx.note(f"note: {text}"))
    try:
        report = exporter.export(job_ids=job_ids or (), model_names=model_names or (), sweep_ids=sweep_ids or ())
    except MlflowError as exc:
        raise CliError(str(exc)) from None
    except LookupError as exc:
        raise CliError(str(exc).strip("'\"")) from None
    out = dataclasses.asdict(report)
    ctx.emit(out)
    ctx.say(f"exported to {tracking_uri} (experiment {experiment!r}): {len(report.job_runs)} job run(s), "
            f"{len(report.sweep_runs)} sweep run(s); {report.runs_created} created, {report.runs_updated} updated, "
            f"{report.metrics_logged} metric values, {report.params_logged} params, {report.artifacts_uploaded} "
            f"artifacts, {report.versions_created} model versions, {report.aliases_set} aliases set")
    for job_id, run_id in report.job_runs.items():
        ctx.say(f"  job {job_id}  run {run_id}")
    for sweep_id, run_id in report.sweep_runs.items():
        ctx.say(f"  sweep {sweep_id}  run {run_id}")
    return out


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    experiments = sub.add_parser("experiments", help="export runs to the tracking tools you use (MLflow)")
    esub = experiments.add_subparsers(dest="experiments_command", required=True)
    p = esub.add_parser("export-mlflow", parents=[common], help="replay jobs, sweeps and registered versions into "
                        "an MLflow tracking server", description=EXPORT_HELP)
    p.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", ""),
                   help="the MLflow server, http(s)://host:port (default MLFLOW_TRACKING_URI)")
    p.add_argument("--experiment", default="quakestack", help="MLflow experiment to export into (created if missing)")
    p.add_argument("--job", action="append", default=[], metavar="JOB_ID", help="a training job (repeatable)")
    p.add_argument("--model", action="append", default=[], metavar="NAME",
                   help="a registered model with all its versions and aliases (repeatable)")
    p.add_argument("--sweep", action="append", default=[], metavar="SWEEP_ID",
                   help="a sweep with its trials (repeatable)")
    p.add_argument("--no-artifacts", action="store_true", help="leave out event files, plots and weights")
    p.set_defaults(func=lambda ctx, a: export_mlflow(ctx, a.tracking_uri, experiment=a.experiment, job_ids=a.job,
                                                     model_names=a.model, sweep_ids=a.sweep,
                                                     artifacts=not a.no_artifacts) and 0)
