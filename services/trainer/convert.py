"""Translation between the trainer's plain records (job.json, events, model cards) and protobuf."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2

from quakestack.models.spec import ArchitectureSpec, HyperParameter, InputSpec
from quakestack.protoconv import struct_from_dict, timestamp_from_iso
from quakestack.v1 import common_pb2, trainer_pb2

TASKS = {"magnitude": common_pb2.TASK_MAGNITUDE, "detection": common_pb2.TASK_DETECTION,
         "classification": common_pb2.TASK_CLASSIFICATION, "picking": common_pb2.TASK_PICKING}
KINDS = {"int": trainer_pb2.HYPER_PARAMETER_KIND_INT, "float": trainer_pb2.HYPER_PARAMETER_KIND_FLOAT,
         "choice": trainer_pb2.HYPER_PARAMETER_KIND_CHOICE, "bool": trainer_pb2.HYPER_PARAMETER_KIND_BOOL}


def state(name: str) -> int:
    return common_pb2.JobState.Value(f"JOB_STATE_{name}")


def metric_list(values: Mapping[str, Any], labels: list[str] | None = None) -> list[common_pb2.Metric]:
    """Scalars as `value`; lists (per-class scores, confusion matrices) flattened into `values`."""
    out = []
    for name, value in sorted(values.items()):
        if isinstance(value, str):
            continue
        if isinstance(value, list | tuple):
            flat = _flatten(value)
            if any(isinstance(v, str) for v in flat):
                continue  # names (class_names), not values
            flat = [float(v) for v in flat]
            out.append(common_pb2.Metric(name=name, values=flat, labels=labels or []))
        elif value is not None:
            out.append(common_pb2.Metric(name=name, value=_finite(float(value))))
    return out


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return [x for item in value for x in _flatten(item)]
    return [value]


def _finite(value: float) -> float:
    return value if math.isfinite(value) else float("nan")


def epoch_metrics(event: Mapping[str, Any], class_names: list[str] | None = None) -> trainer_pb2.EpochMetrics:
    return trainer_pb2.EpochMetrics(
        epoch=int(event["epoch"]), train_loss=float(event["train_loss"]), val_loss=float(event["val_loss"]),
        metrics=metric_list(event.get("metrics", {}), class_names), learning_rate=float(event["learning_rate"]),
        samples_per_s=float(event["samples_per_s"]), elapsed_s=float(event["elapsed_s"]),
        eta_s=float(event["eta_s"]), time=timestamp_from_iso(event.get("time")))


def progress_event(event: Mapping[str, Any], class_names: list[str] | None = None
                   ) -> trainer_pb2.StreamTrainingProgressResponse:
    if event["type"] == "epoch":
        return trainer_pb2.StreamTrainingProgressResponse(sequence=event["sequence"],
                                                          epoch=epoch_metrics(event, class_names))
    change = trainer_pb2.StateChange(state=state(event["state"]), message=event.get("message", ""),
                                     time=timestamp_from_iso(event.get("time")))
    return trainer_pb2.StreamTrainingProgressResponse(sequence=event["sequence"], state_change=change)


def training_job(record: Mapping[str, Any], class_names: list[str] | None = None) -> trainer_pb2.TrainingJob:
    hp = {**record.get("hyper_parameters", {}), **record.get("training_hyper_parameters", {})}
    if "epochs" in record:  # the current count (UpdateTrainingJob/ResumeTrainingJob change it), not the original
        hp["epochs"] = int(record["epochs"])
    job = trainer_pb2.TrainingJob(
        job_id=record["job_id"], dataset=record["dataset"],
        dataset_manifest_sha256=record.get("dataset_manifest_sha256", ""), architecture=record["architecture"],
        hyper_parameters=struct_from_dict(hp), device=record.get("device", "auto"), state=state(record["state"]),
        epochs=int(record["epochs"]), epochs_done=int(record.get("epochs_done", 0)),
        best_epoch=int(record.get("best_epoch", 0)), error=record.get("error", ""),
        create_time=timestamp_from_iso(record.get("create_time")),
        update_time=timestamp_from_iso(record.get("update_time")),
        display_name=record.get("display_name", ""), retries=int(record.get("retries", 0)))
    if record.get("latest"):
        job.latest.CopyFrom(epoch_metrics(record["latest"], class_names))
    return job


def hyper_parameter(hp: HyperParameter) -> trainer_pb2.HyperParameterSpec:
    default = struct_pb2.Value()
    json_format.ParseDict(hp.default, default)
    return trainer_pb2.HyperParameterSpec(
        name=hp.name, kind=KINDS[hp.kind], default_value=default,
        minimum=float(hp.minimum) if hp.minimum is not None else 0.0,
        maximum=float(hp.maximum) if hp.maximum is not None else 0.0,
        choices=[str(c) for c in hp.choices], description=hp.description)


def input_spec(spec: InputSpec | Mapping[str, Any]) -> trainer_pb2.InputSpec:
    d = spec.to_dict() if isinstance(spec, InputSpec) else spec
    return trainer_pb2.InputSpec(n_samples=int(d["n_samples"]), component_order=d["components"],
                                 sampling_rate_hz=float(d["sampling_rate"]), extra_inputs=list(d["extra_inputs"]))


def architecture(spec: ArchitectureSpec) -> trainer_pb2.Architecture:
    return trainer_pb2.Architecture(
        name=spec.name, task=TASKS[spec.task.value], description=spec.description,
        input_spec=input_spec(spec.input_spec), outputs=list(spec.outputs), loss=spec.loss,
        metrics=list(spec.metrics), hyper_parameters=[hyper_parameter(hp) for hp in spec.hyper_parameters],
        reference=spec.reference)


def checkpoint_ref(source: Mapping[str, Any] | None) -> trainer_pb2.CheckpointRef:
    """The training checkpoint a version came from; empty for an imported model (a SeisBench one), which has none."""
    if not source:
        return trainer_pb2.CheckpointRef()
    return trainer_pb2.CheckpointRef(job_id=str(source.get("job_id", "")), epoch=int(source.get("epoch", 0)))


def model_version(card: Mapping[str, Any]) -> trainer_pb2.ModelVersion:
    return trainer_pb2.ModelVersion(
        name=card["name"], version=int(card["version"]), architecture=card["architecture"],
        task=TASKS[card["task"]], hyper_parameters=struct_from_dict(card.get("hyper_parameters", {})),
        input_spec=input_spec(card["input_spec"]), dataset=card.get("dataset", ""),
        dataset_manifest_sha256=card.get("dataset_manifest_sha256", ""),
        source=checkpoint_ref(card.get("source")),
        metrics=metric_list(card.get("metrics", {}), card.get("class_names")), aliases=card.get("aliases", []),
        weights_key=card["weights_key"], weights_sha256=card["weights_sha256"],
        create_time=timestamp_from_iso(card.get("create_time")), normalization=card.get("normalization", "none"),
        class_names=card.get("class_names", []), reproducibility=struct_from_dict(card.get("reproducibility", {})),
        provenance=struct_from_dict(provenance(card)))


def provenance(card: Mapping[str, Any]) -> dict[str, Any]:
    """An import's record and a fine-tuned version's starting version, as one Struct."""
    out = dict(card.get("provenance") or {})
    if card.get("initial_model"):
        out["initial_model"] = card["initial_model"]
    return out


def model(name: str, cards: list[dict[str, Any]], aliases: Mapping[str, int]) -> trainer_pb2.Model:
    return trainer_pb2.Model(name=name, versions=[model_version(c) for c in cards], aliases=dict(aliases))
