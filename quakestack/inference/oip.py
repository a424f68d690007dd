"""Open Inference Protocol tensors for quakestack's models: metadata, request decoding, response encoding.

A model's OIP signature comes from its card (via the servable's ServingSpec): one ``waveforms`` FP32
input ``[-1, C, L]``, one FP32 ``[-1, 1]`` input per extra input (MagInfoNet's P/S samples), and the
per-window outputs ``run`` returns (``magnitude`` ``[-1, 1]``, ``class_probabilities`` ``[-1, K]``, ...).
Decoding ends in the same validation as Predict (``inputs.windows_array`` / ``extras_arrays``), so
both protocols accept and refuse exactly the same windows. Outputs always go back as
``raw_output_contents`` (tritonclient decodes only those). The Triton export uses the same
signature, so a model answers the same in quakestack, Triton and KServe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from quakestack.errors import InvalidArgument
from quakestack.inference.inputs import extras_arrays, windows_array
from quakestack.inference.servables.base import ServingSpec

WAVEFORMS = "waveforms"
# OIP datatype -> little-endian numpy dtype, and the typed-contents field that may carry it.
DTYPES: dict[str, str] = {"BOOL": "|b1", "UINT8": "|u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
                          "INT8": "|i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2",
                          "FP32": "<f4", "FP64": "<f8"}
CONTENTS: dict[str, str] = {"BOOL": "bool_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
                            "UINT32": "uint_contents", "UINT64": "uint64_contents", "INT8": "int_contents",
                            "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
                            "FP32": "fp32_contents", "FP64": "fp64_contents"}


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor of a model's signature; -1 is the batch (window) dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(DTYPES[self.datatype])


def input_tensors(spec: ServingSpec) -> list[TensorSpec]:
    return [TensorSpec(WAVEFORMS, "FP32", (-1, len(spec.components), spec.n_samples)),
            *(TensorSpec(name, "FP32", (-1, 1)) for name in spec.extra_inputs)]


def output_tensors(spec: ServingSpec) -> list[TensorSpec]:
    """The served outputs in the servable's order; per-window scalars are ``[-1, 1]`` (Triton's dims [1])."""
    shapes: dict[str, TensorSpec] = {
        "magnitude": TensorSpec("magnitude", "FP32", (-1, 1)),
        "magnitude_std": TensorSpec("magnitude_std", "FP32", (-1, 1)),
        "class_probabilities": TensorSpec("class_probabilities", "FP32", (-1, len(spec.class_names))),
        "detection_probability": TensorSpec("detection_probability", "FP32", (-1, 1)),
        "location_cluster": TensorSpec("location_cluster", "INT32", (-1, 1)),
        "sequence": TensorSpec("sequence", "FP32", (-1, len(spec.class_names), spec.n_samples)),
    }
    return [shapes[name] for name in spec.outputs if name in shapes]


def _tensor_bytes(tensor: Any, raw: bytes | None, expected: TensorSpec) -> bytes:
    """The flat little-endian bytes of one input, from raw contents or typed contents."""
    if raw is not None:
        if tensor.HasField("contents"):
            raise InvalidArgument(f"input {tensor.name!r}: give raw_input_contents or contents, not both")
        return raw
    field = CONTENTS.get(expected.datatype, "")
    values = getattr(tensor.contents, field)
    other = [f.name for f, _ in tensor.contents.ListFields() if f.name != field]
    if other:
        raise InvalidArgument(f"input {tensor.name!r} is {expected.datatype}: its values go in contents.{field}, "
                              f"not {other}")
    return np.asarray(values, dtype=expected.dtype).tobytes()


def _elements(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def decode_inputs(request: Any, spec: ServingSpec, max_bytes: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A ModelInferRequest's inputs -> the validated [N, C, L] windows and extra inputs Predict would build."""
    declared = {t.name: t for t in input_tensors(spec)}
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument(f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs; "
                              "give one per input, in the order of inputs")
    given: dict[str, tuple[list[int], bytes]] = {}
    for i, tensor in enumerate(request.inputs):
        expected = declared.get(tensor.name)
        if expected is None:
            raise InvalidArgument(f"unknown input {tensor.name!r}; this model takes {sorted(declared)}")
        if tensor.name in given:
            raise InvalidArgument(f"input {tensor.name!r} given twice")
        if tensor.datatype != expected.datatype:
            raise InvalidArgument(f"input {tensor.name!r} must be {expected.datatype}, got {tensor.datatype!r}")
        shape = [int(s) for s in tensor.shape]
        if any(s < 0 for s in shape):
            raise InvalidArgument(f"input {tensor.name!r}: shape {shape} has a negative dimension")
        if _elements(shape) * 4 > max_bytes:
            raise InvalidArgument(f"input {tensor.name!r}: shape {shape} is over the {max_bytes}-byte limit")
        data = _tensor_bytes(tensor, raw[i] if raw else None, expected)
        if len(data) != _elements(shape) * expected.dtype.itemsize:
            raise InvalidArgument(f"input {tensor.name!r} holds {len(data)} bytes; shape {shape} of "
                                  f"{expected.datatype} needs {_elements(shape) * expected.dtype.itemsize}")
        given[tensor.name] = (shape, data)
    missing = [name for name in declared if name not in given]
    if missing:
        raise InvalidArgument(f"missing inputs {missing}; this model takes "
                              + ", ".join(f"{t.name} {t.datatype} {list(t.shape)}" for t in declared.values()))
    shape, data = given[WAVEFORMS]
    x = windows_array(data, shape, spec.sampling_rate, spec.components, spec, max_bytes, what=f"input {WAVEFORMS!r}")
    extras = {}
    for name in spec.extra_inputs:
        extra_shape, extra_data = given[name]
        if extra_shape not in ([x.shape[0]], [x.shape[0], 1]):
            raise InvalidArgument(f"input {name!r} must have shape [{x.shape[0]}, 1] (one value per window), "
                                  f"got {extra_shape}")
        extras[name] = np.frombuffer(extra_data, "<f4")
    return x, extras_arrays(extras, spec, x.shape[0])


def requested_outputs(request: Any, spec: ServingSpec) -> list[TensorSpec]:
    """The outputs asked for (all when none is named), each known to the model."""
    served = {t.name: t for t in output_tensors(spec)}
    if not request.outputs:
        return list(served.values())
    chosen = []
    for wanted in request.outputs:
        if wanted.name not in served:
            raise InvalidArgument(f"unknown output {wanted.name!r}; this model gives {sorted(served)}")
        chosen.append(served[wanted.name])
    return chosen


def encode_outputs(response: Any, out: dict[str, np.ndarray], outputs: list[TensorSpec], n: int) -> None:
    """Append each output's metadata to ``response.outputs`` and its bytes to ``raw_output_contents``."""
    for tensor in outputs:
        values = np.ascontiguousarray(out[tensor.name], dtype=tensor.dtype).reshape(n, *tensor.shape[1:])
        response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=values.shape)
        response.raw_output_contents.append(values.tobytes())
