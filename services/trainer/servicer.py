"""TrainerService and ModelRegistryService servicers: protobuf in, job manager / registry calls, protobuf out."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import torch

from quakestack import metrics
from quakestack.config import Settings
from quakestack.dependants import loaded_versions, model_version_dependants, refusal
from quakestack.errors import FailedPrecondition, InvalidArgument, NotFound
from quakestack.jobs.listing import list_jobs
from quakestack.layout import (
    artifact_key,
    checkpoint_label,
    checkpoints_prefix,
    evaluation_prefix,
    job_archive_prefix,
    label_epoch,
    version_prefix,
)
from quakestack.metadata.database import Database
from quakestack.model_store import ModelStore, is_number
from quakestack.models.checkpoint import load_state, state_to_bytes
from quakestack.models.seisbench_import import import_card
from quakestack.models.seisbench_pickers import zoo_architecture
from quakestack.models.zoo import (
    get_architecture,
    list_architectures,
)
from quakestack.pagination import page_request, paginate
from quakestack.protoconv import dict_from_struct, timestamp_from_iso
from quakestack.runtime.app import ServiceDefinition
from quakestack.runtime.server import GrpcServer
from quakestack.storage import ObjectStore, validate_name
from quakestack.sweeps.jobs import SweepJobs
from quakestack.tracking.artifacts import job_archive
from quakestack.training.evaluate import evaluate_weights
from quakestack.training.jobs import JOB_HYPER_PARAMETERS, TrainingJobs, job_record
from quakestack.training.register import epoch_of, epoch_weights, register_epoch
from quakestack.v1 import sweep_pb2_grpc, trainer_pb2, trainer_pb2_grpc
from services.trainer import convert
from services.trainer.sweeps import SweepServicer

CHUNK = 1 << 20
MAX_IMPORT_BYTES = 1 << 30  # a SeisBench weights file is a few MB; anything near this is not one


class Jobs:
    """Reads shared by both servicers: a job's checkpoints and the weights of one epoch."""

    def __init__(self, store: ObjectStore, manager: TrainingJobs):
        self.store = store
        self.manager = manager

    def epoch_of(self, job_id: str, epoch: int) -> tuple[dict[str, Any], int, dict[str, Any]]:
        """The job's record, the epoch meant (0: the best, else the last) and that epoch's event: one read."""
        return epoch_of(self.manager.scheduler.jobs, job_id, epoch)

    def weights(self, job_id: str, epoch: int) -> dict[str, torch.Tensor]:
        return epoch_weights(self.store, job_id, epoch)


