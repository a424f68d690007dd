"""`quakestack train ...`: start, follow (live epoch table), control and evaluate training jobs."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from quakestack.cli.common import (
    MODEL_REF_HELP,
    CliError,
    Ctx,
    duration,
    fmt,
    metrics_dict,
    split_model_ref,
    state_name,
    table,
    to_dict,
)
from quakestack.cli.listing import add_job_filters, job_list_request, list_pages
from quakestack.cli.progress import ProgressBar
from quakestack.layout import TENSORBOARD_ARCHIVE, checkpoint_file_name
from quakestack.protoconv import struct_from_dict
from quakestack.v1 import trainer_pb2, trainer_pb2_grpc

# the task's main metrics, in display order: magnitude (rmse, r2), detection (f1, accuracy), classification
MAIN_METRICS = ("rmse", "r2", "f1", "f1_macro", "accuracy")
RECONNECT_S = 120.0  # how long a watch waits for the trainer to come back (a restart, a replica replaced)
EPOCH_HEADERS = ("epoch", "train loss", "val loss", "metrics", "lr", "samples/s", "ETA")


def stub(ctx: Ctx) -> trainer_pb2_grpc.TrainerServiceStub:
    return trainer_pb2_grpc.TrainerServiceStub(ctx.channel("trainer"))


def parse_hp(items: list[str] | None) -> dict[str, Any]:
    """`key=value` pairs; values parse as JSON (numbers, true/false) and fall back to text."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise CliError(f"hyper-parameter {item!r}: expected key=value")
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text
    return out


def get_job(ctx: Ctx, job_id: str) -> trainer_pb2.TrainingJob:
    return stub(ctx).GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=job_id), timeout=30).job


def start(ctx: Ctx, dataset: str, architecture: str, hyper_parameters: dict[str, Any], *, device: str = "",
          display_name: str = "", wait: bool = True, initial_model: str = "") -> trainer_pb2.TrainingJob:
    """CreateTrainingJob (fine-tuning `initial_model`, NAME@VERSION, when given); then, unless wait=False, watch
    it to its end (live epoch table)."""
    hp = struct_from_dict(hyper_parameters)
    request = trainer_pb2.CreateTrainingJobRequest(dataset=dataset, architecture=architecture, hyper_parameters=hp,
                                                   device=device, display_name=display_name)
    if initial_model:
        name, version = split_model_ref(initial_model)
        request.initial_model.CopyFrom(trainer_pb2.ModelRef(name=name, version=version))
    job = stub(ctx).CreateTrainingJob(request, timeout=60).job
    ctx.following = (f"training job {job.job_id}", f"quakestack train watch {job.job_id}")
    ctx.say(f"training job {job.job_id}: {job.architecture} on {dataset!r}, {job.epochs} epochs, "
            f"{state_name(job.state)}")
    if not wait:
        ctx.emit(to_dict(job))
        return job
    return watch(ctx, job.job_id)


def epoch_row(e: trainer_pb2.EpochMetrics) -> tuple:
    values = metrics_dict(e.metrics)
    shown = "  ".join(f"{k} {values[k]:.3f}" for k in MAIN_METRICS if k in values)
    return (e.epoch, fmt(e.train_loss, 4), fmt(e.val_loss, 4), shown, f"{e.learning_rate:.2g}",
            f"{e.samples_per_s:.0f}", duration(e.eta_s))


class EpochTable:
    """Prints the epoch table one row at a time, columns sized once from the header."""

    WIDTHS = (5, 10, 10, 30, 8, 9, 6)

    def line(self, cells: tuple) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, self.WIDTHS, strict=True)).rstrip()

    def header(self) -> str:
        return self.line(EPOCH_HEADERS) + "\n" + "  ".join("-" * w for w in self.WIDTHS)


