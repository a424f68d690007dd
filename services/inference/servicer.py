"""InferenceService servicer: protobuf in, quakestack.inference calls, protobuf out."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator

import grpc
import numpy as np
import structlog
import torch
from prometheus_client import REGISTRY

from quakestack.config import Settings
from quakestack.errors import InvalidArgument
from quakestack.inference.annotate import AnnotateOptions, Annotator, DetectionResult, PickResult
from quakestack.inference.export import export_model
from quakestack.inference.feedback import InferenceLog
from quakestack.inference.files import fetch_object, read_stream, temporary_directory
from quakestack.inference.inputs import extras_arrays, windows_array
from quakestack.inference.manager import (
    DEFAULT_DELAY_US,
    DEFAULT_MAX_BATCH,
    LoadOptions,
    ModelManager,
    Resident,
    wait_result,
)
from quakestack.inference.processes import DataPlaneProcesses
from quakestack.inference.quality import InputPolicy
from quakestack.metadata.database import Database
from quakestack.model_store import ModelStore
from quakestack.oip import open_inference_pb2_grpc
from quakestack.pagination import page_request, paginate
from quakestack.paths import allowed_local_path
from quakestack.protoconv import seconds_from_timestamp, timestamp_from_seconds
from quakestack.runtime.app import ServiceDefinition
from quakestack.runtime.interceptor import REQUEST_ID_KEY, current_request_id
from quakestack.runtime.memory import keep_freed_memory
from quakestack.runtime.merged_metrics import MergedRegistry
from quakestack.runtime.server import NOT_SERVING, SERVING, GrpcServer
from quakestack.storage import ObjectStore
from quakestack.v1 import common_pb2, inference_pb2, inference_pb2_grpc, trainer_pb2
from services.inference.oip_servicer import OIP_SERVICE, OpenInferenceServicer

SERVICE = "quakestack.v1.InferenceService"
TASKS = {"magnitude": common_pb2.TASK_MAGNITUDE, "detection": common_pb2.TASK_DETECTION,
         "classification": common_pb2.TASK_CLASSIFICATION, "picking": common_pb2.TASK_PICKING}
log = structlog.get_logger()


def health_name(model: str) -> str:
    """Per-model readiness in grpc.health.v1."""
    return f"{SERVICE}/{model}"


def _request_id(context: grpc.ServicerContext) -> str:
    return current_request_id() or next((v for k, v in context.invocation_metadata() if k == REQUEST_ID_KEY), "")


def _timeout(context: grpc.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None or remaining > 1e8 else max(0.0, remaining)


def loaded_model_pb(resident: Resident, elsewhere: dict[str, float] | None = None) -> inference_pb2.LoadedModel:
    """``elsewhere``: what the service's other processes served of this version (batches, windows, last use)."""
    spec = resident.servable.spec
    other = elsewhere or {"batches": 0, "windows": 0, "last_used": 0.0}
    return inference_pb2.LoadedModel(
        name=resident.name, version=resident.version, device=resident.device, task=TASKS.get(spec.task, 0),
        input_spec=trainer_pb2.InputSpec(n_samples=spec.n_samples, component_order=spec.components,
                                         sampling_rate_hz=spec.sampling_rate, extra_inputs=list(spec.extra_inputs)),
        memory_bytes=resident.memory_bytes, batches_served=resident.batcher.stats.batches + int(other["batches"]),
        windows_served=resident.batcher.stats.windows + int(other["windows"]),
        max_batch_size=resident.options.max_batch_size,
        max_queue_delay_us=resident.options.max_queue_delay_us, instances=resident.options.instances,
        load_time=timestamp_from_seconds(resident.load_time),
        last_used_time=timestamp_from_seconds(max(resident.batcher.last_used, other["last_used"])),
        class_names=list(spec.class_names))


def predictions_pb(out: dict[str, np.ndarray], n: int) -> list[inference_pb2.WindowPrediction]:
    rows = []
    for i in range(n):
        p = inference_pb2.WindowPrediction()
        if "magnitude" in out:
            p.magnitude = float(out["magnitude"][i])
        if "magnitude_std" in out:
            p.magnitude_std = float(out["magnitude_std"][i])
        if "class_probabilities" in out:
            p.class_probabilities.extend(out["class_probabilities"][i].tolist())
        if "detection_probability" in out:
            p.detection_probability = float(out["detection_probability"][i])
        if "location_cluster" in out:
            p.location_cluster = int(out["location_cluster"][i])
        rows.append(p)
    return rows


