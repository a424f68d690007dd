"""The epoch loop: one function that trains on in-memory splits and reports through callbacks.

It knows nothing about processes, storage or gRPC: the worker gives it data, a control object
(target epoch count and stop flag, changeable while it runs) and two callbacks (emit an event,
save a checkpoint). The same loop runs alone or as one rank of a DDP group.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from quakestack.layout import STOPPED, epoch_label
from quakestack.models.checkpoint import restore_training_state, training_state
from quakestack.models.losses import compute_loss
from quakestack.models.metrics import MetricAccumulator
from quakestack.models.spec import ArchitectureSpec
from quakestack.training.augment import apply, build_augmentations
from quakestack.training.data import SplitData
from quakestack.training.finetune import optimizer_parameters


class Control(Protocol):
    """What the loop asks between batches; the worker answers from the service's commands."""

    def target_epochs(self) -> int: ...

    def stop_requested(self) -> bool: ...


@dataclass(frozen=True)
class FixedEpochs:
    """A Control for in-process runs (benchmarks, tests): this many epochs, never stopped."""

    epochs: int

    def target_epochs(self) -> int:
        return self.epochs

    def stop_requested(self) -> bool:
        return False


@dataclass
class LoopResult:
    state: str  # "succeeded" or "stopped"
    message: str
    epochs_done: int


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def build_optimizer(model: nn.Module, hp: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The job's optimizer; fine-tuning options (freeze, pretrained_lr_factor) come as the model's groups."""
    lr, wd = float(hp["learning_rate"]), float(hp["weight_decay"])
    params = optimizer_parameters(model, hp)
    if hp["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(hp["momentum"]), weight_decay=wd)
    if hp["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.Adam(params, lr=lr, weight_decay=wd)


def build_scheduler(optimizer: torch.optim.Optimizer, hp: Mapping[str, Any], epochs: int) -> Any:
    kind = hp["scheduler"]
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    if kind == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(hp["step_size"]), gamma=float(hp["gamma"]))
    if kind == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=float(hp["gamma"]), patience=2)
    return None


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", dtype=torch.bfloat16)


class Batches:
    """Tensors of one split, placed once (on the GPU when it fits), sliced by index per batch."""

    def __init__(self, split: SplitData, device: torch.device):
        x = torch.from_numpy(split.x)
        on_device = device.type == "cuda" and _fits_on_gpu(x, device)
        place = (lambda t: t.to(device)) if on_device else (lambda t: t)
        self.device = device
        self.on_device = on_device
        self.x = place(x)
        self.targets = {k: place(torch.from_numpy(np.ascontiguousarray(v))) for k, v in split.targets.items()}
        self.extras = {k: place(torch.from_numpy(np.ascontiguousarray(v))) for k, v in split.extras.items()}

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        if self.on_device:
            index = index.to(self.device)
        x = self.x.index_select(0, index)
        targets = {k: v.index_select(0, index) for k, v in self.targets.items()}
        extras = {k: v.index_select(0, index) for k, v in self.extras.items()}
        if not self.on_device and self.device.type != "cpu":
            x = x.pin_memory().to(self.device, non_blocking=True)
            targets = {k: v.to(self.device, non_blocking=True) for k, v in targets.items()}
            extras = {k: v.to(self.device, non_blocking=True) for k, v in extras.items()}
        return x, targets, extras


def _fits_on_gpu(x: torch.Tensor, device: torch.device) -> bool:
    free, _total = torch.cuda.mem_get_info(device)
    return x.numel() * x.element_size() < 0.25 * free


def evaluate(model: nn.Module, spec: ArchitectureSpec, loss_name: str, batches: Batches, batch_size: int,
             amp: bool) -> tuple[float, dict[str, Any], dict[str, np.ndarray]]:
    """Mean loss, the task's metrics and the raw predictions over a whole split."""
    model.eval()
    acc = MetricAccumulator(spec.task, spec.class_names or None)
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(batches), batch_size):
            index = torch.arange(start, min(start + batch_size, len(batches)))
            x, targets, extras = batches.take(index)
            with _autocast(batches.device, amp):
                outputs = model(x, extras or None)
            outputs = {k: v.float() for k, v in outputs.items()}
            loss = compute_loss(loss_name, outputs, targets)
            if torch.isfinite(loss):
                total += float(loss) * len(index)
                count += len(index)
            acc.update(outputs, targets)
    model.train()
    metrics = acc.compute() if len(acc) else {}
    predictions = {k: np.concatenate(v) for k, v in acc._pred.items()} if len(acc) else {}
    return (total / count if count else math.nan), metrics, predictions


