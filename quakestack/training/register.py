"""A training job's epoch as a registered model version: the one path RegisterModel and a finished sweep take."""

from __future__ import annotations

from typing import Any

import torch

from quakestack.errors import FailedPrecondition, NotFound
from quakestack.layout import epoch_checkpoint_key
from quakestack.metadata.jobs import JobStore
from quakestack.model_store import ModelStore, model_card
from quakestack.models.checkpoint import load_state, state_to_bytes
from quakestack.models.seisbench_pickers import serving_card
from quakestack.storage import ObjectStore
from quakestack.training.environment import card_reproducibility
from quakestack.training.jobs import KIND, job_record


def epoch_of(jobs: JobStore, job_id: str, epoch: int) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """The job's record, the epoch meant (0: the best, else the last) and that epoch's event."""
    record = job_record(jobs.get(job_id, KIND))
    if not record.get("epochs_done"):
        raise FailedPrecondition(f"job {job_id} has not finished an epoch yet: there are no trained weights")
    chosen = epoch or int(record.get("best_epoch") or record["epochs_done"])
    if not 1 <= chosen <= int(record["epochs_done"]):
        raise NotFound(f"job {job_id} has no checkpoint for epoch {chosen} (epochs 1-{record['epochs_done']})")
    event = next((e for e in jobs.all_events(job_id, ("epoch",)) if int(e["epoch"]) == chosen), {})
    return record, chosen, event


def epoch_weights(store: ObjectStore, job_id: str, epoch: int) -> dict[str, torch.Tensor]:
    return load_state(store.get_bytes(epoch_checkpoint_key(job_id, epoch)))["model"]


def register_epoch(model_store: ModelStore, jobs: JobStore, name: str, job_id: str, epoch: int = 0,
                   aliases: list[str] | tuple[str, ...] = (), extra_card: dict[str, Any] | None = None) -> dict:
    """Register a job's epoch (0: its best) as a new version of `name`; returns the version's card."""
    record, chosen, event = epoch_of(jobs, job_id, epoch)
    weights = state_to_bytes(epoch_weights(model_store.store, record["job_id"], chosen))
    metrics = {**event.get("metrics", {}), "train_loss": event.get("train_loss"), "val_loss": event.get("val_loss")}
    card = model_card(record["architecture"], record["hyper_parameters"], dataset=record["dataset"],
                      source={"job_id": record["job_id"], "epoch": chosen},
                      training_hyper_parameters=record["training_hyper_parameters"],
                      normalization=record.get("normalization", "none"),
                      dataset_manifest_sha256=record.get("dataset_manifest_sha256", ""),
                      metrics={k: v for k, v in metrics.items() if v is not None},
                      p_offset_s=record.get("p_offset_s"),
                      reproducibility=card_reproducibility(record["training_hyper_parameters"].get("seed"),
                                                           event.get("environment")))
    if record.get("initial_model"):
        card["initial_model"] = {k: record["initial_model"][k] for k in ("name", "version", "weights_sha256")}
    # a SeisBench architecture's version is a seisbench:<Class> card: it serves and exports as SeisBench's
    return model_store.register(name, weights, serving_card({**card, **(extra_card or {})}), list(aliases))
