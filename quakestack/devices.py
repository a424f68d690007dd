"""Device strings, parsed one way everywhere: settings, training requests, the training worker, serving.

Strict: anything but auto, cpu, cuda or cuda:N is INVALID_ARGUMENT with the accepted forms in the
message (never a silent fall-back to the CPU), and a GPU that is not there is FAILED_PRECONDITION.
torch is imported only by `resolve_device`, so settings can parse a device without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quakestack.errors import FailedPrecondition, InvalidArgument

if TYPE_CHECKING:
    import torch

DEVICE_FORMS = "auto, cpu, cuda or cuda:N"


def parse_device(text: str, what: str = "device") -> str:
    """The canonical spelling (lower case, trimmed) of a device string; '' means auto."""
    value = (text or "auto").strip().lower()
    index = value[5:]
    if value in {"auto", "cpu", "cuda"} or (value.startswith("cuda:") and index.isascii() and index.isdigit()):
        return value
    raise InvalidArgument(f"{what} must be {DEVICE_FORMS}, got {text!r}")


def device_index(device: str) -> int:
    """The GPU index of a parsed `cuda`/`cuda:N` device (0 for plain `cuda`)."""
    return int(device[5:]) if device.startswith("cuda:") else 0


def check_gpus(device: str, gpu_count: int, what: str = "device") -> str:
    """Parse, then refuse a GPU this machine does not have (FAILED_PRECONDITION)."""
    device = parse_device(device, what)
    if device.startswith("cuda") and device_index(device) >= gpu_count:
        raise FailedPrecondition(f"{what} {device} requested but this machine has {gpu_count} GPU(s)")
    return device


def resolve_device(requested: str, default: str = "auto", rank: int = 0) -> torch.device:
    """The torch device of a request: auto is GPU `rank` when there is one, else the CPU; `rank` offsets cuda:N."""
    import torch

    name = parse_device(requested or default)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise FailedPrecondition(f"device {name!r} requested but no CUDA device is available")
    index = device_index(name) + rank
    if index >= torch.cuda.device_count():
        raise FailedPrecondition(f"device cuda:{index} does not exist ({torch.cuda.device_count()} GPU(s))")
    return torch.device("cuda", index)