class Reconnect:
    """Waits out a trainer that is UNAVAILABLE (restarting, a replica replaced) for up to RECONNECT_S."""

    def __init__(self, ctx: Ctx):
        self.ctx, self.gave_up_at = ctx, None

    def unavailable(self, exc: grpc.RpcError, doing: str) -> None:
        """Return to try again; re-raise anything else, or when the trainer stayed away too long."""
        if exc.code() != grpc.StatusCode.UNAVAILABLE:
            raise exc
        self.gave_up_at = self.gave_up_at or time.monotonic() + RECONNECT_S
        if time.monotonic() > self.gave_up_at:
            raise exc
        self.ctx.note(f"trainer unreachable ({exc.details()}); {doing}")
        time.sleep(1.0)

    def reached(self) -> None:
        self.gave_up_at = None


def get_job_waiting(ctx: Ctx, job_id: str) -> trainer_pb2.TrainingJob:
    """GetTrainingJob, waiting out a trainer that is restarting."""
    reconnect = Reconnect(ctx)
    while True:
        try:
            return get_job(ctx, job_id)
        except grpc.RpcError as exc:
            reconnect.unavailable(exc, "asking again")


def progress_events(ctx: Ctx, job_id: str) -> Iterator[trainer_pb2.StreamTrainingProgressResponse]:
    """StreamTrainingProgress, resumed after the last event seen when the trainer restarts or a replica goes away
    (UNAVAILABLE), for up to RECONNECT_S: a watch outlives a service restart and shows each event once."""
    after, reconnect = 0, Reconnect(ctx)
    while True:
        try:
            request = trainer_pb2.StreamTrainingProgressRequest(job_id=job_id, after_sequence=after)
            for event in stub(ctx).StreamTrainingProgress(request):
                after = event.sequence
                reconnect.reached()
                yield event
            return
        except grpc.RpcError as exc:
            reconnect.unavailable(exc, f"following again from event {after}")


def watch(ctx: Ctx, job_id: str) -> trainer_pb2.TrainingJob:
    """Follow StreamTrainingProgress: a live bar over the epochs and one table row per epoch.

    With --json every event is one JSON line. Raises CliError when the job ends FAILED or CANCELLED.
    """
    job = get_job_waiting(ctx, job_id)
    ctx.following = (f"training job {job_id}", f"quakestack train watch {job_id}")
    total = job.epochs
    bar = ProgressBar("train", ctx.stderr, enabled=not ctx.quiet and not ctx.as_json)
    tbl = EpochTable()
    ctx.say(tbl.header())
    last_state = state_name(job.state)
    try:
        for event in progress_events(ctx, job_id):
            ctx.emit(to_dict(event))
            if event.WhichOneof("event") == "epoch":
                e = event.epoch
                if bar.tty:
                    bar.clear()
                ctx.say(tbl.line(epoch_row(e)))
                total = max(total, e.epoch)
                bar.update(e.epoch, total, f"epoch {e.epoch}/{total}  ETA {duration(e.eta_s)}", force=True)
            else:
                change = event.state_change
                last_state = state_name(change.state)
                bar.update(0 if last_state in {"QUEUED"} else bar.done, total, last_state.lower(), force=True)
                if last_state in {"FAILED", "CANCELLED"} and change.message:
                    ctx.note(f"{last_state}: {change.message}")
    finally:
        bar.close()
    ctx.following = None
    job = get_job_waiting(ctx, job_id)
    state = state_name(job.state)
    if state in {"FAILED", "CANCELLED"}:
        raise CliError(f"training job {job_id} {state}" + (f": {job.error}" if job.error else ""))
    ctx.say(f"job {job_id} {state}: {job.epochs_done}/{job.epochs} epochs, best epoch {job.best_epoch}")
    return job


