"""What a training run's numbers depend on besides its spec: library versions, device, threads, CPU.

Recorded with every epoch (an epoch resumed on another machine records that machine) and copied into
the model card of a version registered from it, so that "same spec, same seed" can be checked against
"same machine" before anyone compares figures.
"""

from __future__ import annotations

import contextlib
import platform
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

LIBRARIES = ("torch", "numpy", "torch-geometric", "quakestack")


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module says."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def run_environment(device: torch.device, world_size: int = 1) -> dict[str, Any]:
    """Versions, device, threads and CPU of this process (one rank; every rank runs the same image)."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "libraries": {name: v for name in LIBRARIES if (v := _version(name))},
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "world_size": world_size,
        "cpu": cpu_model(),
        "platform": platform.platform(terse=True),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda or ""
        env["cudnn"] = str(torch.backends.cudnn.version() or "")
    return env


def card_reproducibility(seed: int | None, environment: dict[str, Any] | None) -> dict[str, Any]:
    """The model card's `reproducibility`: the seed and the environment of the epoch it came from."""
    return {**({"seed": seed} if seed is not None else {}), **(environment or {})}