def predict_response(model: str, resident: Resident, out: dict[str, np.ndarray], n: int,
                     request_id: str = "") -> inference_pb2.PredictResponse:
    """The answer to a Predict whose n windows the resident model (the version that ran them) produced `out` for."""
    return inference_pb2.PredictResponse(model=model, model_version=resident.version, request_id=request_id,
                                         class_names=list(resident.servable.spec.class_names),
                                         predictions=predictions_pb(out, n))


def detection_pb(d: DetectionResult) -> inference_pb2.Detection:
    pb = inference_pb2.Detection(station=d.station, start_time=timestamp_from_seconds(d.start),
                                 end_time=timestamp_from_seconds(d.end),
                                 peak_time=timestamp_from_seconds(d.peak_time), probability=d.probability,
                                 class_label=d.class_label)
    if d.magnitude is not None:
        pb.magnitude = d.magnitude
    return pb


def pick_pb(p: PickResult) -> inference_pb2.Pick:
    return inference_pb2.Pick(station=p.station, phase=p.phase, time=timestamp_from_seconds(p.time),
                              probability=p.probability)


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, settings: Settings, store: ObjectStore, manager: ModelManager, inference_log: InferenceLog,
                 processes: DataPlaneProcesses | None = None):
        self.processes = processes  # the service's other processes (inference_processes > 1)
        self.settings = settings
        self.store = store
        self.manager = manager
        self.log = inference_log
        self.max_bytes = settings.max_message_mb * 1024 * 1024

    # -- lifecycle ----------------------------------------------------------------------------
    def LoadModel(self, request, context):
        if not request.name:
            raise InvalidArgument("name is required")
        options = LoadOptions(request.device, request.max_batch_size, request.max_queue_delay_us,
                              request.instances, request.max_queue_size)
        resident = self.manager.load(request.name, request.version, options)
        return inference_pb2.LoadModelResponse(model=loaded_model_pb(resident))

    def UnloadModel(self, request, context):
        self.manager.unload(request.name)
        return inference_pb2.UnloadModelResponse()

    def ListLoadedModels(self, request, context):
        page = page_request("ListLoadedModels", request.page_size, request.page_token)
        residents, token = paginate(self.manager.list(), page, lambda r: (r.name,))
        elsewhere = self.processes.served() if self.processes is not None and residents else {}
        return inference_pb2.ListLoadedModelsResponse(
            models=[loaded_model_pb(r, elsewhere.get((r.name, r.version))) for r in residents],
            next_page_token=token)

    # -- predict ------------------------------------------------------------------------------
    def Predict(self, request, context):
        x, extras = self.predict_inputs(request)
        resident, out, request_id = self.run_windows(request.model, x, extras, context)
        return predict_response(request.model, resident, out, x.shape[0], request_id)

    def predict_inputs(self, request: inference_pb2.PredictRequest) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """A Predict request's windows and extra inputs, validated against the loaded model's input spec."""
        spec = self.manager.get(request.model).servable.spec
        w = request.windows
        x = windows_array(w.data, w.shape, w.sampling_rate_hz, w.component_order, spec, self.max_bytes)
        return x, extras_arrays({e.name: e.values for e in request.extra_inputs}, spec, x.shape[0])

    def run_windows(self, model: str, x: np.ndarray, extras: dict[str, np.ndarray],
                    context: grpc.ServicerContext) -> tuple[Resident, dict[str, np.ndarray], str]:
        """The data plane shared by Predict and OIP ModelInfer: batcher, deadline, sampled log."""
        timeout = _timeout(context)
        deadline = None if timeout is None else time.monotonic() + timeout
        resident, future = self.manager.submit(model, x, extras, deadline)
        out = wait_result(resident, future, timeout)
        request_id = _request_id(context)
        if self.log.sampled():
            self.log.record("prediction", request_id=request_id, model=model, version=resident.version,
                            predictions=[_jsonable(out, i) for i in range(x.shape[0])])
        return resident, out, request_id

    # -- annotate -----------------------------------------------------------------------------
    def _annotator(self, model: str, stride_s: float, threshold: float | None, magnitude_model: str,
                   policy: inference_pb2.InputPolicy, context: grpc.ServicerContext) -> Annotator:
        resident = self.manager.get(model)

        def predict(name: str):
            return lambda x: self.manager.predict(name, x, timeout_s=_timeout(context))[1]

        magnitude = None
        if magnitude_model:
            magnitude = (self.manager.get(magnitude_model).servable.spec, predict(magnitude_model))
        return Annotator(resident.servable.spec, predict(model), AnnotateOptions(stride_s, threshold), magnitude,
                         InputPolicy.of(policy.max_upsampling, policy.missing_components))

    def Annotate(self, request_iterator, context) -> Iterator[inference_pb2.AnnotateResponse]:
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("part") != "config":
            raise InvalidArgument("the first message of Annotate must carry the config")
        c = first.config
        annotator = self._annotator(c.model, c.stride_s, c.threshold if c.HasField("threshold") else None,
                                    c.magnitude_model, c.input_policy, context)
        for message in request_iterator:
            part = message.WhichOneof("part")
            if part == "chunk":
                ch = message.chunk
                if len(ch.data) % 4:
                    raise InvalidArgument(f"chunk of {ch.seed_id}: data is not whole float32 samples")
                start = seconds_from_timestamp(ch.start_time)
                annotator.add_samples(ch.seed_id, start, ch.sampling_rate_hz, np.frombuffer(ch.data, "<f4"))
            elif part == "mseed":
                annotator.add_stream(_read_mseed(message.mseed))
            elif part == "config":
                raise InvalidArgument("only the first message may carry the config")
            response = _annotate_response(*annotator.step())
            if response is not None:
                yield response
        detections, picks = annotator.finish()
        yield inference_pb2.AnnotateResponse(detections=[detection_pb(d) for d in detections],
                                             picks=[pick_pb(p) for p in picks], inputs=_inputs_pb(annotator),
                                             warnings=annotator.notes())

    def AnnotateFile(self, request, context):
        threshold = request.threshold if request.HasField("threshold") else None
        annotator = self._annotator(request.model, request.stride_s, threshold, request.magnitude_model,
                                    request.input_policy, context)
        which = request.file.WhichOneof("location")
        with temporary_directory() as tmp:
            if which == "local_path":
                path = allowed_local_path(request.file.local_path, self.settings.data_allowed_dirs, "file.local_path",
                                          kind="file")
            elif which == "object_key":
                path = fetch_object(self.store, request.file.object_key, tmp)
            else:
                raise InvalidArgument("file must give object_key or local_path")
            annotator.add_stream(read_stream(path))  # through the annotator's quality gate
        detections, picks = annotator.finish()
        return inference_pb2.AnnotateFileResponse(detections=[detection_pb(d) for d in detections],
                                                  picks=[pick_pb(p) for p in picks],
                                                  warnings=annotator.notes(), inputs=_inputs_pb(annotator))

    # -- export -------------------------------------------------------------------------------
    def ExportModel(self, request, context):
        if not request.name:
            raise InvalidArgument("name is required")
        card = self.manager.model_store.get(request.name, request.version)
        exported = export_model(card, self.manager.model_store.weights(card), fmt=request.format or "onnx",
                                max_batch_size=request.max_batch_size or DEFAULT_MAX_BATCH,
                                max_queue_delay_us=request.max_queue_delay_us or DEFAULT_DELAY_US)
        return inference_pb2.ExportModelResponse(
            name=exported.name, version=exported.version, format=request.format or "onnx",
            files=[inference_pb2.ExportedFile(path=path, content=data, sha256=hashlib.sha256(data).hexdigest())
                   for path, data in sorted(exported.files.items())])

    # -- feedback -----------------------------------------------------------------------------
    def SubmitFeedback(self, request, context):
        if not request.request_id:
            raise InvalidArgument("request_id is required")
        truth = request.WhichOneof("truth")
        if truth is None:
            raise InvalidArgument("give true_magnitude or true_label")
        if request.window_index < 0:
            raise InvalidArgument("window_index must be >= 0")
        self.log.record("feedback", request_id=request.request_id, window_index=request.window_index,
                        **{truth: getattr(request, truth)})
        return inference_pb2.SubmitFeedbackResponse()


