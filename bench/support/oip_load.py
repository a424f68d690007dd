"""tritonclient.grpc load for bench/batching.py (run with .venv-triton's Python: tritonclient needs protobuf<7).

Usage: oip_load.py TARGET MODEL THREADS SECONDS START_AT — THREADS clients, each sending one window
per ModelInfer from the wall-clock time START_AT for SECONDS; prints the number of answered requests.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import tritonclient.grpc as triton


def main() -> None:
    target, model, threads, seconds, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), \
        float(sys.argv[5])
    x = (np.random.default_rng(0).standard_normal((1, 3, 6000)) * 1000).astype(np.float32)
    client = triton.InferenceServerClient(url=target)
    tensor = triton.InferInput("waveforms", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    client.infer(model, [tensor])  # warm: channel and model
    counts = [0] * threads

    def run(i: int) -> None:
        end = start_at + seconds
        while time.time() < end:
            client.infer(model, [tensor], client_timeout=60)
            counts[i] += 1

    time.sleep(max(0.0, start_at - time.time()))
    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    print(sum(counts))


if __name__ == "__main__":
    main()
