"""`quakestack models ...`: the registry (list, register, aliases) and the inference service's resident models."""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterator
from pathlib import Path

from quakestack.cli.common import MODEL_REF_HELP, Ctx, metrics_dict, split_model_ref, table, to_dict
from quakestack.pagination import all_pages
from quakestack.v1 import common_pb2, inference_pb2, inference_pb2_grpc, trainer_pb2, trainer_pb2_grpc


def registry(ctx: Ctx) -> trainer_pb2_grpc.ModelRegistryServiceStub:
    return trainer_pb2_grpc.ModelRegistryServiceStub(ctx.channel("trainer"))


def inference(ctx: Ctx) -> inference_pb2_grpc.InferenceServiceStub:
    return inference_pb2_grpc.InferenceServiceStub(ctx.channel("inference"))


def task_name(value: int) -> str:
    return common_pb2.Task.Name(value).removeprefix("TASK_").lower()


def _version_row(v: trainer_pb2.ModelVersion) -> tuple:
    m = metrics_dict(v.metrics)
    shown = "  ".join(f"{k} {m[k]:.3f}" for k in ("rmse", "r2", "f1", "accuracy") if k in m)
    return (v.name, v.version, v.architecture, task_name(v.task), v.dataset, f"{v.source.job_id[:12]}@{v.source.epoch}",
            shown, ",".join(v.aliases))


def list_models(ctx: Ctx, loaded: bool = False) -> list:
    """Registered models with every version, or (loaded=True) the inference service's resident models."""
    if loaded:
        models = list(all_pages(inference(ctx).ListLoadedModels, inference_pb2.ListLoadedModelsRequest(), "models",
                                timeout=30))
        ctx.emit([to_dict(m) for m in models])
        rows = [(m.name, m.version, task_name(m.task), m.device, m.input_spec.n_samples,
                 f"{m.input_spec.sampling_rate_hz:g}", m.input_spec.component_order, m.windows_served,
                 f"{m.memory_bytes / 2**20:.1f} MB") for m in models]
        ctx.say(table(rows, ("name", "version", "task", "device", "samples", "Hz", "comp", "windows", "memory")))
        return models
    models = list(all_pages(registry(ctx).ListModels, trainer_pb2.ListModelsRequest(), "models", timeout=30))
    ctx.emit([to_dict(m) for m in models])
    rows = [_version_row(v) for m in models for v in m.versions]
    ctx.say(table(rows, ("name", "version", "architecture", "task", "dataset", "source", "metrics", "aliases")))
    return models


def register(ctx: Ctx, name: str, job_id: str, epoch: int = 0, aliases: list[str] | None = None
             ) -> trainer_pb2.ModelVersion:
    """Register a job's checkpoint (its best epoch unless given) as a new version."""
    version = registry(ctx).RegisterModel(trainer_pb2.RegisterModelRequest(
        name=name, source=trainer_pb2.CheckpointRef(job_id=job_id, epoch=epoch), aliases=aliases or []),
        timeout=60).model_version
    ctx.emit(to_dict(version))
    alias_text = f" (aliases: {', '.join(version.aliases)})" if version.aliases else ""
    ctx.say(f"registered {version.name} version {version.version} from job {job_id} epoch "
            f"{version.source.epoch}{alias_text}")
    return version


def set_alias(ctx: Ctx, name: str, alias: str, version: int = 0, delete: bool = False) -> trainer_pb2.Model:
    if delete:
        model = registry(ctx).DeleteModelAlias(trainer_pb2.DeleteModelAliasRequest(name=name, alias=alias),
                                               timeout=30).model
    else:
        model = registry(ctx).SetModelAlias(trainer_pb2.SetModelAliasRequest(name=name, alias=alias,
                                                                             version=version), timeout=30).model
    ctx.emit(to_dict(model))
    shown = ", ".join(f"{a} -> {v}" for a, v in sorted(model.aliases.items())) or "none"
    ctx.say(f"{name} aliases: {shown}")
    return model


def delete_version(ctx: Ctx, name: str, version: str, force: bool = False) -> None:
    """DeleteModelVersion; refused (with the list) while aliases point at it or it is loaded, unless forced."""
    registry(ctx).DeleteModelVersion(trainer_pb2.DeleteModelVersionRequest(name=name, version=version, force=force),
                                     timeout=60)
    ctx.emit({"name": name, "version": version, "deleted": True})
    ctx.say(f"deleted {name} version {version}")


