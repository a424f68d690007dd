"""Training jobs written before the job runtime (services/trainer/jobs.py until b8fa2a1): one mutable
`job.json` holding the spec fields beside the state, and the history in `metrics.jsonl`.

`legacy_training_job` turns them into what the runtime reads (quakestack.metadata.importer stores it): the
spec from the old record (hyper-parameters that did not exist then take their defaults), the old
history as the event log, and, for a job the old service left unfinished, the event that service
would have written on its next start: a RUNNING job goes back to the queue and resumes from its
last checkpoint, a STOPPING one is STOPPED.
"""

from __future__ import annotations

from typing import Any

from quakestack.jobs.spec import JobRecord, Migrated
from quakestack.jobs.state import JobState
from quakestack.models.spec import HyperParameter, resolve_params
from quakestack.models.zoo import get_architecture

OLD_SPEC_FIELDS = ("dataset", "dataset_manifest_sha256", "architecture", "task", "hyper_parameters",
                   "training_hyper_parameters", "device", "epochs", "display_name", "normalization", "input_spec",
                   "class_names")
MIGRATED = "migrated from an older version's job record"


def legacy_training_job(old: dict[str, Any], history: list[dict[str, Any]], *, kind: str, version: int,
                        job_hyper_parameters: tuple[HyperParameter, ...]) -> Migrated | None:
    """(record, events, control) of an old training job, as spec `version` of `kind` (training.jobs's);
    None when the record is not one."""
    if old.get("kind") != kind or not old.get("job_id") or not old.get("dataset") or not old.get("architecture"):
        return None
    arch = get_architecture(old["architecture"])  # KeyError: an architecture this build no longer has
    known = {h.name for h in job_hyper_parameters}
    train_hp = resolve_params(job_hyper_parameters, {k: v for k, v in (old.get("training_hyper_parameters") or {})
                                                     .items() if k in known}, what="training hyper-parameter")
    arch_hp = arch.resolve_hparams(old.get("hyper_parameters") or {})
    spec = {field: old[field] for field in OLD_SPEC_FIELDS if field in old}
    spec.update(hyper_parameters=arch_hp, training_hyper_parameters=train_hp, task=arch.task.value,
                epochs=int(old.get("epochs") or train_hp["epochs"]), device=old.get("device") or "auto",
                display_name=old.get("display_name", ""), owner=old.get("owner", ""))
    spec.setdefault("input_spec", arch.input_spec_for(arch_hp).to_dict())
    spec.setdefault("class_names", list(arch.class_names))
    spec.setdefault("normalization", "none")
    spec.setdefault("dataset_manifest_sha256", "")
    record = JobRecord(kind=kind, version=version, job_id=old["job_id"], create_time=old["create_time"],
                       spec=spec)
    events = [{k: v for k, v in e.items() if k != "sequence"} for e in history if e.get("type") in ("state", "epoch")]
    if not events:
        events = [{"type": "state", "state": JobState.QUEUED.value, "message": "created", "time": record.create_time}]
    states = [e["state"] for e in events if e["type"] == "state"]
    last, when = states[-1] if states else JobState.QUEUED.value, events[-1].get("time", record.create_time)
    if last == JobState.RUNNING.value:
        events.append({"type": "state", "state": JobState.QUEUED.value, "time": when,
                       "message": f"{MIGRATED}: resuming from the last checkpoint"})
    elif last == JobState.STOPPING.value:
        events.append({"type": "state", "state": JobState.STOPPED.value, "time": when,
                       "message": f"{MIGRATED}: the older version stopped while the job was stopping"})
    stopped = last in (JobState.STOPPING.value, JobState.STOPPED.value)
    return record, events, {"epochs": spec["epochs"], "stop": stopped, "cancel": last == JobState.CANCELLED.value}