class TrainerServicer(trainer_pb2_grpc.TrainerServiceServicer):
    def __init__(self, settings: Settings, store: ObjectStore, manager: TrainingJobs, jobs: Jobs,
                 model_store: ModelStore):
        self.settings = settings
        self.store = store
        self.manager = manager
        self.jobs = jobs
        self.model_store = model_store

    def _job(self, view) -> trainer_pb2.TrainingJob:
        return convert.training_job(job_record(view), view.record.spec.get("class_names"))

    def ListArchitectures(self, request, context):
        page = page_request("ListArchitectures", request.page_size, request.page_token)
        architectures, token = paginate(list_architectures(), page, lambda a: (a.name,))
        return trainer_pb2.ListArchitecturesResponse(
            architectures=[convert.architecture(a) for a in architectures],
            training_hyper_parameters=[convert.hyper_parameter(h) for h in JOB_HYPER_PARAMETERS],
            next_page_token=token)

    def CreateTrainingJob(self, request, context):
        initial = None
        if request.HasField("initial_model"):  # fine-tuning: the version's architecture, model_args and weights
            ref = request.initial_model
            card = self.model_store.get(ref.name, ref.version)
            initial = (f"{ref.name}@{card['version']}", card)
        view = self.manager.create(dataset=request.dataset, architecture=request.architecture,
                                   values=dict_from_struct(request.hyper_parameters), device=request.device,
                                   display_name=request.display_name, initial=initial)
        return trainer_pb2.CreateTrainingJobResponse(job=self._job(view))

    def GetTrainingJob(self, request, context):
        return trainer_pb2.GetTrainingJobResponse(job=self._job(self.manager.get(request.job_id)))

    def ListTrainingJobs(self, request, context):
        jobs, token = list_jobs(self.manager.scheduler, "ListTrainingJobs", request)
        return trainer_pb2.ListTrainingJobsResponse(jobs=[self._job(j) for j in jobs], next_page_token=token)

    def UpdateTrainingJob(self, request, context):
        return trainer_pb2.UpdateTrainingJobResponse(job=self._job(self.manager.update_epochs(request.job_id,
                                                                                               request.epochs)))

    def StopTrainingJob(self, request, context):
        return trainer_pb2.StopTrainingJobResponse(job=self._job(self.manager.stop(request.job_id)))

    def CancelTrainingJob(self, request, context):
        return trainer_pb2.CancelTrainingJobResponse(job=self._job(self.manager.cancel(request.job_id)))

    def ResumeTrainingJob(self, request, context):
        dataset = self.manager.get(request.job_id).record.spec.get("dataset", "")
        if dataset and not self.manager.catalog.exists(dataset):
            raise FailedPrecondition(f"training job {request.job_id} cannot resume: its dataset {dataset!r} was "
                                     "deleted")
        return trainer_pb2.ResumeTrainingJobResponse(job=self._job(self.manager.resume(request.job_id,
                                                                                       request.epochs)))

    def StreamTrainingProgress(self, request, context):
        class_names = self.manager.get(request.job_id).record.spec.get("class_names")
        if request.after_sequence < 0:
            raise InvalidArgument(f"after_sequence must be >= 0, got {request.after_sequence}")
        for event in self.manager.subscribe(request.job_id, context.is_active, after=request.after_sequence):
            yield convert.progress_event(event, class_names)

    def ListCheckpoints(self, request, context):
        page = page_request("ListCheckpoints", request.page_size, request.page_token, {"job_id": request.job_id})
        self.manager.get(request.job_id)
        losses = {int(e["epoch"]): e for e in self.manager.epoch_events(request.job_id)}
        out = []
        for info in self.store.list(checkpoints_prefix(request.job_id)):
            epoch = label_epoch(checkpoint_label(info.key) or "")
            if epoch is None:  # stopped.pt: a mid-epoch state for resuming, not a checkpoint to download
                continue
            event = losses.get(epoch, {})
            out.append(trainer_pb2.Checkpoint(epoch=epoch, object_key=info.key, size_bytes=info.size,
                                              val_loss=float(event.get("val_loss", 0.0)),
                                              create_time=timestamp_from_iso(event.get("time"))))
        checkpoints, token = paginate(out, page, lambda c: (c.epoch,))
        return trainer_pb2.ListCheckpointsResponse(checkpoints=checkpoints, next_page_token=token)

    def DownloadCheckpoint(self, request, context):
        _, epoch, _ = self.jobs.epoch_of(request.job_id, request.epoch)
        data = state_to_bytes(self.jobs.weights(request.job_id, epoch))
        for start in range(0, len(data), CHUNK):
            yield trainer_pb2.DownloadCheckpointResponse(chunk=data[start:start + CHUNK])

    def DownloadArtifact(self, request, context):
        view = self.manager.get(request.job_id)
        if job_archive_prefix(request.job_id, request.path) is not None:  # tensorboard.tar.gz, eval.tar.gz
            data = job_archive(self.store, request.job_id, request.path, spec=view.record.spec,
                               create_time=view.record.create_time, epochs=self.manager.epoch_events(request.job_id),
                               state=view.state.value)
            for start in range(0, len(data), CHUNK):
                yield trainer_pb2.DownloadArtifactResponse(chunk=data[start:start + CHUNK])
            return
        for chunk in self.store.iter_chunks(artifact_key(request.job_id, request.path), CHUNK):
            yield trainer_pb2.DownloadArtifactResponse(chunk=chunk)

    def EvaluateModel(self, request, context):
        which = request.WhichOneof("model")
        if which == "checkpoint":
            record, epoch, _ = self.jobs.epoch_of(request.checkpoint.job_id, request.checkpoint.epoch)
            architecture, hp, dataset = record["architecture"], record["hyper_parameters"], record["dataset"]
            weights, job_id = self.jobs.weights(record["job_id"], epoch), record["job_id"]
        elif which == "registered_model":
            card = self.model_store.get(request.registered_model.name, request.registered_model.version)
            try:  # a seisbench:<Class> card is evaluated as its zoo architecture (same state_dict)
                architecture, hp = zoo_architecture(card)
            except (KeyError, ValueError) as exc:
                raise InvalidArgument(f"{card['architecture']} cannot be evaluated here: {exc.args[0]}") from None
            dataset = card.get("dataset", "")
            weights = load_state(self.model_store.weights(card))
            job_id = (card.get("source") or {}).get("job_id", "")
        else:
            raise InvalidArgument("give a checkpoint (job_id, epoch) or a registered model (name, version)")
        dataset = request.dataset or dataset
        if not dataset:
            raise InvalidArgument("this model was not trained here and names no dataset: give dataset")
        split = request.split or "test"
        if split not in ("train", "val", "test"):
            raise InvalidArgument(f"split must be train, val or test, got {split!r}")
        result = evaluate_weights(self.store, self.manager.catalog, Path(self.settings.cache_dir),
                                  architecture=architecture, hyper_parameters=hp, weights=weights, dataset=dataset,
                                  split=split)
        evaluation_id = uuid.uuid4().hex[:12]
        if job_id:
            prefix = evaluation_prefix(job_id, evaluation_id)
        else:  # an imported version has no job: its evaluations live beside its version
            prefix = f"{version_prefix(card['name'], int(card['version']))}eval/{evaluation_id}/"
        keys = []
        for name, png in sorted(result.plots.items()):
            self.store.put_bytes(prefix + name, png, content_type="image/png")
            keys.append(prefix + name)
        summary = {"dataset": dataset, "split": split, "windows": result.windows, "metrics": result.metrics,
                   "dataset_manifest_sha256": result.manifest_sha256}
        self.store.put_bytes(prefix + "metrics.json", json.dumps(summary, indent=1).encode(),
                             content_type="application/json")
        return trainer_pb2.EvaluateModelResponse(
            metrics=convert.metric_list(result.metrics, list(get_architecture(architecture).class_names)),
            windows=result.windows, artifact_keys=keys, evaluation_id=evaluation_id)


