"""Export a registered model for Triton / KServe: ONNX with the card's normalisation inside the graph.

The exported graph takes the tensors of the model's Open Inference Protocol signature
(``quakestack.inference.oip``: ``waveforms`` [-1, C, L] and one [-1, 1] tensor per extra input) and
returns the same named outputs as the service (``magnitude`` [-1, 1], ``class_probabilities``, ...),
after the same normalisation and post-processing as ``ZooServable.run``: a client gets the same
answers from quakestack, from Triton (``onnxruntime_onnx``) and from KServe. The Triton repository
entry is ``<name>/<version>/model.onnx`` plus ``<name>/config.pbtxt`` (inputs, outputs, max batch
size, dynamic batching). ``torch.onnx.export`` goes through ``torch.export`` (TorchScript is
deprecated in torch 2.13).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from quakestack.errors import FailedPrecondition, InvalidArgument
from quakestack.inference.oip import TensorSpec, input_tensors, output_tensors
from quakestack.inference.servables.base import NOISE_CLASS, ServingSpec
from quakestack.inference.servables.zoo import ZooServable

FORMATS = ("onnx", "seisbench")
OPSET = 18
MAX_EXPORT_BATCH = 4096
TRITON_TYPES = {"FP32": "TYPE_FP32", "INT32": "TYPE_INT32", "INT64": "TYPE_INT64", "FP64": "TYPE_FP64"}


def normalize_tensor(x: torch.Tensor, mode: str) -> torch.Tensor:
    """``quakestack.data.preprocess.normalize`` in torch ops, so that it lives inside the graph."""
    if mode == "none":
        return x
    y = x - x.mean(dim=-1, keepdim=True)
    if mode == "std":
        scale = y.std(dim=-1, keepdim=True, correction=0).amax(dim=-2, keepdim=True)
    elif mode == "peak":
        scale = y.abs().amax(dim=-1, keepdim=True).amax(dim=-2, keepdim=True)
    else:
        raise InvalidArgument(f"normalization {mode!r} cannot be exported")
    return y / torch.where(scale > 0, scale, torch.ones_like(scale))


class ServingGraph(nn.Module):
    """Normalisation + the zoo module + the service's post-processing, as one exportable module."""

    def __init__(self, module: nn.Module, spec: ServingSpec):
        super().__init__()
        self.module = module
        self.spec = spec
        self.outputs = [t.name for t in output_tensors(spec)]

    def forward(self, waveforms: torch.Tensor, *extras: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = normalize_tensor(waveforms, self.spec.normalization)
        named = {name: value.reshape(-1) for name, value in zip(self.spec.extra_inputs, extras, strict=True)}
        raw = self.module(x, named or None)
        served: dict[str, torch.Tensor] = {}
        if "sequence" in raw:  # pickers: per-sample phase probabilities [N, K, L]
            served["sequence"] = raw["sequence"].float()
        if "magnitude" in raw:
            served["magnitude"] = raw["magnitude"].float().reshape(-1, 1)
        if "magnitude_log_var" in raw:
            served["magnitude_std"] = torch.exp(0.5 * raw["magnitude_log_var"].float()).reshape(-1, 1)
        if "logits" in raw:
            probs = torch.softmax(raw["logits"].float(), dim=-1)
            served["class_probabilities"] = probs
            names = self.spec.class_names
            if NOISE_CLASS in names:
                served["detection_probability"] = (1.0 - probs[:, names.index(NOISE_CLASS)]).reshape(-1, 1)
            elif len(names) == 2:
                served["detection_probability"] = probs[:, 1].reshape(-1, 1)
        if "cluster_logits" in raw:
            served["location_cluster"] = raw["cluster_logits"].argmax(dim=-1).to(torch.int32).reshape(-1, 1)
        return tuple(served[name] for name in self.outputs)


@dataclass(frozen=True)
class ExportedModel:
    """The files of one Triton model-repository entry, by path relative to the repository root."""

    name: str
    version: int
    files: dict[str, bytes]


def _example(tensors: list[TensorSpec], batch: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    out = []
    for t in tensors:
        shape = (batch, *t.shape[1:])
        scale = 1000.0 if t.name == "waveforms" else 100.0
        out.append(torch.rand(shape, generator=generator) * scale)
    return tuple(out)


def onnx_bytes(servable: ZooServable) -> bytes:
    """The servable's graph as ONNX, the batch dimension dynamic; FAILED_PRECONDITION when ONNX cannot express it."""
    graph = ServingGraph(servable.module.to("cpu").eval(), servable.spec).eval()
    inputs, outputs = input_tensors(servable.spec), output_tensors(servable.spec)
    batch = torch.export.Dim("batch", min=1, max=MAX_EXPORT_BATCH)
    dynamic = ({0: batch}, tuple({0: batch} for _ in inputs[1:])) if inputs[1:] else ({0: batch},)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, _example(inputs, 2), dynamic_shapes=dynamic, dynamo=True,
                                        input_names=[t.name for t in inputs],
                                        output_names=[t.name for t in outputs], opset_version=OPSET,
                                        verbose=False, optimize=True)
    except Exception as exc:  # noqa: BLE001 - torch.export and the ONNX translation raise many types
        raise FailedPrecondition(f"ONNX cannot express this {servable.spec.task} model: {_reason(exc)}") from None
    buffer = io.BytesIO()
    buffer.write(program.model_proto.SerializeToString())
    return buffer.getvalue()


def _reason(exc: Exception) -> str:
    """The line of torch.onnx's long report that names the cause (``<class ...>: message``)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    causes = [line for line in lines if line.startswith("<class")]
    return (causes or lines or [type(exc).__name__])[0][:500]


def _dims(t: TensorSpec) -> str:
    return "[ " + ", ".join(str(d) for d in t.shape[1:]) + " ]"


def triton_config(name: str, version: int, spec: ServingSpec, *, max_batch_size: int,
                  max_queue_delay_us: int) -> str:
    """config.pbtxt of an onnxruntime_onnx model with dynamic batching (the batch dimension is implicit)."""
    lines = [f'name: "{name}"', 'platform: "onnxruntime_onnx"', f"max_batch_size: {max_batch_size}",
             f"version_policy: {{ specific: {{ versions: [ {version} ] }} }}"]
    for kind, tensors in (("input", input_tensors(spec)), ("output", output_tensors(spec))):
        entries = [f'  {{ name: "{t.name}" data_type: {TRITON_TYPES[t.datatype]} dims: {_dims(t)} }}'
                   for t in tensors]
        lines.append(f"{kind} [\n" + ",\n".join(entries) + "\n]")
    lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {max_queue_delay_us} }}")
    lines.append('instance_group [ { kind: KIND_CPU count: 1 } ]')
    lines.append(f'parameters {{ key: "quakestack_normalization" value: {{ string_value: "{spec.normalization}" }} }}')
    return "\n".join(lines) + "\n"


def seisbench_export(card: dict[str, Any], weights: bytes) -> ExportedModel:
    """A ``seisbench:<Class>`` version as the two files SeisBench's ``save`` writes (``<name>.json`` and
    ``<name>.pt``): ``sbm.<Class>.load(dir / name)`` opens it in plain SeisBench."""
    import tempfile
    from pathlib import Path

    from quakestack.inference.servables.seisbench import build_seisbench
    from quakestack.models.checkpoint import load_state

    if not str(card.get("architecture", "")).startswith("seisbench:"):
        raise FailedPrecondition(f"{card.get('architecture')!r} is not a SeisBench model; only seisbench:<Class> "
                                 "versions export with format seisbench")
    model = build_seisbench(card["architecture"], card.get("hyper_parameters"))
    model.load_state_dict(load_state(weights))
    name, version = str(card["name"]), int(card["version"])
    source = card.get("source") or {}
    docstring = (card.get("provenance") or {}).get("docstring") or (
        f"quakestack {name} v{version}" + (f" from job {source['job_id']} epoch {source.get('epoch')}"
                                           if source.get("job_id") else ""))
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / name, weights_docstring=docstring)
        files = {path.name: path.read_bytes() for path in sorted(Path(tmp).iterdir())}
    return ExportedModel(name, version, files)


def export_model(card: dict[str, Any], weights: bytes, *, fmt: str = "onnx", max_batch_size: int = 32,
                 max_queue_delay_us: int = 2000) -> ExportedModel:
    """A registered version (card + state_dict) as a Triton model-repository entry."""
    if fmt not in FORMATS:
        raise InvalidArgument(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    if not 1 <= max_batch_size <= MAX_EXPORT_BATCH:
        raise InvalidArgument(f"max_batch_size must be in 1..{MAX_EXPORT_BATCH}, got {max_batch_size}")
    if max_queue_delay_us < 0:
        raise InvalidArgument(f"max_queue_delay_us must not be negative, got {max_queue_delay_us}")
    if fmt == "seisbench":
        return seisbench_export(card, weights)
    if str(card.get("architecture", "")).startswith("seisbench:"):
        raise FailedPrecondition("SeisBench pickers are served through Annotate and are not exported as ONNX; "
                                 "export them with format seisbench (SeisBench's own save)")
    servable = ZooServable(card, weights, torch.device("cpu"))
    name, version = str(card["name"]), int(card["version"])
    config = triton_config(name, version, servable.spec, max_batch_size=max_batch_size,
                           max_queue_delay_us=max_queue_delay_us)
    return ExportedModel(name, version, {f"{name}/{version}/model.onnx": onnx_bytes(servable),
                                         f"{name}/config.pbtxt": config.encode()})