def _jsonable(out: dict[str, np.ndarray], i: int) -> dict:
    return {k: v[i].tolist() for k, v in out.items() if k != "sequence"}


def _read_mseed(data: bytes):
    import io

    import obspy

    try:
        return obspy.read(io.BytesIO(data), format="MSEED")
    except Exception as exc:  # noqa: BLE001 - ObsPy raises many types for bad input
        raise InvalidArgument(f"cannot read miniSEED bytes: {exc}") from None


def _inputs_pb(annotator: Annotator) -> list[inference_pb2.StationInput]:
    return [inference_pb2.StationInput(**report.to_dict()) for report in annotator.reports()]


def _annotate_response(detections, picks) -> inference_pb2.AnnotateResponse | None:
    if not detections and not picks:
        return None
    return inference_pb2.AnnotateResponse(detections=[detection_pb(d) for d in detections],
                                          picks=[pick_pb(p) for p in picks])


def torch_threads(settings: Settings) -> int:
    """The model's intra-op threads and the gRPC threads share the CPUs; measured on 2 cores
    (bench/RESULTS.md), one torch thread serves more windows than two. Several processes share them out."""
    if settings.inference_torch_threads:
        return settings.inference_torch_threads
    return max(1, (os.cpu_count() or 2) // 2 // settings.inference_processes)


def resident_record(resident: Resident) -> dict:
    """What a data-plane process needs to hold the same model (quakestack.inference.processes)."""
    o = resident.options
    return {"name": resident.name, "version": resident.version, "device": resident.device,
            "max_batch_size": o.max_batch_size, "max_queue_delay_us": o.max_queue_delay_us,
            "instances": o.instances, "max_queue_size": o.max_queue_size}


def register(server: GrpcServer, settings: Settings, store: ObjectStore, db: Database) -> None:
    processes = None
    if settings.inference_processes > 1:
        processes = DataPlaneProcesses(settings.inference_processes, settings.max_message_mb * 1024 * 1024)
        server.add_local_port(str(processes.primary_socket))
        server.on_started(lambda: processes.start(server.port))
        server.on_stopping(processes.stop)
        server.metrics_registry = MergedRegistry(REGISTRY, processes.metrics_texts,
                                                 ("grpc_server_", "quakestack_inference_"))

    def on_ready(model: str, ready: bool) -> None:
        server.health.set(health_name(model), SERVING if ready else NOT_SERVING)
        if processes is not None:
            processes.publish([resident_record(r) for r in manager.list()])

    torch.set_num_threads(torch_threads(settings))
    if settings.keep_freed_memory:
        keep_freed_memory()
    manager = ModelManager(ModelStore(store, db), memory_budget_bytes=settings.inference_memory_budget_mb << 20,
                           default_device=settings.device, on_ready=on_ready)
    inference_log = InferenceLog(store, settings.inference_log_sample_rate)
    servicer = InferenceServicer(settings, store, manager, inference_log, processes)
    server.add(inference_pb2_grpc.add_InferenceServiceServicer_to_server, servicer)
    server.add(open_inference_pb2_grpc.add_GRPCInferenceServiceServicer_to_server,
               OpenInferenceServicer(servicer, lambda: server.watcher.healthy is True))
    autoloading = threading.Lock()

    def autoload(healthy: bool) -> None:
        if not healthy or not settings.inference_autoload_alias or not autoloading.acquire(blocking=False):
            return

        def run() -> None:
            try:
                loaded = manager.autoload(settings.inference_autoload_alias)
                if loaded:
                    log.info("autoloaded models", alias=settings.inference_autoload_alias, models=loaded)
            finally:
                autoloading.release()

        threading.Thread(target=run, name="autoload", daemon=True).start()

    server.on_dependencies(autoload)
    server.on_shutdown(manager.close)
    server.on_shutdown(inference_log.close)


DEFINITION = ServiceDefinition(
    name="inference", grpc_port_setting="inference_grpc_port", metrics_port_setting="inference_metrics_port",
    health_names=(SERVICE, OIP_SERVICE), register=register,
)
