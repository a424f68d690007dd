"""The one client program of the serving-peers benchmark: tritonclient.grpc over the Open Inference Protocol.

Run with ``.venv-triton``'s Python (tritonclient needs protobuf<7).
Usage: peer_load.py TARGET MODEL WINDOWS.npy [own|shared] (a connection per client, or one for all of
this process's clients); then one JSON command per line on stdin, one JSON answer per line on stdout, so
a client process imports tritonclient and opens its channels once for every run against one server:

- ``{"op": "check", "out": PATH}``: every window once, one per request, in order; the ``magnitude``
  outputs [N, 1] go to PATH (.npy) for the benchmark to compare with quakestack's Predict.
- ``{"op": "run", "threads": K, "start_at": T, "seconds": S}``: K closed-loop clients, each sending one
  window per request (cycling through the windows) from now until T + S; the time before T is the
  warm-up. Answers ``count`` (requests completed in [T, T + S]), their ``latencies_ms`` and ``cpu_s``
  (this process's CPU time over [T, T + S]).
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time

import numpy as np
import tritonclient.grpc as triton

# tritonclient's own message limits (channel_args replace its defaults), and a connection per channel
CHANNEL_ARGS = [("grpc.max_send_message_length", 2**31 - 1), ("grpc.max_receive_message_length", 2**31 - 1),
                ("grpc.use_local_subchannel_pool", 1)]


def cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Load:
    """One tritonclient channel (its own connection) per concurrent client, and one pre-encoded single-window
    input per window: K clients are K connections, as K independent callers would be, so a server that
    spreads connections over processes (SO_REUSEPORT) sees them as it would in production."""

    def __init__(self, target: str, model: str, windows: np.ndarray, shared: bool = False):
        self.target = target
        self.shared = shared  # --connections shared: one channel (one connection) for the process's clients
        self.clients: dict[int, triton.InferenceServerClient] = {}
        self.model = model
        self.inputs = []
        for x in windows:
            tensor = triton.InferInput("waveforms", [1, *x.shape], "FP32")
            tensor.set_data_from_numpy(np.ascontiguousarray(x[None], dtype=np.float32))
            self.inputs.append(tensor)
        self.outputs = [triton.InferRequestedOutput("magnitude")]

    def client(self, k: int) -> triton.InferenceServerClient:
        """Client k's channel, opened once for every run (a local subchannel pool: a connection of its own)."""
        k = 0 if self.shared else k
        if k not in self.clients:
            self.clients[k] = triton.InferenceServerClient(url=self.target,
                                                           channel_args=None if self.shared else CHANNEL_ARGS)
        return self.clients[k]

    def infer(self, i: int, k: int = 0) -> np.ndarray:
        result = self.client(k).infer(self.model, [self.inputs[i % len(self.inputs)]], outputs=self.outputs,
                                      client_timeout=60)
        return result.as_numpy("magnitude")

    def check(self, out: str) -> dict:
        answers = [self.infer(i).reshape(-1) for i in range(len(self.inputs))]
        np.save(out, np.stack(answers).astype(np.float32))
        return {"n": len(answers)}

    def run(self, threads: int, start_at: float, seconds: float) -> dict:
        end = start_at + seconds
        latencies: list[list[float]] = [[] for _ in range(threads)]
        cpu: list[float] = []

        def client(k: int) -> None:
            i = k
            self.client(k)  # connected before the clock: opening a channel is not a request
            while (started := time.time()) < end:
                self.infer(i, k)
                done = time.time()
                if start_at <= done <= end:
                    latencies[k].append((done - started) * 1e3)
                i += 1

        def meter() -> None:
            time.sleep(max(0.0, start_at - time.time()))
            cpu.append(cpu_now())
            time.sleep(max(0.0, end - time.time()))
            cpu.append(cpu_now())

        pool = [threading.Thread(target=client, args=(k,)) for k in range(threads)]
        pool.append(threading.Thread(target=meter))
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        merged = [v for per_thread in latencies for v in per_thread]
        return {"count": len(merged), "latencies_ms": [round(v, 3) for v in merged], "cpu_s": cpu[1] - cpu[0]}


def main() -> None:
    target, model, windows = sys.argv[1], sys.argv[2], np.load(sys.argv[3])
    load = Load(target, model, windows, shared=sys.argv[4:5] == ["shared"])
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "check":
            answer = load.check(command["out"])
        else:
            answer = load.run(int(command["threads"]), float(command["start_at"]), float(command["seconds"]))
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
