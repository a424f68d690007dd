"""quakestack's records for an export, read through the public gRPC API (TrainerService, ModelRegistryService and
SweepService), so an export needs a caller's token and nothing more: no database or bucket credentials."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from quakestack.jsonmap import message_json, whole_numbers_as_ints
from quakestack.protoconv import dict_from_struct
from quakestack.tracking.records import Epoch, Job, Sweep, Trial, Version
from quakestack.tracking.tensorboard import epoch_scalars
from quakestack.v1 import common_pb2, trainer_pb2, trainer_pb2_grpc

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "STOPPED"}
PAGE = 1000
TIMEOUT_S = 120


def millis(ts: Timestamp) -> int:
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def state_name(value: int) -> str:
    return common_pb2.JobState.Name(value).removeprefix("JOB_STATE_")


def epoch_record(e: trainer_pb2.EpochMetrics) -> Epoch:
    """An EpochMetrics as the same scalars the job's TensorBoard file holds (tracking.tensorboard.epoch_scalars)."""
    event = {"train_loss": e.train_loss, "val_loss": e.val_loss, "learning_rate": e.learning_rate,
             "samples_per_s": e.samples_per_s, "metrics": {m.name: m.value for m in e.metrics if not m.values}}
    return Epoch(epoch=e.epoch, time_ms=millis(e.time), scalars=epoch_scalars(event))


