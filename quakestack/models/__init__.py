"""The model zoo: architecture specs (zoo.py), losses, metrics, targets and checkpoints.

Pure torch (+ torch-geometric for graph layers); no dependency on services or protobuf.
"""

from quakestack.models.spec import ArchitectureSpec, HyperParameter, InputSpec, Task, resolve_hparams
from quakestack.models.zoo import (
    ARCHITECTURES,
    TRAINING_HYPER_PARAMETERS,
    build_model,
    get_architecture,
    list_architectures,
    resolve_training_hparams,
)

__all__ = [
    "ARCHITECTURES",
    "TRAINING_HYPER_PARAMETERS",
    "ArchitectureSpec",
    "HyperParameter",
    "InputSpec",
    "Task",
    "build_model",
    "get_architecture",
    "list_architectures",
    "resolve_hparams",
    "resolve_training_hparams",
]