def load(ctx: Ctx, name: str, version: str = "", device: str = "", max_batch_size: int = 0
         ) -> inference_pb2.LoadedModel:
    model = inference(ctx).LoadModel(inference_pb2.LoadModelRequest(
        name=name, version=version, device=device, max_batch_size=max_batch_size), timeout=300).model
    ctx.emit(to_dict(model))
    ctx.say(f"loaded {model.name} version {model.version} on {model.device} ({task_name(model.task)}, "
            f"{model.input_spec.n_samples} samples at {model.input_spec.sampling_rate_hz:g} Hz, "
            f"{model.input_spec.component_order})")
    return model


def unload(ctx: Ctx, name: str) -> None:
    inference(ctx).UnloadModel(inference_pb2.UnloadModelRequest(name=name), timeout=60)
    ctx.emit({"name": name, "unloaded": True})
    ctx.say(f"unloaded {name}")


def export(ctx: Ctx, ref: str, fmt: str, repo: str, max_batch_size: int = 0) -> inference_pb2.ExportModelResponse:
    """ExportModel, then write the entry into a local Triton model repository (each file checked by sha256)."""
    name, version = split_model_ref(ref)
    reply = inference(ctx).ExportModel(inference_pb2.ExportModelRequest(
        name=name, version=version, format=fmt, max_batch_size=max_batch_size), timeout=600)
    root = Path(repo).resolve()
    written = []
    for f in reply.files:
        target = (root / f.path).resolve()
        if root not in target.parents or hashlib.sha256(f.content).hexdigest() != f.sha256:
            raise SystemExit(f"refusing exported file {f.path!r}: outside {root} or corrupted")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(f.content)
        partial.replace(target)
        written.append(str(target))
    ctx.emit({"name": reply.name, "version": reply.version, "format": reply.format, "files": written})
    ctx.say(f"exported {reply.name} version {reply.version} ({reply.format}) to {root}:\n  " + "\n  ".join(written))
    return reply


IMPORT_CHUNK = 1 << 20


def import_requests(name: str, seisbench_class: str, config_json: str, weights: bytes, sha256: str = "",
                    aliases: list[str] | None = None) -> Iterator[trainer_pb2.ImportModelRequest]:
    """ImportModel's stream: the header, then the weights in 1 MiB chunks."""
    yield trainer_pb2.ImportModelRequest(header=trainer_pb2.ImportModelHeader(
        name=name, seisbench_class=seisbench_class, config_json=config_json, sha256=sha256, aliases=aliases or []))
    for start in range(0, len(weights), IMPORT_CHUNK):
        yield trainer_pb2.ImportModelRequest(chunk=weights[start:start + IMPORT_CHUNK])


def import_seisbench(ctx: Ctx, name: str, config_path: Path, weights_path: Path, seisbench_class: str,
                     aliases: list[str] | None = None) -> trainer_pb2.ModelVersion:
    """Import SeisBench's `save` output (NAME.json + NAME.pt) as a new version of `name` (its sha256 checked)."""
    weights = weights_path.read_bytes()
    digest = hashlib.sha256(weights).hexdigest()
    version = registry(ctx).ImportModel(import_requests(name, seisbench_class, config_path.read_text(), weights,
                                                        digest, aliases), timeout=600).model_version
    ctx.emit(to_dict(version))
    ctx.say(f"imported {version.name} version {version.version}: {version.architecture}, "
            f"{version.input_spec.n_samples} samples at {version.input_spec.sampling_rate_hz:g} Hz, "
            f"weights sha256 {digest[:16]}")
    return version


def export_seisbench(ctx: Ctx, ref: str, out_dir: Path) -> list[Path]:
    """A seisbench:<Class> version as SeisBench's own files: `sbm.<Class>.load(out_dir / name)` opens it."""
    name, version = split_model_ref(ref)
    reply = inference(ctx).ExportModel(inference_pb2.ExportModelRequest(name=name, version=version,
                                                                        format="seisbench"), timeout=600)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for f in reply.files:
        target = out_dir / Path(f.path).name
        if hashlib.sha256(f.content).hexdigest() != f.sha256:
            raise SystemExit(f"refusing exported file {f.path!r}: corrupted")
        target.write_bytes(f.content)
        written.append(target)
    ctx.emit({"name": reply.name, "version": reply.version, "format": "seisbench", "files": [str(p) for p in written]})
    ctx.say(f"exported {reply.name} version {reply.version} for SeisBench: "
            f"seisbench.models.{{Class}}.load({str(out_dir / reply.name)!r})\n  " + "\n  ".join(map(str, written)))
    return written


def loaded_model(ctx: Ctx, name: str) -> inference_pb2.LoadedModel | None:
    for m in all_pages(inference(ctx).ListLoadedModels, inference_pb2.ListLoadedModelsRequest(), "models", timeout=30):
        if m.name == name:
            return m
    return None


