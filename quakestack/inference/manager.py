"""Resident models: load, swap, unload, LRU eviction within a per-device memory budget.

Triton explicit-mode semantics: a new version is built completely (weights fetched, sha-checked,
moved to the device) before it atomically replaces the old one under the lock; requests already
queued on the old one finish there (it drains), new ones go to the new one. Nothing fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from quakestack import metrics
from quakestack.devices import resolve_device
from quakestack.errors import InvalidArgument, NotFound, ResourceExhausted
from quakestack.inference.batcher import DynamicBatcher
from quakestack.inference.servables.base import Servable
from quakestack.inference.servables.factory import build_servable
from quakestack.model_store import ModelStore

log = structlog.get_logger()
DEFAULT_MAX_BATCH = 32
DEFAULT_DELAY_US = 2000
DEFAULT_QUEUE = 1024


@dataclass(frozen=True)
class LoadOptions:
    """Batcher settings of one LoadModel (zero/empty means the default)."""

    device: str = ""
    max_batch_size: int = 0
    max_queue_delay_us: int = 0
    instances: int = 0
    max_queue_size: int = 0

    def resolved(self) -> LoadOptions:
        for name in ("max_batch_size", "max_queue_delay_us", "instances", "max_queue_size"):
            if getattr(self, name) < 0:
                raise InvalidArgument(f"{name} must not be negative, got {getattr(self, name)}")
        return LoadOptions(self.device, self.max_batch_size or DEFAULT_MAX_BATCH,
                           self.max_queue_delay_us or DEFAULT_DELAY_US, self.instances or 1,
                           self.max_queue_size or DEFAULT_QUEUE)


@dataclass
class Resident:
    """One loaded model version with its batcher."""

    name: str
    card: dict[str, Any]
    servable: Servable
    batcher: DynamicBatcher
    options: LoadOptions
    load_time: float = field(default_factory=time.time)

    @property
    def version(self) -> int:
        return int(self.card["version"])

    @property
    def device(self) -> str:
        return str(self.servable.device)

    @property
    def memory_bytes(self) -> int:
        return int(self.servable.memory_bytes)


class ModelManager:
    """The resident set; thread-safe. ``on_ready(name, ready)`` drives per-model health."""

    def __init__(self, model_store: ModelStore, *, memory_budget_bytes: int, default_device: str = "auto",
                 on_ready: Callable[[str, bool], None] | None = None):
        self.model_store = model_store
        self.memory_budget_bytes = memory_budget_bytes
        self.default_device = default_device
        self.on_ready = on_ready or (lambda name, ready: None)
        self._models: dict[str, Resident] = {}
        self._lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}

    # -- lifecycle ----------------------------------------------------------------------------
    def load(self, name: str, version: str = "", options: LoadOptions = LoadOptions()) -> Resident:
        """Build the version fully, then swap it in; the old one drains in the background."""
        options = options.resolved()
        device = resolve_device(options.device, self.default_device)
        with self._lock:
            load_lock = self._load_locks.setdefault(name, threading.Lock())
        with load_lock:
            card = self.model_store.get(name, version)
            servable = build_servable(card, self.model_store.weights(card), device)
            batcher = DynamicBatcher(name, servable.run, max_batch_size=options.max_batch_size,
                                     max_queue_delay_s=options.max_queue_delay_us / 1e6,
                                     instances=options.instances, max_queue_size=options.max_queue_size)
            resident = Resident(name, card, servable, batcher, options)
            try:
                with self._lock:
                    evicted = self._make_room(resident)
                    old = self._models.get(name)
                    self._models[name] = resident
                    self._update_gauges()
            except BaseException:
                batcher.close(drain=False)
                raise
            for victim in evicted:
                self._retire(victim, drain=True)
                self.on_ready(victim.name, False)
            if old is not None:
                threading.Thread(target=self._retire, args=(old, True), daemon=True).start()
            self.on_ready(name, True)
            log.info("model loaded", model=name, version=resident.version, device=resident.device,
                     memory_bytes=resident.memory_bytes, replaced=None if old is None else old.version,
                     evicted=[v.name for v in evicted])
            return resident

    def unload(self, name: str) -> None:
        with self._lock:
            resident = self._models.pop(name, None)
            self._update_gauges()
        if resident is None:
            raise NotFound(f"model {name!r} is not loaded")
        self.on_ready(name, False)
        self._retire(resident, drain=True)
        log.info("model unloaded", model=name, version=resident.version)

    def close(self) -> None:
        with self._lock:
            residents = list(self._models.values())
            self._models.clear()
            self._update_gauges()
        for resident in residents:
            self._retire(resident, drain=True)

    def _retire(self, resident: Resident, drain: bool) -> None:
        resident.batcher.close(drain=drain)

    def _make_room(self, incoming: Resident) -> list[Resident]:
        """Evict idle models of the same device, least recently used first (called under the lock)."""
        device = incoming.device
        replaced = self._models.get(incoming.name)
        used = sum(r.memory_bytes for r in self._models.values() if r.device == device and r is not replaced)
        if used + incoming.memory_bytes <= self.memory_budget_bytes:
            return []
        if incoming.memory_bytes > self.memory_budget_bytes:
            raise ResourceExhausted(f"model {incoming.name!r} needs {incoming.memory_bytes} bytes; the budget of "
                                    f"{device} is {self.memory_budget_bytes} bytes")
        candidates = sorted((r for r in self._models.values()
                             if r.device == device and r is not replaced and not r.batcher.busy),
                            key=lambda r: r.batcher.last_used)
        evicted: list[Resident] = []
        for victim in candidates:
            if used + incoming.memory_bytes <= self.memory_budget_bytes:
                break
            del self._models[victim.name]
            used -= victim.memory_bytes
            evicted.append(victim)
        if used + incoming.memory_bytes > self.memory_budget_bytes:
            self._models.update({v.name: v for v in evicted})
            raise ResourceExhausted(f"no room for model {incoming.name!r} on {device}: "
                                    f"{used} of {self.memory_budget_bytes} bytes held by busy models")
        return evicted

    def _update_gauges(self) -> None:
        devices: dict[str, list[Resident]] = {}
        for resident in self._models.values():
            devices.setdefault(resident.device, []).append(resident)
        for device in {*devices, *getattr(self, "_seen_devices", set())}:
            residents = devices.get(device, [])
            metrics.MODELS_LOADED.labels(device).set(len(residents))
            metrics.MODEL_MEMORY_BYTES.labels(device).set(sum(r.memory_bytes for r in residents))
        self._seen_devices = set(devices) | getattr(self, "_seen_devices", set())

    # -- use ----------------------------------------------------------------------------------
    def get(self, name: str) -> Resident:
        with self._lock:
            resident = self._models.get(name)
        if resident is None:
            raise NotFound(f"model {name!r} is not loaded; LoadModel it first")
        return resident

    def list(self) -> list[Resident]:
        with self._lock:
            return sorted(self._models.values(), key=lambda r: r.name)

    def submit(self, name: str, x: np.ndarray, extras: dict[str, np.ndarray] | None = None,
               deadline: float | None = None) -> tuple[Resident, Future]:
        """Queue on the current version; under the lock so a concurrent swap never sees a closed queue."""
        with self._lock:
            resident = self._models.get(name)
            if resident is None:
                raise NotFound(f"model {name!r} is not loaded; LoadModel it first")
            return resident, resident.batcher.submit(x, extras, deadline)

    def predict(self, name: str, x: np.ndarray, extras: dict[str, np.ndarray] | None = None,
                timeout_s: float | None = None) -> tuple[Resident, dict[str, np.ndarray]]:
        """Blocking submit + wait (the annotator's path)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        resident, future = self.submit(name, x, extras, deadline)
        return resident, wait_result(resident, future, timeout_s)

    # -- autoload -----------------------------------------------------------------------------
    def autoload(self, alias: str) -> list[str]:
        """Load every model whose ``alias`` points at a version not already resident."""
        if not alias:
            return []
        loaded = []
        for name, version in self.model_store.with_alias(alias):
            try:
                with self._lock:
                    current = self._models.get(name)
                if current is not None and current.version == version:
                    continue
                self.load(name, str(version), current.options if current else LoadOptions())
                loaded.append(name)
            except Exception as exc:  # noqa: BLE001 - one broken model must not stop the others
                log.warning("autoload failed", model=name, alias=alias, error=str(exc))
        return loaded


def wait_result(resident: Resident, future: Future, timeout_s: float | None) -> dict[str, np.ndarray]:
    """Wait for a queued request; past the deadline it is dropped and DEADLINE_EXCEEDED raised."""
    from concurrent.futures import TimeoutError as FutureTimeout

    from quakestack.errors import DeadlineExceeded

    try:
        return future.result(timeout=timeout_s)
    except FutureTimeout:
        resident.batcher.cancel(future)
        if future.done() and future.exception() is None:
            return future.result()
        raise DeadlineExceeded(f"deadline exceeded waiting for model {resident.name!r}") from None