def run_training(
    *,
    model: nn.Module,
    spec: ArchitectureSpec,
    arch_hparams: Mapping[str, Any],
    hp: Mapping[str, Any],
    train: SplitData,
    val: SplitData,
    device: torch.device,
    control: Control,
    emit: Callable[[dict[str, Any]], None],
    save_checkpoint: Callable[[str, dict[str, Any]], None],
    resume: Mapping[str, Any] | None = None,
    elapsed_before_s: float = 0.0,
    rank: int = 0,
    world: int = 1,
) -> LoopResult:
    """Train until the target epoch count, a stop request or early stopping; rank 0 reports."""
    seed = int(hp["seed"])
    seed_everything(seed + rank)
    model.to(device).train()
    ddp_model: nn.Module = model
    if world > 1:
        ddp_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                        else None)
    optimizer = build_optimizer(model, hp)
    scheduler = build_scheduler(optimizer, hp, control.target_epochs())
    amp = bool(hp["mixed_precision"])
    scaler = torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda"
                                  and not torch.cuda.is_bf16_supported())
    loss_name = spec.loss_for(arch_hparams)
    batch_size = int(hp["batch_size"])
    steps = build_augmentations(hp)
    train_batches, val_batches = Batches(train, device), Batches(val, device)

    epoch, skip_batches, best_loss, best_epoch, stale = 0, 0, math.inf, 0, 0
    if resume is not None:
        epoch = restore_training_state(resume, model, optimizer, scheduler)
        skip_batches = int(resume.get("batches_done", 0))
        best_loss = float(resume.get("best_loss", math.inf))
        best_epoch = int(resume.get("best_epoch", 0))
        stale = int(resume.get("stale_epochs", 0))
    started = time.monotonic()
    epoch_times: list[float] = []
    patience = int(hp["early_stopping_patience"])

    def state(extra_epoch: int, **extra: Any) -> dict[str, Any]:
        return training_state(model, optimizer, scheduler, epoch=extra_epoch, best_loss=best_loss,
                              best_epoch=best_epoch, stale_epochs=stale, **extra)

    while epoch < int(_from_rank0(control.target_epochs(), world, device)):
        current = epoch + 1
        epoch_start = time.monotonic()
        generator = torch.Generator().manual_seed(seed * 100_003 + current)
        order = torch.randperm(len(train_batches), generator=generator)[rank::world]
        aug_gen = torch.Generator().manual_seed(seed * 7_919 + current * 31 + rank)
        total_loss, seen, stopped_at = 0.0, 0, None
        train_time = 0.0
        for batch_index, start in enumerate(range(0, len(order), batch_size)):
            if batch_index < skip_batches:
                continue
            t0 = time.perf_counter()
            x, targets, extras = train_batches.take(order[start:start + batch_size])
            if steps:
                x = apply(steps, x, extras, aug_gen)
            with _autocast(device, amp):
                outputs = ddp_model(x, extras or None)
            loss = compute_loss(loss_name, {k: v.float() for k, v in outputs.items()}, targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss * _share_of_global_batch(x.shape[0], batch_index, batch_size, world,
                                                       len(train_batches))).backward()
            scaler.step(optimizer)
            scaler.update()
            train_time += time.perf_counter() - t0
            total_loss += float(loss.detach()) * x.shape[0]
            seen += x.shape[0]
            if _agreed_stop(control, world, device):
                stopped_at = batch_index + 1
                break
        skip_batches = 0
        if stopped_at is not None:
            if rank == 0:
                save_checkpoint(STOPPED, state(epoch, batches_done=stopped_at))
            return LoopResult("stopped", f"stopped during epoch {current}; resumable", epoch)
        epoch = current
        train_loss, seen = _all_reduced_mean(total_loss, seen, world)
        val_loss, metrics = math.nan, {}
        if rank == 0:
            val_loss, metrics, _ = evaluate(model, spec, loss_name, val_batches, batch_size * 2, amp)
        val_loss = _from_rank0(val_loss, world, device)
        monitored = val_loss if math.isfinite(val_loss) else train_loss
        if monitored < best_loss:
            best_loss, best_epoch, stale = monitored, epoch, 0
        else:
            stale += 1
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(monitored)
        elif scheduler is not None:
            scheduler.step()
        if rank == 0:
            epoch_times.append(time.monotonic() - epoch_start)
            remaining = max(0, control.target_epochs() - epoch)
            event = {"type": "epoch", "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                     "metrics": metrics, "learning_rate": optimizer.param_groups[0]["lr"],
                     "samples_per_s": seen / max(train_time, 1e-9),
                     "elapsed_s": elapsed_before_s + time.monotonic() - started,
                     "eta_s": remaining * float(np.mean(epoch_times)), "best_epoch": best_epoch}
            # the event rides in the checkpoint: if the process dies before emitting it, the resumed
            # worker reports it from there, so no epoch is missing or trained twice
            save_checkpoint(epoch_label(epoch), state(epoch, val_loss=val_loss, event=event))
            emit(event)
        if patience and stale >= patience:
            return LoopResult("succeeded", f"early stopping after {epoch} epochs (best epoch {best_epoch})", epoch)
    return LoopResult("succeeded", f"trained {epoch} epochs (best epoch {best_epoch})", epoch)


def _share_of_global_batch(local: int, batch_index: int, batch_size: int, world: int, total: int) -> float:
    """Weight of this rank's mean loss so that DDP's gradient average is the mean over the global batch
    (ranks' last batches may differ in size): the same model as one process with batch_size * world."""
    if world == 1:
        return 1.0
    start = batch_index * batch_size * world
    global_count = min(total, start + batch_size * world) - start
    return local * world / max(global_count, 1)


def _agreed_stop(control: Control, world: int, device: torch.device) -> bool:
    """Rank 0's stop flag, shared with every rank so all leave the epoch at the same batch."""
    return bool(_from_rank0(1.0 if control.stop_requested() else 0.0, world, device))


def _comm_device(device: torch.device) -> torch.device:
    return device if device.type == "cuda" else torch.device("cpu")


def _from_rank0(value: float, world: int, device: torch.device) -> float:
    """Rank 0's value on every rank (control decisions, validation loss)."""
    if world == 1:
        return value
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=_comm_device(device))
    torch.distributed.broadcast(tensor, src=0)
    return float(tensor.item())


def _all_reduced_mean(total: float, count: int, world: int) -> tuple[float, int]:
    """Mean training loss and sample count over every rank."""
    if world == 1:
        return total / max(count, 1), count
    tensor = torch.tensor([total, float(count)], dtype=torch.float64)
    if torch.distributed.get_backend() == "nccl":
        tensor = tensor.cuda()
    torch.distributed.all_reduce(tensor)
    return float(tensor[0]) / max(float(tensor[1]), 1.0), int(tensor[1])
