"""An MlflowClient program (run with .venv-mlflow's Python, not the project's): what a tracking server holds, as JSON.

Usage: mlflow_client.py TRACKING_URI EXPERIMENT OUT.json. For every run of the experiment: its info, params,
tags, the full history of each metric and every artifact path (recursively); for every registered model: its
versions (tags, source, run id) and aliases. The test (in the project's interpreter) compares them with
quakestack's own records.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    uri, experiment, out = sys.argv[1:4]
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], max_results=1000) if found else []

    def artifacts(run_id: str, path: str | None = None) -> list[dict]:
        files = []
        for item in client.list_artifacts(run_id, path):
            if item.is_dir:
                files += artifacts(run_id, item.path)
            else:
                files.append({"path": item.path, "size": item.file_size})
        return files

    result: dict = {"runs": [], "models": []}
    for run in runs:
        run_id = run.info.run_id
        result["runs"].append({
            "run_id": run_id, "name": run.info.run_name, "status": run.info.status,
            "start_time": run.info.start_time, "end_time": run.info.end_time,
            "params": dict(run.data.params), "tags": dict(run.data.tags),
            "metrics": {key: [{"step": m.step, "value": m.value, "timestamp": m.timestamp}
                              for m in client.get_metric_history(run_id, key)] for key in run.data.metrics},
            "artifacts": artifacts(run_id)})
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name='{model.name}'")
        result["models"].append({
            "name": model.name, "aliases": dict(model.aliases),
            "versions": [{"version": int(v.version), "run_id": v.run_id, "source": v.source, "tags": dict(v.tags)}
                         for v in versions]})
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