class GrpcSource:
    """The records of one quakestack deployment, read over a channel to its trainer."""

    def __init__(self, trainer: grpc.Channel):
        self.channel = trainer
        self.trainer = trainer_pb2_grpc.TrainerServiceStub(trainer)
        self.registry = trainer_pb2_grpc.ModelRegistryServiceStub(trainer)

    # -- jobs -------------------------------------------------------------------------------------
    def job_ids(self) -> list[str]:
        ids, token = [], ""
        while True:
            answer = self.trainer.ListTrainingJobs(trainer_pb2.ListTrainingJobsRequest(page_size=PAGE,
                                                                                       page_token=token),
                                                   timeout=TIMEOUT_S)
            ids += [j.job_id for j in answer.jobs]
            token = answer.next_page_token
            if not token:
                return ids[::-1]  # oldest first: runs are created in the order the jobs were

    def job(self, job_id: str) -> Job:
        try:
            job = self.trainer.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=job_id), timeout=TIMEOUT_S).job
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise LookupError(f"training job {job_id} not found") from None
            raise
        state = state_name(job.state)
        return Job(job_id=job.job_id, display_name=job.display_name, dataset=job.dataset,
                   dataset_manifest_sha256=job.dataset_manifest_sha256, architecture=job.architecture,
                   device=job.device, state=state, create_time_ms=millis(job.create_time),
                   update_time_ms=millis(job.update_time), epochs_done=job.epochs_done, best_epoch=job.best_epoch,
                   error=job.error, hyper_parameters=whole_numbers_as_ints(dict_from_struct(job.hyper_parameters)),
                   epochs=self._epochs(job_id, job.epochs_done, state in TERMINAL))

    def _epochs(self, job_id: str, done: int, terminal: bool) -> list[Epoch]:
        """The job's epochs from its progress stream: the whole history of an ended job; the `done` epochs of one
        that still runs (the stream would go on with live events)."""
        if not done:
            return []
        call = self.trainer.StreamTrainingProgress(trainer_pb2.StreamTrainingProgressRequest(job_id=job_id),
                                                   timeout=TIMEOUT_S)
        epochs: dict[int, Epoch] = {}
        try:
            for event in call:
                if event.WhichOneof("event") == "epoch":
                    epochs[event.epoch.epoch] = epoch_record(event.epoch)
                    if not terminal and len(epochs) >= done:
                        break
        finally:
            call.cancel()
        return [epochs[k] for k in sorted(epochs)]

    def job_archive(self, job_id: str, name: str) -> bytes:
        chunks = self.trainer.DownloadArtifact(trainer_pb2.DownloadArtifactRequest(job_id=job_id, path=name),
                                               timeout=600)
        return b"".join(c.chunk for c in chunks)

    # -- registered models --------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        names, token = [], ""
        while True:
            answer = self.registry.ListModels(trainer_pb2.ListModelsRequest(page_size=PAGE, page_token=token),
                                              timeout=TIMEOUT_S)
            names += [m.name for m in answer.models]
            token = answer.next_page_token
            if not token:
                return names

    def versions(self, name: str) -> list[Version]:
        model = self.registry.GetModel(trainer_pb2.GetModelRequest(name=name), timeout=TIMEOUT_S).model
        by_version: dict[int, list[str]] = {}
        for alias, version in sorted(model.aliases.items()):
            by_version.setdefault(int(version), []).append(alias)
        return [Version(name=name, version=int(v.version), job_id=v.source.job_id, epoch=v.source.epoch,
                        architecture=v.architecture, dataset=v.dataset,
                        metrics={m.name: m.value for m in v.metrics if not m.values}, card=message_json(v),
                        create_time_ms=millis(v.create_time), aliases=by_version.get(int(v.version), []))
                for v in model.versions]

    def weights(self, version: Version) -> bytes | None:
        """The version's weights (the state_dict of its job's epoch, as registered); None when that checkpoint is
        gone."""
        try:
            chunks = self.trainer.DownloadCheckpoint(trainer_pb2.DownloadCheckpointRequest(
                job_id=version.job_id, epoch=version.epoch), timeout=600)
            return b"".join(c.chunk for c in chunks)
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                return None
            raise

    # -- sweeps (SweepService) -----------------------------------------------------------------------
    def _sweeps(self) -> Any:
        from quakestack.v1 import sweep_pb2_grpc

        return sweep_pb2_grpc.SweepServiceStub(self.channel)

    def sweep_ids(self) -> list[str]:
        """Every sweep; none where the trainer serves no SweepService (an older deployment)."""
        from quakestack.v1 import sweep_pb2

        found: list[tuple[int, str]] = []
        token = ""
        while True:
            try:
                answer = self._sweeps().ListSweeps(sweep_pb2.ListSweepsRequest(page_size=PAGE, page_token=token),
                                                   timeout=TIMEOUT_S)
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    return []
                raise
            found += [(millis(s.create_time), s.sweep_id) for s in answer.sweeps]
            token = answer.next_page_token
            if not token:
                return [sweep_id for _, sweep_id in sorted(found)]  # oldest first, as the jobs

    def sweep(self, sweep_id: str) -> Sweep:
        from quakestack.v1 import sweep_pb2

        try:
            s = self._sweeps().GetSweep(sweep_pb2.GetSweepRequest(sweep_id=sweep_id), timeout=TIMEOUT_S).sweep
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise LookupError(f"sweep {sweep_id} not found") from None
            raise
        settings: dict[str, Any] = {
            "sampler": sweep_pb2.SweepSampler.Name(s.sampler).removeprefix("SWEEP_SAMPLER_").lower(),
            "pruner": sweep_pb2.SweepPruner.Name(s.pruner).removeprefix("SWEEP_PRUNER_").lower(),
            "parallel_trials": s.parallel_trials, "max_trials": s.max_trials, "max_failures": s.max_failures,
            "time_budget_s": s.time_budget_s, "seed": s.seed, "objective": s.objective.metric,
            "direction": _direction(s.objective.direction),
            "search_space": [message_json(p) for p in s.search_space],
            **{f"fixed.{k}": v for k, v in whole_numbers_as_ints(dict_from_struct(s.hyper_parameters)).items()}}
        if s.objective.HasField("target"):
            settings["target"] = s.objective.target
        trials = [Trial(number=t.number, job_id=t.job_id,
                        state=sweep_pb2.TrialState.Name(t.state).removeprefix("TRIAL_STATE_"),
                        parameters=whole_numbers_as_ints(dict_from_struct(t.parameters)),
                        value=t.value if t.HasField("value") else None) for t in s.trials]
        best = s.best_trial.number if s.HasField("best_trial") and s.best_trial.job_id else None
        return Sweep(sweep_id=s.sweep_id, display_name=s.display_name, dataset=s.dataset, architecture=s.architecture,
                     objective_metric=s.objective.metric, objective_direction=_direction(s.objective.direction),
                     state=state_name(s.state), create_time_ms=millis(s.create_time),
                     update_time_ms=millis(s.update_time), settings=settings, trials=trials, best_trial=best,
                     importances=dict(s.importances))


def _direction(value: int) -> str:
    from quakestack.v1 import sweep_pb2

    return sweep_pb2.ObjectiveDirection.Name(value).removeprefix("OBJECTIVE_DIRECTION_")

