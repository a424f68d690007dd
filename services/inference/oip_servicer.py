"""inference.GRPCInferenceService: the Open Inference Protocol over InferenceService's data plane.

Thin: tensors are decoded and validated by quakestack.inference.oip (the same checks as Predict),
windows go through the same manager, batcher and deadlines (``InferenceServicer.run_windows``), and
the repository RPCs are LoadModel/UnloadModel. The shared interceptor adds metrics, request ids and
the error mapping, as for every other RPC.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING

from quakestack.errors import InvalidArgument, NotFound
from quakestack.inference.manager import LoadOptions, Resident
from quakestack.inference.oip import decode_inputs, encode_outputs, input_tensors, output_tensors, requested_outputs
from quakestack.oip import open_inference_pb2 as oip
from quakestack.oip import open_inference_pb2_grpc

if TYPE_CHECKING:
    from services.inference.servicer import InferenceServicer

OIP_SERVICE = "inference.GRPCInferenceService"
SERVER_NAME = "quakestack"
PLATFORM = "pytorch"
EXTENSIONS = ("model_repository",)
READY, UNAVAILABLE = "READY", "UNAVAILABLE"


def server_version() -> str:
    try:
        return metadata.version("quakestack")
    except metadata.PackageNotFoundError:  # running from a source tree that was not installed
        return "0"


_LOAD_PARAMETERS = {"version": str, "device": str, "max_batch_size": int, "max_queue_delay_us": int,
                    "instances": int, "max_queue_size": int}


def _check_version(resident: Resident, version: str) -> None:
    if version and version != str(resident.version):
        raise NotFound(f"model {resident.name!r} version {version} is not loaded (version {resident.version} is)")


def _parameter(value: oip.ModelRepositoryParameter) -> object:
    which = value.WhichOneof("parameter_choice")
    return None if which is None else getattr(value, which)


def load_options(parameters) -> tuple[str, LoadOptions]:
    """Triton load parameters -> (version, LoadOptions); anything else is refused, never ignored."""
    values: dict[str, object] = {}
    for key, value in parameters.items():
        if key == "config" or key.startswith("file:"):
            raise InvalidArgument(f"parameter {key!r}: quakestack loads registered models; a model configuration "
                                  "or files cannot be given with the load")
        kind = _LOAD_PARAMETERS.get(key)
        if kind is None:
            raise InvalidArgument(f"unknown load parameter {key!r}; known: {sorted(_LOAD_PARAMETERS)}")
        raw = _parameter(value)
        try:
            values[key] = kind(raw)
        except (TypeError, ValueError):
            raise InvalidArgument(f"load parameter {key!r} must be {kind.__name__}, got {raw!r}") from None
    version = str(values.pop("version", ""))
    return version, LoadOptions(**values)  # type: ignore[arg-type]


class OpenInferenceServicer(open_inference_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, inference: InferenceServicer, storage_ready: Callable[[], bool]):
        self.inference = inference
        self.manager = inference.manager
        self.storage_ready = storage_ready

    # -- health and metadata ------------------------------------------------------------------
    def ServerLive(self, request, context):
        return oip.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):
        return oip.ServerReadyResponse(ready=bool(self.storage_ready()))

    def ModelReady(self, request, context):
        try:
            resident = self.manager.get(request.name)
        except NotFound:
            return oip.ModelReadyResponse(ready=False)
        return oip.ModelReadyResponse(ready=not request.version or request.version == str(resident.version))

    def ServerMetadata(self, request, context):
        return oip.ServerMetadataResponse(name=SERVER_NAME, version=server_version(), extensions=list(EXTENSIONS))

    def ModelMetadata(self, request, context):
        resident = self.manager.get(request.name)
        _check_version(resident, request.version)
        spec = resident.servable.spec
        tensor = oip.ModelMetadataResponse.TensorMetadata
        return oip.ModelMetadataResponse(
            name=resident.name, versions=[str(resident.version)], platform=PLATFORM,
            inputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in input_tensors(spec)],
            outputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in output_tensors(spec)])

    # -- inference ----------------------------------------------------------------------------
    def ModelInfer(self, request, context):
        resident = self.manager.get(request.model_name)
        _check_version(resident, request.model_version)
        spec = resident.servable.spec
        x, extras = decode_inputs(request, spec, self.inference.max_bytes)
        outputs = requested_outputs(request, spec)
        resident, out, _ = self.inference.run_windows(request.model_name, x, extras, context)
        response = oip.ModelInferResponse(model_name=request.model_name, model_version=str(resident.version),
                                          id=request.id)
        encode_outputs(response, out, outputs, x.shape[0])
        return response

    # -- model repository (Triton's extension) ------------------------------------------------
    def RepositoryIndex(self, request, context):
        loaded = {r.name: r for r in self.manager.list()}
        names = sorted(set(self.manager.model_store.model_names()[0]) | set(loaded))
        index = oip.RepositoryIndexResponse.ModelIndex
        models = []
        for name in names:
            resident = loaded.get(name)
            if resident is not None:
                models.append(index(name=name, version=str(resident.version), state=READY))
            elif not request.ready:
                models.append(index(name=name, state=UNAVAILABLE, reason="not loaded"))
        return oip.RepositoryIndexResponse(models=models)

    def RepositoryModelLoad(self, request, context):
        if not request.model_name:
            raise InvalidArgument("model_name is required")
        version, options = load_options(request.parameters)
        self.manager.load(request.model_name, version, options)
        return oip.RepositoryModelLoadResponse()

    def RepositoryModelUnload(self, request, context):
        if not request.model_name:
            raise InvalidArgument("model_name is required")
        unknown = sorted(set(request.parameters) - {"unload_dependents"})
        if unknown:
            raise InvalidArgument(f"unknown unload parameters {unknown}; known: ['unload_dependents']")
        self.manager.unload(request.model_name)
        return oip.RepositoryModelUnloadResponse()