class RegistryServicer(trainer_pb2_grpc.ModelRegistryServiceServicer):
    def __init__(self, model_store: ModelStore, jobs: Jobs, inference_addr: str = ""):
        self.model_store = model_store
        self.jobs = jobs
        self.inference_addr = inference_addr  # asked which versions are loaded before one is deleted

    def RegisterModel(self, request, context):
        validate_name(request.name, "model name")
        saved = register_epoch(self.model_store, self.jobs.manager.scheduler.jobs, request.name,
                               request.source.job_id, request.source.epoch, list(request.aliases))
        return trainer_pb2.RegisterModelResponse(model_version=convert.model_version(saved))

    def ImportModel(self, request_iterator, context):
        header, chunks, size = None, [], 0
        for message in request_iterator:
            if message.WhichOneof("part") == "header":
                if header is not None:
                    raise InvalidArgument("the import's header comes once, in the first message")
                header = message.header
                validate_name(header.name, "model name")
            elif header is None:
                raise InvalidArgument("the first message of an import is its header")
            else:
                size += len(message.chunk)
                if size > MAX_IMPORT_BYTES:
                    raise InvalidArgument(f"the weights file is larger than {MAX_IMPORT_BYTES >> 20} MiB")
                chunks.append(message.chunk)
        if header is None:
            raise InvalidArgument("an import needs a header (name, seisbench_class, config_json) and the weights")
        data = b"".join(chunks)
        card = import_card(header.seisbench_class, header.config_json, data, header.sha256)
        saved = self.model_store.register(header.name, data, card, list(header.aliases))
        return trainer_pb2.ImportModelResponse(model_version=convert.model_version(saved))

    def ListModels(self, request, context):
        # A page of names by keyset (a model is read only when on the page); a model whose last version is
        # deleted meanwhile is left out, so a page may hold fewer than page_size models (AIP-158 allows it).
        page = page_request("ListModels", request.page_size, request.page_token)
        names, more = self.model_store.model_names(str(page.after[0]) if page.after else None, page.size)
        models = [convert.model(n, self.model_store.versions(n), self.model_store.aliases(n)) for n in names]
        token = page.token_after((names[-1],)) if more and names else ""
        return trainer_pb2.ListModelsResponse(models=[m for m in models if m.versions], next_page_token=token)

    def _model(self, name: str) -> trainer_pb2.Model:
        cards = self.model_store.versions(name)
        if not cards:
            raise NotFound(f"model {name!r} is not registered")
        return convert.model(name, cards, self.model_store.aliases(name))

    def GetModel(self, request, context):
        return trainer_pb2.GetModelResponse(model=self._model(request.name))

    def GetModelVersion(self, request, context):
        return trainer_pb2.GetModelVersionResponse(
            model_version=convert.model_version(self.model_store.get(request.name, request.version)))

    def DeleteModelVersion(self, request, context):
        if not is_number(request.version):
            raise InvalidArgument(f"version must be a number, got {request.version!r}")
        if not request.force:
            self.model_store.card(request.name, int(request.version))  # NOT_FOUND first
            users = model_version_dependants(self.model_store.registry, request.name, int(request.version),
                                             loaded_versions(self.inference_addr))
            if users:
                raise FailedPrecondition(refusal(f"model {request.name!r} version {request.version}", users))
        self.model_store.delete_version(request.name, int(request.version))
        return trainer_pb2.DeleteModelVersionResponse()

    def SetModelAlias(self, request, context):
        self.model_store.set_alias(request.name, request.alias, request.version)
        return trainer_pb2.SetModelAliasResponse(model=self._model(request.name))

    def DeleteModelAlias(self, request, context):
        self.model_store.delete_alias(request.name, request.alias)
        return trainer_pb2.DeleteModelAliasResponse(model=self._model(request.name))


