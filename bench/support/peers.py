"""The serving peers (MLServer, PyTriton) as real processes, and the tritonclient load that drives every server.

Used by bench/serving_peers.py and tests/inference/test_serving_peers.py, in the project's interpreter: each
peer runs in its own virtualenv made by ``scripts/setup.sh --dev`` (``.venv-mlserver``, ``.venv-pytriton``),
the clients in ``.venv-triton``. Each server is started in a session of its own and stopped with its whole
process group (MLServer's inference workers, PyTriton's tritonserver and Python backend stubs), so no
process is left behind. Readiness is asked over the Open Inference Protocol with quakestack's own stubs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import psutil

from quakestack.embedded.seaweed import free_ports
from quakestack.oip import open_inference_pb2 as oip
from quakestack.oip import open_inference_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[2]
MLSERVER_PYTHON = REPO_ROOT / ".venv-mlserver" / "bin" / "python"
PYTRITON_PYTHON = REPO_ROOT / ".venv-pytriton" / "bin" / "python"
TRITON_PYTHON = REPO_ROOT / ".venv-triton" / "bin" / "python"
PEER_LOAD = REPO_ROOT / "bench" / "support" / "peer_load.py"
PYTRITON_SERVER = REPO_ROOT / "bench" / "support" / "pytriton_server.py"
MLSERVER_RUNTIME = "bench.support.mlserver_runtime.QuakeModel"
CLIENT_PROCESSES = 4


@dataclass(frozen=True)
class Batching:
    """The batching every server gets: quakestack's defaults (manager.DEFAULT_MAX_BATCH / DEFAULT_DELAY_US)."""

    max_batch_size: int = 32
    max_queue_delay_us: int = 2000
    torch_threads: int = 1


class PeerFailed(RuntimeError):
    """A peer exited or never became ready; the message carries the end of its log."""


def write_model_folder(folder: Path, card: dict, weights: bytes) -> Path:
    """The registered version (card + state_dict, as the registry stores them) where a peer can load it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "card.json").write_text(json.dumps(card))
    (folder / "weights.pt").write_bytes(weights)
    return folder


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and every descendant alive now (a peer's workers and tritonserver)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    except psutil.Error:
        pass
    return total


@dataclass
class ServerProcess:
    """A peer started in its own session; ``target`` is its OIP gRPC address."""

    name: str
    proc: subprocess.Popen
    target: str
    log: Path

    def log_tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL to whatever is left after 10 s."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # workers or stubs that outlived their parent
        self.proc.wait(5)
        end = time.monotonic() + 10
        while group_members(self.proc.pid) and time.monotonic() < end:
            time.sleep(0.05)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group: what a stopped peer must not leave behind."""
    members = []
    for proc in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, OSError):
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                members.append(proc.pid)
    return members


def _model_ready(target: str, model: str) -> bool:
    with grpc.insecure_channel(target) as ch:
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(ch)
        try:
            return stub.ServerReady(oip.ServerReadyRequest(), timeout=2).ready and \
                stub.ModelReady(oip.ModelReadyRequest(name=model), timeout=2).ready
        except grpc.RpcError:
            return False


def wait_ready(server: ServerProcess, model: str, timeout_s: float = 120.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if server.proc.poll() is not None:
            raise PeerFailed(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")
        if _model_ready(server.target, model):
            return
        time.sleep(0.25)
    raise PeerFailed(f"{server.name} not ready after {timeout_s:.0f} s:\n{server.log_tail()}")


@contextlib.contextmanager
def _serving(name: str, command: list[str], workdir: Path, target: str, model: str,
             env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})})
    server = ServerProcess(name, proc, target, log)
    try:
        wait_ready(server, model)
        yield server
    finally:
        server.stop()


def mlserver(workdir: Path, model_folder: Path, model: str, batching: Batching,
             parallel_workers: int) -> contextlib.AbstractContextManager[ServerProcess]:
    """``mlserver start`` on a repository of one model (QuakeModel) with adaptive batching."""
    root = workdir / f"mlserver-{parallel_workers}"
    (root / model).mkdir(parents=True, exist_ok=True)
    http_port, grpc_port, metrics_port = free_ports(3)
    (root / "settings.json").write_text(json.dumps({
        "debug": False, "host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port,
        "metrics_port": metrics_port, "parallel_workers": parallel_workers, "model_repository_root": str(root)}))
    (root / model / "model-settings.json").write_text(json.dumps({
        "name": model, "implementation": MLSERVER_RUNTIME, "max_batch_size": batching.max_batch_size,
        "max_batch_time": batching.max_queue_delay_us / 1e6,
        "parameters": {"uri": str(model_folder), "extra": {"torch_threads": batching.torch_threads}}}))
    command = [str(MLSERVER_PYTHON), "-m", "mlserver.cli.main", "start", str(root)]
    return _serving(f"mlserver-{parallel_workers}", command, root, f"127.0.0.1:{grpc_port}", model)


