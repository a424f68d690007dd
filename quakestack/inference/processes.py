"""Several processes on the inference service's one port, each with its own GIL (``inference_processes``).

One Python process tops out at one core of gRPC work (bench/RESULTS.md, serving_peers). With N > 1 the
service's first process (the *primary*: every RPC, health, model loading, the budget) starts N - 1
*data-plane processes* that bind the same port (SO_REUSEPORT: the kernel spreads connections over them).
Each holds its own copy of the resident models and answers Predict and ModelInfer itself; every other call
it forwards to the primary over a private Unix socket (quakestack.runtime.forward).

The copies follow the primary through a run directory (mode 0700) that only these processes share:
``resident.json`` (what the primary holds: name, version, device, batching options) and ``generation``, a
counter the primary bumps after every change of its resident set (load, swap, unload, eviction). A
data-plane process answers locally only while its copy is of the current generation; otherwise it
forwards, so a call made after LoadModel returned never reaches an older version. The primary restarts a
data-plane process that dies, stops them when it stops, and the kernel kills them when it is killed.
ListLoadedModels and /metrics add the data-plane processes' counts to the primary's.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import structlog

from quakestack.jobs.fanout import die_with_parent

log = structlog.get_logger()
RESIDENT_FILE, GENERATION_FILE, PRIMARY_SOCKET = "resident.json", "generation", "primary.sock"
RUN_DIR_PREFIX = "quakestack-inference-"
SERVED_METHOD = "/quakestack.internal.DataPlane/Served"
METRICS_METHOD = "/quakestack.internal.DataPlane/Metrics"
_U64 = struct.Struct("<Q")
RESTART_DELAY_S = 1.0


def remove_stale_run_dirs(tmp: Path) -> None:
    """Run directories of primaries that were killed (a stopped one removes its own): named by their pid."""
    for path in tmp.glob(f"{RUN_DIR_PREFIX}*"):
        try:
            pid = int(path.name[len(RUN_DIR_PREFIX):].split("-")[0])
            if path.stat().st_uid != os.getuid():
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (ValueError, OSError):  # not one of ours, or a live process of another user
            continue


def worker_socket(run_dir: Path, index: int) -> Path:
    return run_dir / f"data-plane-{index}.sock"


def local_channel(path: Path, max_bytes: int) -> grpc.Channel:
    """A channel over a Unix socket of the run directory (local credentials: no TLS on one machine)."""
    from quakestack.client import transport_options

    return grpc.secure_channel(f"unix:{path}", grpc.local_channel_credentials(grpc.LocalConnectionType.UDS),
                               options=transport_options(max_bytes))


class Generation:
    """The shared counter: a memory map of 8 bytes, so reading it costs a data-plane call nothing."""

    def __init__(self, path: Path, create: bool = False):
        if create:
            path.write_bytes(_U64.pack(0))
        self._file = open(path, "r+b")  # noqa: SIM115 - held for the map's lifetime
        self._map = mmap.mmap(self._file.fileno(), _U64.size)
        self._lock = threading.Lock()

    def read(self) -> int:
        return _U64.unpack_from(self._map, 0)[0]

    def bump(self) -> int:
        with self._lock:
            value = self.read() + 1
            _U64.pack_into(self._map, 0, value)
            return value

    def close(self) -> None:
        self._map.close()
        self._file.close()


def write_resident(run_dir: Path, models: list[dict]) -> None:
    """Replace resident.json atomically (readers never see half of it)."""
    tmp = run_dir / f".{RESIDENT_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps({"models": models}))
    os.replace(tmp, run_dir / RESIDENT_FILE)


def read_resident(run_dir: Path) -> list[dict]:
    try:
        return json.loads((run_dir / RESIDENT_FILE).read_text())["models"]
    except FileNotFoundError:
        return []


class DataPlaneProcesses:
    """In the primary: the run directory, the data-plane processes' lives, and their counts."""

    def __init__(self, count: int, max_bytes: int):
        self.count = count
        self.max_bytes = max_bytes
        remove_stale_run_dirs(Path(tempfile.gettempdir()))
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-"))  # 0700
        self.generation = Generation(self.run_dir / GENERATION_FILE, create=True)
        write_resident(self.run_dir, [])
        self._publish_lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen] = {}
        self._channels: dict[int, grpc.Channel] = {}
        self._stopping = threading.Event()
        self._lives_lock = threading.Lock()
        self._monitor: threading.Thread | None = None
        self.port = 0

    @property
    def primary_socket(self) -> Path:
        return self.run_dir / PRIMARY_SOCKET

    # -- lives --------------------------------------------------------------------------------
    def start(self, port: int) -> None:
        """Start processes 1..count-1 on ``port`` from one long-lived thread: the kernel's parent-death
        signal follows the thread that started a child, so they die with this process, never before."""
        self.port = port
        self._monitor = threading.Thread(target=self._watch, name="data-plane-processes", daemon=True)
        self._monitor.start()

    def _spawn(self, index: int) -> None:
        argv = [sys.executable, "-m", "services.inference.worker", str(self.run_dir), str(index), str(self.port)]
        with self._lives_lock:  # never a start after stop() sent its signals
            if self._stopping.is_set():
                return
            try:
                self._procs[index] = subprocess.Popen(argv, preexec_fn=die_with_parent)  # noqa: PLW1509 - prctl only
            except OSError as exc:  # tried again on the next pass: the primary serves alone meanwhile
                log.error("data-plane process not started", index=index, error=str(exc))
                return
        log.info("data-plane process started", index=index, pid=self._procs[index].pid)

    def _watch(self) -> None:
        for index in range(1, self.count):
            self._spawn(index)
        while not self._stopping.wait(0.5):
            for index in range(1, self.count):
                proc = self._procs.get(index)
                if proc is None and not self._stopping.wait(RESTART_DELAY_S):
                    self._spawn(index)
                elif proc is not None and proc.poll() is not None and not self._stopping.is_set():
                    log.error("data-plane process died; restarting it", index=index, pid=proc.pid,
                              returncode=proc.returncode)
                    self._channels.pop(index, None)
                    if not self._stopping.wait(RESTART_DELAY_S):
                        self._spawn(index)
        # stop() waits for the processes; this thread must outlive them (their parent-death signal)
        for proc in list(self._procs.values()):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=3600)

    def stop(self, grace_s: float) -> None:
        """SIGTERM every data-plane process (each drains within the grace period), then SIGKILL what is left."""
        with self._lives_lock:
            self._stopping.set()
            procs = list(self._procs.values())
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        end = time.monotonic() + grace_s + 5.0
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._monitor is not None:
            self._monitor.join(5.0)
        for ch in self._channels.values():
            ch.close()
        self.generation.close()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    # -- the resident set -----------------------------------------------------------------------
    def publish(self, models: list[dict]) -> None:
        """Called by the primary after its resident set changed: the new set first, then the generation."""
        with self._publish_lock:
            write_resident(self.run_dir, models)
            self.generation.bump()

    # -- counts ---------------------------------------------------------------------------------
    def _ask_each(self, method: str) -> list[bytes]:
        answers = []
        for index in range(1, self.count):
            ch = self._channels.get(index)
            if ch is None:
                ch = self._channels[index] = local_channel(worker_socket(self.run_dir, index), self.max_bytes)
            try:
                answers.append(ch.unary_unary(method)(b"", timeout=2.0))
            except grpc.RpcError as exc:  # starting or restarting: its counts are missing from this answer
                log.warning("data-plane process did not answer", index=index, method=method,
                            code=exc.code().name if isinstance(exc, grpc.Call) else "")
        return answers

    def served(self) -> dict[tuple[str, int], dict[str, float]]:
        """(name, version) -> batches, windows and last use summed over the data-plane processes."""
        total: dict[tuple[str, int], dict[str, float]] = {}
        for answer in self._ask_each(SERVED_METHOD):
            for row in json.loads(answer):
                key = (row["name"], int(row["version"]))
                acc = total.setdefault(key, {"batches": 0, "windows": 0, "last_used": 0.0})
                acc["batches"] += row["batches"]
                acc["windows"] += row["windows"]
                acc["last_used"] = max(acc["last_used"], row["last_used"])
        return total

    def metrics_texts(self) -> list[str]:
        return [answer.decode() for answer in self._ask_each(METRICS_METHOD)]