def register(server: GrpcServer, settings: Settings, store: ObjectStore, db: Database) -> None:
    gpu_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    manager = TrainingJobs(store, db, settings, gpu_count=gpu_count)
    metrics.register_job_counts(manager.scheduler.jobs.counts, ("training", "sweep"))
    model_store = ModelStore(store, db)
    jobs = Jobs(store, manager)
    server.add(trainer_pb2_grpc.add_TrainerServiceServicer_to_server,
               TrainerServicer(settings, store, manager, jobs, model_store))
    server.add(trainer_pb2_grpc.add_ModelRegistryServiceServicer_to_server, RegistryServicer(model_store, jobs,
                                                                                            settings.inference_addr))
    sweeps = SweepJobs(store, db, settings, gpu_count=gpu_count)
    server.add(sweep_pb2_grpc.add_SweepServiceServicer_to_server, SweepServicer(sweeps))
    server.on_shutdown(sweeps.shutdown)
    server.on_shutdown(manager.shutdown)
    manager.start()
    sweeps.start()


DEFINITION = ServiceDefinition(
    name="trainer", grpc_port_setting="trainer_grpc_port", metrics_port_setting="trainer_metrics_port",
    health_names=("quakestack.v1.TrainerService", "quakestack.v1.ModelRegistryService", "quakestack.v1.SweepService"),
    register=register,
)
