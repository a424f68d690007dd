"""Training throughput (windows/s: forward, loss, backward, Adam step) of each architecture on random data.

Run ``python -m quakestack.models.throughput [name ...] [--batch-size 32] [--batches 5] [--device cpu]``
to print a table (the figures in bench/RESULTS.md come from here).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from typing import Any

import torch

from quakestack.models.losses import IGNORE_INDEX, get_loss
from quakestack.models.spec import ArchitectureSpec, InputSpec, Task
from quakestack.models.zoo import ARCHITECTURES, build_model, get_architecture


def random_batch(
    spec: ArchitectureSpec, input_spec: InputSpec, batch_size: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None, dict[str, torch.Tensor]]:
    """A random (waveforms, extras, targets) batch shaped for ``spec`` — for benchmarks and smoke tests."""
    x = torch.randn(batch_size, input_spec.n_channels, input_spec.n_samples, device=device)
    extras = {
        name: torch.rand(batch_size, device=device) * input_spec.n_samples for name in input_spec.extra_inputs
    } or None
    if spec.task is Task.MAGNITUDE:
        targets = {
            "magnitude": torch.rand(batch_size, device=device) * 4 + 1,
            "p_arrival_sample": torch.rand(batch_size, device=device) * input_spec.n_samples / 2,
        }
    elif spec.task is Task.PICKING:
        p = torch.rand(batch_size, device=device) * input_spec.n_samples / 2
        targets = {"p_sample": p, "s_sample": p + input_spec.n_samples / 4}
    else:
        n_classes = len(spec.class_names)
        targets = {"label": torch.randint(0, n_classes, (batch_size,), device=device)}
        if spec.task is Task.DETECTION:
            cluster = torch.randint(0, 2, (batch_size,), device=device)
            targets["cluster"] = torch.where(targets["label"] == 1, cluster, IGNORE_INDEX)
    return x, extras, targets


def bench_throughput(
    name: str,
    hparams: Mapping[str, Any] | None = None,
    batch_size: int = 32,
    n_batches: int = 5,
    warmup: int = 1,
    device: str = "cpu",
) -> dict[str, Any]:
    """Measure training windows/s of ``name``; returns the figure with the settings that produced it."""
    spec = get_architecture(name)
    model, resolved, input_spec = build_model(name, hparams)
    model.to(device).train()
    loss_fn = get_loss(spec.loss_for(resolved))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, extras, targets = random_batch(spec, input_spec, batch_size, device)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x, extras), targets)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    for _ in range(warmup):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n_batches):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return {
        "architecture": name,
        "samples_per_s": batch_size * n_batches / elapsed,
        "batch_size": batch_size,
        "n_samples": input_spec.n_samples,
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": device,
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", default=list(ARCHITECTURES))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    print(f"{'architecture':<20} {'n_samples':>9} {'params':>11} {'windows/s':>10}")
    for name in args.names:
        r = bench_throughput(name, batch_size=args.batch_size, n_batches=args.batches, device=args.device)
        print(f"{name:<20} {r['n_samples']:>9} {r['parameters']:>11,} {r['samples_per_s']:>10.1f}", flush=True)
    print(f"device={args.device} threads={torch.get_num_threads()} batch_size={args.batch_size}")


if __name__ == "__main__":
    main()
