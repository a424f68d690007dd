"""What /openapi.json and /docs add to the descriptors: the protos' comments and the model zoo's hyper-parameters.

The comments come from `quakestack/v1/comments.json` (written by protogen beside the stubs); the
hyper-parameters of every architecture come from the trainer's ListArchitectures, asked once when
the document is first requested (and again while the trainer cannot be reached).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from quakestack.v1 import trainer_pb2

HP_FIELD = "quakestack.v1.CreateTrainingJobRequest.hyper_parameters"
JSON_TYPES = {"HYPER_PARAMETER_KIND_INT": "integer", "HYPER_PARAMETER_KIND_FLOAT": "number",
              "HYPER_PARAMETER_KIND_BOOL": "boolean", "HYPER_PARAMETER_KIND_CHOICE": "string"}


def _kind(spec: trainer_pb2.HyperParameterSpec) -> str:
    return trainer_pb2.HyperParameterKind.Name(spec.kind)


def _range(spec: trainer_pb2.HyperParameterSpec) -> str:
    kind = _kind(spec)
    if kind == "HYPER_PARAMETER_KIND_CHOICE":
        return "one of " + ", ".join(f"`{c}`" for c in spec.choices)
    if kind == "HYPER_PARAMETER_KIND_BOOL":
        return "true or false"
    return f"[{spec.minimum:g}, {spec.maximum:g}]"


def _line(spec: trainer_pb2.HyperParameterSpec) -> str:
    default = json_format.MessageToJson(spec.default_value, indent=None) if spec.HasField("default_value") else "-"
    kind = _kind(spec).removeprefix("HYPER_PARAMETER_KIND_").lower()
    return f"- `{spec.name}` ({kind}, default {default}, {_range(spec)}): {spec.description}"


def hyper_parameter_schema(zoo: trainer_pb2.ListArchitecturesResponse) -> dict[str, Any]:
    """The `hyperParameters` field: every name with its JSON type, and per architecture its defaults and ranges."""
    properties: dict[str, dict[str, Any]] = {}
    for spec in [*zoo.training_hyper_parameters, *(h for a in zoo.architectures for h in a.hyper_parameters)]:
        json_type = JSON_TYPES.get(_kind(spec))
        if json_type and spec.name not in properties:
            properties[spec.name] = {"type": json_type, "description": spec.description}
    parts = ["Training hyper-parameters (every architecture):", *(_line(s) for s in zoo.training_hyper_parameters)]
    for arch in zoo.architectures:
        parts += ["", f"Architecture `{arch.name}` ({arch.description}):", *(_line(s) for s in arch.hyper_parameters)]
    return {"type": "object", "properties": properties, "additionalProperties": True,
            "description": "\n".join(parts),
            "x-architectures": {a.name: [json_format.MessageToDict(h) for h in a.hyper_parameters]
                                for a in zoo.architectures}}
