"""A job's current status, folded from its event log (the log, not a mutable record, is the truth).

The fold accepts only legal state transitions and each epoch once, so a late or duplicate writer
(a replaced worker, two replicas racing to end a job) can never make the history lie.
"""

from __future__ import annotations

from typing import Any

from quakestack.jobs.state import TERMINAL, JobState, allowed

STREAMED_TYPES = ("state", "epoch", "progress")
PROGRESS_EXCLUDED = ("type", "sequence", "time", "warnings", "shard")  # kept in the event, not in the status


def initial_status(create_time: str) -> dict[str, Any]:
    return {"state": JobState.QUEUED.value, "error": "", "retries": 0, "epochs_done": 0, "best_epoch": 0,
            "elapsed_s": 0.0, "latest": None, "p_offset_s": None, "world_size": 1, "update_time": create_time,
            "last_sequence": 0, "progress": {}, "warnings": [], "end_time": None}


def apply_event(status: dict[str, Any], event: dict[str, Any]) -> bool:
    """Fold one event into status; False when the event is ignored (illegal or duplicate)."""
    status["last_sequence"] = max(status["last_sequence"], int(event.get("sequence", 0)))
    kind = event.get("type")
    if kind == "state":
        current, new = JobState(status["state"]), JobState(event["state"])
        if not allowed(current, new):
            return False
        status["state"] = new.value
        status["end_time"] = event.get("time") if new in TERMINAL else None
        if new is JobState.FAILED:
            status["error"] = event.get("message", "")
        if new is JobState.QUEUED:
            if event.get("resume"):
                status.update(retries=0, error="")
            if event.get("retry"):
                status["retries"] = int(event["retry"])
        if new is JobState.RUNNING:
            for name in ("p_offset_s", "world_size"):
                if event.get(name) is not None:
                    status[name] = event[name]
    elif kind == "epoch":
        epoch = int(event["epoch"])
        if epoch <= int(status["epochs_done"]):
            return False  # an epoch the history already holds
        status.update(epochs_done=epoch, best_epoch=int(event.get("best_epoch", epoch)),
                      elapsed_s=float(event.get("elapsed_s", 0.0)),
                      latest={k: v for k, v in event.items() if k not in ("type", "best_epoch")})
    elif kind == "progress":
        status["progress"] = {k: v for k, v in event.items() if k not in PROGRESS_EXCLUDED}
        if "warnings" in event:
            status["warnings"] = list(event["warnings"])
    else:
        return False
    status["update_time"] = event.get("time", status["update_time"])
    return True


def fold(create_time: str, events: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The status after events and the events it accepted (what watchers are shown)."""
    status = initial_status(create_time)
    accepted = [e for e in events if apply_event(status, e)]
    return status, accepted