def list_jobs(ctx: Ctx, args: argparse.Namespace) -> list[trainer_pb2.TrainingJob]:
    request = job_list_request(trainer_pb2.ListTrainingJobsRequest(), args)
    jobs = list_pages(ctx, stub(ctx).ListTrainingJobs, request, args)
    ctx.emit([to_dict(j) for j in jobs])
    rows = [(j.job_id, j.dataset, j.architecture, state_name(j.state), f"{j.epochs_done}/{j.epochs}",
             j.best_epoch or "-", fmt(j.latest.val_loss if j.epochs_done else None, 4),
             j.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")) for j in jobs]
    ctx.say(table(rows, ("job", "dataset", "architecture", "state", "epochs", "best", "val loss", "created")))
    return jobs


def _show(ctx: Ctx, verb: str, job: trainer_pb2.TrainingJob) -> trainer_pb2.TrainingJob:
    ctx.emit(to_dict(job))
    ctx.say(f"job {job.job_id} {verb}: {state_name(job.state)}, {job.epochs_done}/{job.epochs} epochs")
    return job


def update(ctx: Ctx, job_id: str, epochs: int) -> trainer_pb2.TrainingJob:
    job = _show(ctx, "updated", stub(ctx).UpdateTrainingJob(
        trainer_pb2.UpdateTrainingJobRequest(job_id=job_id, epochs=epochs), timeout=30).job)
    if job.epochs != epochs:
        ctx.say(f"  {job.epochs_done} epochs are done already: it ends after the epoch in progress (epoch "
                f"{job.epochs}, or a later one if its worker is past it before it reads the change)")
    return job


def stop(ctx: Ctx, job_id: str, cancel: bool = False) -> trainer_pb2.TrainingJob:
    if cancel:
        return _show(ctx, "cancelled", stub(ctx).CancelTrainingJob(
            trainer_pb2.CancelTrainingJobRequest(job_id=job_id), timeout=30).job)
    return _show(ctx, "stopping", stub(ctx).StopTrainingJob(
        trainer_pb2.StopTrainingJobRequest(job_id=job_id), timeout=30).job)


def resume(ctx: Ctx, job_id: str, epochs: int = 0, *, wait: bool = False) -> trainer_pb2.TrainingJob:
    job = _show(ctx, "resumed", stub(ctx).ResumeTrainingJob(
        trainer_pb2.ResumeTrainingJobRequest(job_id=job_id, epochs=epochs), timeout=30).job)
    return watch(ctx, job_id) if wait else job


def _write_stream(chunks, target: Path) -> tuple[int, str]:
    """Write a stream of chunk messages to target atomically (a .part file renamed at the end)."""
    import hashlib

    digest, size = hashlib.sha256(), 0
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        with part.open("wb") as f:
            for c in chunks:
                f.write(c.chunk)
                digest.update(c.chunk)
                size += len(c.chunk)
        part.replace(target)
    finally:
        part.unlink(missing_ok=True)
    return size, digest.hexdigest()


def download(ctx: Ctx, job_id: str, *, epoch: int = 0, artifact: str = "", out: Path | None = None) -> Path:
    """A checkpoint's weights (a plain state_dict; `epoch` 0: the best) or one evaluation artifact, as a file."""
    if artifact:
        target = out or Path(artifact.rsplit("/", 1)[-1])
        chunks = stub(ctx).DownloadArtifact(trainer_pb2.DownloadArtifactRequest(job_id=job_id, path=artifact),
                                            timeout=600)
    else:
        if epoch < 0:
            raise CliError(f"--epoch must be >= 1 (or omitted for the best epoch), got {epoch}")
        if not epoch:
            job = get_job(ctx, job_id)
            epoch = job.best_epoch or job.epochs_done
            if not epoch:
                raise CliError(f"training job {job_id} has no checkpoint yet")
        target = out or Path(checkpoint_file_name(job_id, epoch))
        chunks = stub(ctx).DownloadCheckpoint(trainer_pb2.DownloadCheckpointRequest(job_id=job_id, epoch=epoch),
                                              timeout=600)
    if target.is_dir():
        target = target / (artifact.rsplit("/", 1)[-1] if artifact else checkpoint_file_name(job_id, epoch))
    size, sha256 = _write_stream(chunks, target)
    ctx.emit({"path": str(target), "sizeBytes": size, "sha256": sha256, "jobId": job_id,
              **({"artifact": artifact} if artifact else {"epoch": epoch})})
    ctx.say(f"wrote {target} ({size} bytes, sha256 {sha256})")
    return target


def download_artifacts(ctx: Ctx, keys: list[str], out_dir: Path) -> list[Path]:
    """Fetch evaluation artifacts (`jobs/<job-id>/eval/...` keys) into out_dir through the trainer."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for key in keys:
        _, job_id, path = key.split("/", 2)
        target = out_dir / key.rsplit("/", 1)[-1]
        chunks = stub(ctx).DownloadArtifact(trainer_pb2.DownloadArtifactRequest(job_id=job_id, path=path), timeout=120)
        target.write_bytes(b"".join(c.chunk for c in chunks))
        paths.append(target)
    return paths


def tensorboard(ctx: Ctx, job_ids: list[str], out_dir: Path) -> list[Path]:
    """Each job's TensorBoard event files (DownloadArtifact `tensorboard.tar.gz`) extracted into out_dir/<job-id>/,
    one run per job, so that `tensorboard --logdir out_dir` shows and compares them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for job_id in job_ids:
        chunks = stub(ctx).DownloadArtifact(trainer_pb2.DownloadArtifactRequest(job_id=job_id,
                                                                               path=TENSORBOARD_ARCHIVE), timeout=600)
        files = extract_tar_gz(b"".join(c.chunk for c in chunks), out_dir)
        written += files
        ctx.say(f"job {job_id}: {len(files)} event file(s) in {out_dir / job_id}")
    ctx.emit({"logdir": str(out_dir), "files": [str(f) for f in written]})
    ctx.say(f"tensorboard --logdir {out_dir}")
    return written


def extract_tar_gz(data: bytes, out_dir: Path) -> list[Path]:
    """Extract a downloaded archive's regular files under out_dir, refusing any member that would land outside it."""
    import io
    import tarfile

    root, written = out_dir.resolve(), []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            target = (root / member.name).resolve()
            if not member.isfile() or root not in target.parents:
                raise CliError(f"the archive holds {member.name!r}, which is not a file inside {out_dir}")
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            target.write_bytes(source.read() if source else b"")
            written.append(target)
    return written


def evaluate(ctx: Ctx, *, job_id: str = "", epoch: int = 0, model: str = "", version: str = "", dataset: str = "",
             split: str = "test", out_dir: Path | None = None) -> tuple[trainer_pb2.EvaluateModelResponse, list[Path]]:
    """EvaluateModel on a job's checkpoint or a registered model; prints metrics, optionally downloads plots."""
    request = trainer_pb2.EvaluateModelRequest(dataset=dataset, split=split)
    if model:
        request.registered_model.CopyFrom(trainer_pb2.ModelRef(name=model, version=version))
    elif job_id:
        request.checkpoint.CopyFrom(trainer_pb2.CheckpointRef(job_id=job_id, epoch=epoch))
    else:
        raise CliError("give a job id or --model")
    response = stub(ctx).EvaluateModel(request, timeout=600)
    paths = download_artifacts(ctx, list(response.artifact_keys), out_dir) if out_dir else []
    ctx.emit({**to_dict(response), "downloaded": [str(p) for p in paths]})
    ctx.say(f"evaluation {response.evaluation_id} on {response.windows} {split} windows")
    rows = [(m.name, fmt(m.value, 4)) for m in response.metrics if not m.values]
    ctx.say(table(rows, ("metric", "value")))
    for m in response.metrics:
        if m.values and m.labels:
            n = len(m.labels)
            ctx.say(f"{m.name} (rows: true, columns: predicted)")
            ctx.say(table([(m.labels[i], *[int(v) for v in m.values[i * n:(i + 1) * n]]) for i in range(n)],
                          ("", *m.labels)))
    for key in response.artifact_keys:
        ctx.say(f"artifact {key}")
    for path in paths:
        ctx.say(f"plot {path}")
    return response, paths


# -- argparse ----------------------------------------------------------------------------------
def cmd_start(ctx: Ctx, a: argparse.Namespace) -> int:
    hp = parse_hp(a.hp)
    if a.epochs is not None:  # given: always sent, so that 0 is refused by the server, never replaced
        hp["epochs"] = a.epochs
    if not a.arch and not a.initial_model:
        raise CliError("give --arch, or --initial-model to fine-tune a registered version")
    start(ctx, a.dataset, a.arch or "", hp, device=a.device, display_name=a.display_name, wait=not a.no_wait,
          initial_model=a.initial_model)
    return 0


def compare(ctx: Ctx, refs: list[str], dataset: str, split: str = "test") -> list[dict[str, Any]]:
    """EvaluateModel for several registered models on one dataset, and one table of the benchmark tasks
    (Münchmeyer et al. 2022) for pickers, of the main metrics otherwise."""
    rows = []
    for ref in refs:
        name, version = split_model_ref(ref)
        response = stub(ctx).EvaluateModel(trainer_pb2.EvaluateModelRequest(
            registered_model=trainer_pb2.ModelRef(name=name, version=version), dataset=dataset, split=split),
            timeout=600)
        rows.append({"model": ref, "windows": response.windows, "evaluation_id": response.evaluation_id,
                     **{m.name: m.value for m in response.metrics if not m.values}})
    ctx.emit(rows)
    columns = [c for c in COMPARE_COLUMNS if any(c in r for r in rows)] or sorted(
        {k for r in rows for k in r} - {"model", "windows", "evaluation_id"})[:8]
    ctx.say(f"{dataset or 'each model on its own dataset'} / {split}")
    ctx.say(table([(r["model"], r["windows"], *(fmt(r.get(c, float("nan")), 3) for c in columns)) for r in rows],
                  ("model", "windows", *columns)))
    return rows


COMPARE_COLUMNS = ("detection_auc", "detection_mcc", "phase_mcc", "onset_mae_s", "p_onset_mae_s", "s_onset_mae_s",
                   "p_onset_within_0_1s", "s_onset_within_0_1s")


def cmd_eval(ctx: Ctx, a: argparse.Namespace) -> int:
    models = a.model or []
    if len(models) > 1:
        if a.job_id:
            raise CliError("give a job id or --model, not both")
        compare(ctx, models, a.dataset, a.split)
        return 0
    model, version = split_model_ref(models[0] if models else "")
    evaluate(ctx, job_id=a.job_id or "", epoch=a.epoch, model=model, version=version, dataset=a.dataset,
             split=a.split, out_dir=Path(a.out) if a.out else None)
    return 0


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    train = sub.add_parser("train", help="training jobs: start, list, watch, control, evaluate")
    tsub = train.add_subparsers(dest="train_command", required=True)
    p = tsub.add_parser("start", parents=[common], help="start a training job and watch it")
    p.add_argument("--dataset", required=True)
    p.add_argument("--arch", default="", help="architecture (see ListArchitectures)")
    p.add_argument("--hp", nargs="*", metavar="KEY=VALUE", help="hyper-parameters, e.g. learning_rate=0.01")
    p.add_argument("--epochs", type=int, default=None, help="shortcut for --hp epochs=N (default: the "
                   "architecture's)")
    p.add_argument("--device", default="", help="auto (default), cpu or cuda:N")
    p.add_argument("--display-name", default="")
    p.add_argument("--no-wait", action="store_true", help="return once the job is queued")
    p.add_argument("--initial-model", default="", metavar="NAME@VERSION",
                   help="fine-tune this registered version (e.g. an imported SeisBench PhaseNet): its weights start "
                   "the job and its model_args are the job's; --arch may then be omitted. Fine-tuning "
                   "hyper-parameters: freeze=none|encoder, pretrained_lr_factor=F (the head keeps learning_rate)")
    p.set_defaults(func=cmd_start)
    p = tsub.add_parser("ls", parents=[common], help="list training jobs, newest first")
    add_job_filters(p, dataset=True, architecture=True)
    p.set_defaults(func=lambda ctx, a: list_jobs(ctx, a))
    p = tsub.add_parser("watch", parents=[common], help="live progress and the per-epoch table")
    p.add_argument("job_id")
    p.set_defaults(func=lambda ctx, a: watch(ctx, a.job_id))
    p = tsub.add_parser("update", parents=[common], help="change a running job's epoch count")
    p.add_argument("job_id")
    p.add_argument("--epochs", type=int, required=True)
    p.set_defaults(func=lambda ctx, a: update(ctx, a.job_id, a.epochs))
    p = tsub.add_parser("stop", parents=[common], help="stop gracefully (checkpoint; resumable)")
    p.add_argument("job_id")
    p.add_argument("--cancel", action="store_true", help="cancel at once instead (not resumable)")
    p.set_defaults(func=lambda ctx, a: stop(ctx, a.job_id, a.cancel))
    p = tsub.add_parser("cancel", parents=[common], help="cancel at once (not resumable; same as stop --cancel)")
    p.add_argument("job_id")
    p.set_defaults(func=lambda ctx, a: stop(ctx, a.job_id, cancel=True))
    p = tsub.add_parser("resume", parents=[common], help="continue a stopped job from its last checkpoint")
    p.add_argument("job_id")
    p.add_argument("--epochs", type=int, default=0, help="new total epoch count")
    p.add_argument("--watch", action="store_true", help="follow it afterwards")
    p.set_defaults(func=lambda ctx, a: resume(ctx, a.job_id, a.epochs, wait=a.watch))
    p = tsub.add_parser("download", parents=[common], help="download a checkpoint (or --artifact) as a file")
    p.add_argument("job_id")
    p.add_argument("--epoch", type=int, default=0, help="checkpoint epoch (default: the best)")
    p.add_argument("--artifact", default="", help="an evaluation artifact instead, e.g. eval/<id>/residuals.png")
    p.add_argument("--out", "-o", help="file or folder to write (default: JOB-epoch-NNNN.pt / the artifact's name)")
    p.set_defaults(func=lambda ctx, a: download(ctx, a.job_id, epoch=a.epoch, artifact=a.artifact,
                                                out=Path(a.out) if a.out else None) and 0)
    p = tsub.add_parser("tensorboard", parents=[common], help="download jobs' TensorBoard event files for "
                        "`tensorboard --logdir DIR`",
                        description="Extracts each job's event files (scalars per epoch: losses, the task's metrics, "
                        "learning rate, samples/s; its hyper-parameters for the HParams dashboard) into DIR/<job-id>/; "
                        "several jobs in one DIR are compared side by side. The files are rebuilt from the job's "
                        "stored epochs, each epoch once, however often its worker was retried or resumed.")
    p.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    p.add_argument("--out", "-o", required=True, help="the log directory to extract into (created if missing)")
    p.set_defaults(func=lambda ctx, a: tensorboard(ctx, a.job_ids, Path(a.out)) and 0)
    p = tsub.add_parser("eval", parents=[common], help="evaluate a checkpoint or registered model")
    p.add_argument("job_id", nargs="?", help="job whose checkpoint to evaluate")
    p.add_argument("--epoch", type=int, default=0, help="checkpoint epoch (default: best)")
    p.add_argument("--model", action="append", help=f"a registered model instead of a job: {MODEL_REF_HELP}; "
                   "repeat it to compare several on one --dataset in one table (for pickers: the benchmark tasks "
                   "of Münchmeyer et al. 2022 — detection AUC/MCC, phase MCC, onset residuals in seconds)")
    p.add_argument("--dataset", default="", help="default: the training dataset")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--out", help="download the PNG plots into this folder")
    p.set_defaults(func=cmd_eval)