def pytriton(workdir: Path, model_folder: Path, model: str,
             batching: Batching) -> contextlib.AbstractContextManager[ServerProcess]:
    """PyTriton (Triton's front end and dynamic batcher) around the model in its infer_fn."""
    root = workdir / "pytriton"
    root.mkdir(parents=True, exist_ok=True)
    grpc_port, http_port, metrics_port = free_ports(3)
    command = [str(PYTRITON_PYTHON), str(PYTRITON_SERVER), str(model_folder), model, str(grpc_port), str(http_port),
               str(metrics_port), str(batching.max_batch_size), str(batching.max_queue_delay_us),
               str(batching.torch_threads)]
    return _serving("pytriton", command, root, f"127.0.0.1:{grpc_port}", model)


@dataclass
class RunResult:
    """One closed-loop run: every client's completed requests in the measured window."""

    clients: int
    seconds: float
    count: int
    latencies_ms: list[float]
    client_cpu_s: float
    server_cpu_s: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def windows_per_s(self) -> float:
        return self.count / self.seconds

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def summary(self) -> dict:
        per_request = max(1, self.count)
        return {"clients": self.clients, "windows_per_s": round(self.windows_per_s, 1),
                "p50_ms": round(self.percentile_ms(50), 2), "p99_ms": round(self.percentile_ms(99), 2),
                "server_cpu_ms_per_request": round(self.server_cpu_s * 1e3 / per_request, 3),
                "client_cpu_ms_per_request": round(self.client_cpu_s * 1e3 / per_request, 3), **self.extra}


def _split(clients: int, processes: int) -> list[int]:
    """Threads per client process: ``clients`` spread as evenly as possible, idle processes get 0."""
    return [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]


class ClientPool:
    """CLIENT_PROCESSES tritonclient processes (peer_load.py, .venv-triton) against one server."""

    def __init__(self, target: str, model: str, windows: Path, processes: int = CLIENT_PROCESSES,
                 connections: str = "own"):
        """``connections``: "own" (a connection per client) or "shared" (one per client process)."""
        self.procs = [subprocess.Popen([str(TRITON_PYTHON), str(PEER_LOAD), target, model, str(windows),
                                        connections],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                      for _ in range(processes)]
        for proc in self.procs:
            self._answer(proc)

    @staticmethod
    def _answer(proc: subprocess.Popen) -> dict:
        line = proc.stdout.readline()
        if not line:
            raise PeerFailed(f"client process {proc.pid} exited with {proc.wait()}")
        return json.loads(line)

    def _send(self, proc: subprocess.Popen, command: dict) -> None:
        proc.stdin.write(json.dumps(command) + "\n")
        proc.stdin.flush()

    def check(self, out: Path) -> np.ndarray:
        """Every window once through tritonclient; the magnitudes [N]."""
        self._send(self.procs[0], {"op": "check", "out": str(out)})
        self._answer(self.procs[0])
        return np.load(out).reshape(-1)

    def run(self, clients: int, seconds: float, warmup_s: float, server_pid: int | None = None,
            on_start: Callable[[], None] | None = None) -> RunResult:
        """``clients`` closed-loop clients: warm-up, then ``seconds`` measured (server CPU over the same window;
        ``on_start`` is called when the window opens, e.g. to start a profiler)."""
        start_at = time.time() + warmup_s
        busy = [(proc, n) for proc, n in zip(self.procs, _split(clients, len(self.procs)), strict=True) if n]
        for proc, n in busy:
            self._send(proc, {"op": "run", "threads": n, "start_at": start_at, "seconds": seconds})
        server_cpu: list[float] = []
        meter = threading.Thread(target=_meter, args=(server_pid, start_at, seconds, server_cpu, on_start))
        meter.start()
        answers = [self._answer(proc) for proc, _ in busy]
        meter.join()
        return RunResult(clients, seconds, sum(a["count"] for a in answers),
                         [v for a in answers for v in a["latencies_ms"]], sum(a["cpu_s"] for a in answers),
                         server_cpu[1] - server_cpu[0] if len(server_cpu) == 2 else 0.0)

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _meter(pid: int | None, start_at: float, seconds: float, out: list[float],
           on_start: Callable[[], None] | None) -> None:
    """The server's CPU time (process tree) at the start and at the end of the measured window."""
    if pid is None:
        return
    time.sleep(max(0.0, start_at - time.time()))
    out.append(tree_cpu_seconds(pid))
    if on_start is not None:
        on_start()
    time.sleep(max(0.0, start_at + seconds - time.time()))
    out.append(tree_cpu_seconds(pid))


@contextlib.contextmanager
def client_pool(target: str, model: str, windows: Path, connections: str = "own") -> Iterator[ClientPool]:
    pool = ClientPool(target, model, windows, connections=connections)
    try:
        yield pool
    finally:
        pool.close()