def cmd_export(ctx: Ctx, a: argparse.Namespace) -> int:
    if a.format == "seisbench":
        if not a.out:
            raise SystemExit("--format seisbench needs --out DIR")
        export_seisbench(ctx, a.name, Path(a.out))
        return 0
    if not a.triton_repo:
        raise SystemExit("--format onnx needs --triton-repo DIR")
    export(ctx, a.name, a.format, a.triton_repo, a.max_batch_size)
    return 0


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    models = sub.add_parser("models", help="model registry and loaded models")
    msub = models.add_subparsers(dest="models_command", required=True)
    p = msub.add_parser("ls", parents=[common], help="registered models (or --loaded: resident ones)")
    p.add_argument("--loaded", action="store_true", help="models resident in the inference service")
    p.set_defaults(func=lambda ctx, a: list_models(ctx, a.loaded))
    p = msub.add_parser("register", parents=[common], help="register a job's checkpoint as a new version")
    p.add_argument("name")
    p.add_argument("--job", required=True)
    p.add_argument("--epoch", type=int, default=0, help="default: the best epoch")
    p.add_argument("--alias", action="append", default=[], help="alias for the new version (repeatable)")
    p.set_defaults(func=lambda ctx, a: register(ctx, a.name, a.job, a.epoch, a.alias))
    p = msub.add_parser("alias", parents=[common], help="point an alias at a version (or --delete it)")
    p.add_argument("name")
    p.add_argument("alias")
    p.add_argument("version", type=int, nargs="?", default=0)
    p.add_argument("--delete", action="store_true")
    p.set_defaults(func=lambda ctx, a: set_alias(ctx, a.name, a.alias, a.version, a.delete))
    p = msub.add_parser("rm", parents=[common], help="delete a version (refused while aliased or loaded)")
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--force", action="store_true", help="delete even if aliases point at it or it is loaded")
    p.set_defaults(func=lambda ctx, a: delete_version(ctx, a.name, a.version, a.force))
    p = msub.add_parser("load", parents=[common], help="load a version into the inference service")
    p.add_argument("name")
    p.add_argument("--version", default="", help="number or alias (default: latest)")
    p.add_argument("--device", default="")
    p.add_argument("--max-batch-size", type=int, default=0)
    p.set_defaults(func=lambda ctx, a: load(ctx, a.name, a.version, a.device, a.max_batch_size))
    p = msub.add_parser("export", parents=[common],
                        help="export a version as a Triton/KServe model-repository entry (ONNX)")
    p.add_argument("name", help=MODEL_REF_HELP)
    p.add_argument("--format", default="onnx", choices=["onnx", "seisbench"],
                   help="onnx: a Triton/KServe entry; seisbench: a seisbench:<Class> version as SeisBench's save "
                   "writes it (NAME.json + NAME.pt), to open with seisbench.models.<Class>.load(DIR/NAME)")
    p.add_argument("--triton-repo", help="model repository directory to write into (onnx)")
    p.add_argument("--out", "-o", help="directory to write NAME.json and NAME.pt into (seisbench)")
    p.add_argument("--max-batch-size", type=int, default=0, help="config.pbtxt max_batch_size (default 32)")
    p.set_defaults(func=cmd_export)
    p = msub.add_parser("import", parents=[common], help="import a SeisBench model (its save output) as a version",
                        description="Uploads NAME.json and NAME.pt as SeisBench's save (or from_pretrained's cache) "
                        "writes them; SeisBench's JSON does not name its class, so --class does. Checked: the class "
                        "is supported, its model_args build it, the weights load with weights_only and fit it. The "
                        "version (seisbench:<Class>) serves through Annotate and starts fine-tuning: quakestack "
                        "train start --initial-model NAME@VERSION --dataset D.")
    p.add_argument("name", help="model name (created on first registration)")
    p.add_argument("config", type=Path, help="the model's JSON (model_args, docstring, seisbench_requirement)")
    p.add_argument("weights", type=Path, help="the model's .pt state_dict")
    p.add_argument("--class", dest="seisbench_class", required=True, help="SeisBench class: PhaseNet, EQTransformer")
    p.add_argument("--alias", action="append", default=[], help="alias for the new version (repeatable)")
    p.set_defaults(func=lambda ctx, a: import_seisbench(ctx, a.name, a.config, a.weights, a.seisbench_class,
                                                        a.alias) and 0)
    p = msub.add_parser("unload", parents=[common], help="unload a model")
    p.add_argument("name")
    p.set_defaults(func=lambda ctx, a: unload(ctx, a.name))
