"""The same servicer and batcher behind three gRPC servers: is the synchronous server the floor?

The batching benchmark's 32 single-window clients call ``Predict`` and the empty call
(``grpc.health.v1.Health/Check``) on bare servers built around quakestack's own InferenceServicer,
ModelManager and DynamicBatcher (``bench/support/bare_server.py``): ``sync`` (``grpc.server``, as the
services run), ``interceptors`` (the same plus the runtime's observability and access interceptors)
and ``aio`` (``grpc.aio.server`` with an async Predict). ``aio_vs_sync`` = aio Predict windows/s ÷
sync; ``interceptors_vs_sync`` likewise. Prints one JSON object as its last line.

    python bench/server_kinds.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.clients import EMPTY_CALL, Clients, cpu_seconds  # noqa: E402
from bench.support.stack import running_stack  # noqa: E402
from quakestack.config import settings_env  # noqa: E402
from quakestack.embedded.seaweed import free_ports  # noqa: E402
from quakestack.jobs.fanout import die_with_parent  # noqa: E402
from quakestack.model_store import ModelStore  # noqa: E402

KINDS = ("sync", "interceptors", "aio")
BARE_SERVER = Path(__file__).resolve().parent / "support" / "bare_server.py"
MODEL = "bare"


def start(kind: str, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    port = free_ports(1)[0]
    return subprocess.Popen([sys.executable, str(BARE_SERVER), kind, str(port), MODEL], env=env,
                            stdout=subprocess.PIPE, text=True,
                            preexec_fn=die_with_parent), port  # noqa: PLW1509 - prctl only, no locks


def wait_ready(kind: str, server: subprocess.Popen) -> None:
    """Read the server's output up to its `ready` line (its log lines come first)."""
    if not any(line.strip() == "ready" for line in server.stdout):
        raise RuntimeError(f"the {kind} server exited before serving (rc {server.wait()})")


def measure(server: subprocess.Popen, port: int, seconds: float) -> dict[str, float]:
    clients = Clients(f"127.0.0.1:{port}")
    try:
        clients.windows_per_s(MODEL, min(seconds, 1.0) / 2)  # warm-up: every batch size the run will see
        figures = {}
        for call, label in ((MODEL, "predict"), (EMPTY_CALL, "empty")):
            cpu = cpu_seconds(server.pid)
            rate = clients.windows_per_s(call, seconds)
            figures[f"{label}_per_s"] = round(rate, 1)
            figures[f"{label}_server_cpu_ms"] = round((cpu_seconds(server.pid) - cpu) * 1e3 / (rate * seconds), 3)
        return figures
    finally:
        clients.close()


def stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (< 60 s in all)")
    args = parser.parse_args()
    seconds = 1.5 if args.quick else 15.0
    from bench.batching import bench_model  # here, not at the top: the spawned clients re-import this file
    _, weights, card = bench_model()
    with running_stack(names=()) as stack:
        ModelStore.from_settings(stack.settings).register(MODEL, weights, card)
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
        env.update(settings_env(stack.settings))
        servers = {kind: start(kind, env) for kind in KINDS}  # start-ups overlap; an idle server takes no CPU
        try:
            for kind, (server, _) in servers.items():
                wait_ready(kind, server)
            results = {kind: measure(server, port, seconds) for kind, (server, port) in servers.items()}
        finally:
            for server, _ in servers.values():
                stop(server)
    sync = results["sync"]["predict_per_s"]
    print(json.dumps({"bench": "server_kinds", "seconds": seconds, **{k: v for k, v in results.items()},
                      "aio_vs_sync": round(results["aio"]["predict_per_s"] / sync, 3),
                      "interceptors_vs_sync": round(results["interceptors"]["predict_per_s"] / sync, 3)}))


if __name__ == "__main__":
    main()
