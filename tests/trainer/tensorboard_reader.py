"""Reads TensorBoard event files back with TensorBoard's own reader (event_accumulator), as `tensorboard` does."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def read_run(folder: Path) -> dict[str, Any]:
    """One run's scalars ({tag: [(step, value)]}), HParams session start (hyper-parameters, group) and end status."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import api_pb2, metadata

    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.SCALARS: 0,
                                                                         event_accumulator.TENSORS: 0})
    acc.Reload()
    scalars = {tag: [(s.step, s.value) for s in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    hparams = {name: getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}
    end = None
    if metadata.SESSION_END_INFO_TAG in content:
        end = api_pb2.Status.Name(metadata.parse_session_end_info_plugin_data(
            content[metadata.SESSION_END_INFO_TAG]).status)
    return {"scalars": scalars, "hparams": hparams, "group": start.group_name, "end": end}
