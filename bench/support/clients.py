"""The batching benchmarks' load: CLIENTS concurrent single-window clients over PROCESSES processes.

Kept free of torch, so that the spawned client processes start in a fraction of a second.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from pathlib import Path

import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from quakestack.client import channel
from quakestack.v1 import common_pb2, inference_pb2, inference_pb2_grpc

CLIENTS, PROCESSES = 32, 4
EMPTY_CALL = "grpc.health.v1.Health/Check"


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client_process(target: str, threads: int, jobs, ready, out) -> None:
    """``threads`` clients in one process; each job (model, seconds, go event) runs them all once."""
    x = (np.random.default_rng(0).standard_normal((1, 3, 6000)) * 1000).astype("<f4")
    waveforms = common_pb2.Waveforms(data=x.tobytes(), shape=[1, 3, 6000], sampling_rate_hz=100.0,
                                     component_order="ZNE")
    with channel(target) as ch:
        stub = inference_pb2_grpc.InferenceServiceStub(ch)
        health = health_pb2_grpc.HealthStub(ch)
        while (job := jobs.get()) is not None:
            name, seconds, go = job
            if name == EMPTY_CALL:  # the floor: the same server's cheapest unary, no model, no payload
                call, request = health.Check, health_pb2.HealthCheckRequest()
            else:
                call, request = stub.Predict, inference_pb2.PredictRequest(model=name, windows=waveforms)
            call(request, timeout=60)
            counts = [0] * threads
            ready.put(1)
            go.wait()
            end = time.time() + seconds

            def client(i: int, call=call, request=request, end=end, counts=counts) -> None:
                while time.time() < end:
                    call(request, timeout=60)
                    counts[i] += 1

            pool = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            out.put(sum(counts))


class Clients:
    """CLIENTS concurrent clients spread over PROCESSES processes (so the client GIL is no limit)."""

    def __init__(self, target: str):
        self.ctx = mp.get_context("spawn")
        self.manager = self.ctx.Manager()
        self.jobs = [self.ctx.Queue() for _ in range(PROCESSES)]
        self.ready, self.out = self.ctx.Queue(), self.ctx.Queue()
        self.procs = [self.ctx.Process(target=_client_process,
                                       args=(target, CLIENTS // PROCESSES, q, self.ready, self.out))
                      for q in self.jobs]
        for p in self.procs:
            p.start()

    def windows_per_s(self, name: str, seconds: float, on_start=None) -> float:
        go = self.manager.Event()
        for q in self.jobs:
            q.put((name, seconds, go))
        for _ in self.procs:
            self.ready.get()
        before = sum(cpu_seconds(p.pid) for p in self.procs)
        go.set()
        if on_start is not None:
            on_start()
        rate = sum(self.out.get() for _ in self.procs) / seconds
        self.last_cpu_s = sum(cpu_seconds(p.pid) for p in self.procs) - before
        return rate

    def close(self) -> None:
        for q in self.jobs:
            q.put(None)
        for p in self.procs:
            p.join()
        self.manager.shutdown()
