"""Checks a Predict request against the model's input spec before anything is queued.

Every rejection says what was expected, so a client can fix its request without reading code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from quakestack.errors import InvalidArgument, ResourceExhausted
from quakestack.inference.servables.base import ServingSpec

RATE_TOLERANCE = 1e-6


def windows_array(data: bytes, shape: Sequence[int], sampling_rate: float, component_order: str,
                  spec: ServingSpec, max_bytes: int, what: str = "windows") -> np.ndarray:
    """Raw little-endian float32 + shape -> [N, C, L] array, validated against ``spec``.

    ``what`` names the request field in messages (Predict's ``windows``, the OIP input tensor).
    """
    expected = f"[N, {len(spec.components)}, {spec.n_samples}]"
    shape = [int(s) for s in shape]
    if len(shape) != 3 or shape[0] < 1:
        raise InvalidArgument(f"{what}.shape must be {expected} (N >= 1), got {shape}")
    n, c, length = shape
    if c != len(spec.components) or length != spec.n_samples:
        raise InvalidArgument(f"{what}.shape must be {expected} (components {spec.components!r}, "
                              f"{spec.n_samples} samples), got {shape}")
    if n * c * length * 4 > max_bytes:
        raise ResourceExhausted(f"{n} windows are {n * c * length * 4} bytes; the limit is {max_bytes} bytes")
    if abs(float(sampling_rate) - spec.sampling_rate) > RATE_TOLERANCE * spec.sampling_rate:
        raise InvalidArgument(f"windows.sampling_rate_hz must be {spec.sampling_rate:g}, got {sampling_rate:g}")
    if component_order and component_order.upper() != spec.components.upper():
        raise InvalidArgument(f"windows.component_order must be {spec.components!r}, got {component_order!r}")
    if len(data) != n * c * length * 4:
        raise InvalidArgument(f"{what}.data holds {len(data)} bytes; shape {shape} needs {n * c * length * 4} "
                              "(little-endian float32)")
    x = np.frombuffer(data, dtype="<f4").reshape(n, c, length)
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).reshape(n, -1).any(axis=1).argmax())
        raise InvalidArgument(f"{what}.data holds NaN or infinite samples (first in window {bad})")
    return x.astype(np.float32, copy=False)


def extras_arrays(extras: Mapping[str, Sequence[float]], spec: ServingSpec, n: int) -> dict[str, np.ndarray]:
    """The extra inputs the architecture declares, one finite value per window; others refused."""
    unknown = sorted(set(extras) - set(spec.extra_inputs))
    if unknown:
        raise InvalidArgument(f"unknown extra inputs {unknown}; this model takes {list(spec.extra_inputs)}")
    missing = [name for name in spec.extra_inputs if name not in extras]
    if missing:
        raise InvalidArgument(f"missing extra inputs {missing}; this model takes {list(spec.extra_inputs)}")
    out = {}
    for name in spec.extra_inputs:
        values = np.asarray(list(extras[name]), dtype=np.float32)
        if values.shape != (n,):
            raise InvalidArgument(f"extra input {name!r} needs one value per window ({n}), got {values.size}")
        if not np.isfinite(values).all():
            raise InvalidArgument(f"extra input {name!r} holds NaN or infinite values")
        out[name] = values
    return out
