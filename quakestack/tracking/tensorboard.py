"""A training job's TensorBoard event file, rendered from its epoch events (never appended to).

The metadata store's epoch events are the job's history, each epoch once even across a SIGKILL, a retry
or a resume. Appending to an event file as epochs end would count an epoch twice whenever a worker
re-reports one from its checkpoint, so the file is rendered whole from those events each time and
stored under one fixed key: the same events give the same bytes, and a retried worker replaces the file.

One run per job (the folder `<job-id>/` in the archive): scalars per epoch (step = epoch) and the HParams
plugin's session-start (the hyper-parameters) and session-end (the outcome). The experiment summary is left
out on purpose: with several jobs in one `--logdir` TensorBoard builds the experiment from every run's
hyper-parameters and scalar tags, whereas one run's experiment summary would hide the others' columns.
The HParams dashboard's metric values are each scalar's last step: the final metrics.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from quakestack.protoconv import seconds_from_iso

# the scalars of every epoch besides the task's own metrics (names as in EpochMetrics)
EPOCH_SCALARS = ("train_loss", "val_loss", "learning_rate", "samples_per_s")
# a job's end state -> the HParams plugin's session status (a job still running has no session end)
_END_STATUS = {"SUCCEEDED": "STATUS_SUCCESS", "FAILED": "STATUS_FAILURE", "STOPPED": "STATUS_ABORTED",
               "CANCELLED": "STATUS_ABORTED"}


def epoch_scalars(event: Mapping[str, Any]) -> dict[str, float]:
    """The finite scalars of one epoch event: losses, learning rate, throughput and each scalar task metric
    (a confusion matrix is not a scalar; NaN, as val_loss without a validation split, is left out)."""
    values: dict[str, Any] = {name: event.get(name) for name in EPOCH_SCALARS}
    values.update({name: value for name, value in (event.get("metrics") or {}).items() if name not in values})
    return {name: float(value) for name, value in values.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)}


def hparam_values(spec: Mapping[str, Any]) -> dict[str, bool | float | str]:
    """The job's hyper-parameters (the architecture's and training's) as the HParams plugin takes them: numbers,
    booleans and text; a list or mapping becomes its JSON, a missing value is left out."""
    merged = {**(spec.get("training_hyper_parameters") or {}), **(spec.get("hyper_parameters") or {})}
    out: dict[str, bool | float | str] = {}
    for name, value in sorted(merged.items()):
        if value is None:
            continue
        if isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = json.dumps(value, sort_keys=True)
    return out


def render_event_file(job_id: str, spec: Mapping[str, Any], create_time: str, epochs: Iterable[Mapping[str, Any]],
                      end_state: str | None = None) -> bytes:
    """The event file's bytes: a function of its arguments only (wall times come from the events, protobuf maps
    are serialized sorted)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    buffer = io.BytesIO()
    writer = RecordWriter(buffer)
    start = seconds_from_iso(create_time) or 0.0

    def write(event: event_pb2.Event) -> None:
        writer.write(event.SerializeToString(deterministic=True))

    write(event_pb2.Event(wall_time=start, file_version="brain.Event:2"))
    session = plugin_data_pb2.SessionStartInfo(group_name=job_id, start_time_secs=start)
    for name, value in hparam_values(spec).items():
        field = {bool: "bool_value", str: "string_value"}.get(type(value), "number_value")
        setattr(session.hparams[name], field, value)
    write(event_pb2.Event(wall_time=start, step=0, summary=_hparams_summary(
        plugin_data_pb2.HParamsPluginData(session_start_info=session))))
    last = start
    for event in sorted(epochs, key=lambda e: int(e["epoch"])):
        last = seconds_from_iso(event.get("time")) or last
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=name, simple_value=value)
                                             for name, value in sorted(epoch_scalars(event).items())])
        write(event_pb2.Event(wall_time=last, step=int(event["epoch"]), summary=summary))
    if end_state in _END_STATUS:
        end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(_END_STATUS[end_state]), end_time_secs=last)
        write(event_pb2.Event(wall_time=last, step=0, summary=_hparams_summary(
            plugin_data_pb2.HParamsPluginData(session_end_info=end))))
    return buffer.getvalue()


def _hparams_summary(data: Any) -> Any:
    """One HParams plugin summary (as the plugin's own `metadata.create_summary_metadata` builds it, but with its
    content serialized deterministically: the hyper-parameters are a protobuf map)."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import metadata

    data.version = metadata.PLUGIN_DATA_VERSION
    tag = metadata.SESSION_START_INFO_TAG if data.HasField("session_start_info") else metadata.SESSION_END_INFO_TAG
    plugin = summary_pb2.SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME,
                                                    content=data.SerializeToString(deterministic=True))
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=tag, metadata=summary_pb2.SummaryMetadata(plugin_data=plugin), tensor=metadata.NULL_TENSOR)])
