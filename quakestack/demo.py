"""The end-to-end demo behind the README's main-job command, on a fresh embedded stack.

It grows with the platform: today it brings the stack up, checks every service's health and
reflection through a real gRPC client, round-trips a file through the data service, and stops.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from quakestack.client import channel, health_status, reflected_services
from quakestack.config import Settings
from quakestack.stack import SERVICES, Stack, with_free_ports
from quakestack.v1 import data_pb2, data_pb2_grpc

EXPECTED_SERVICES = {
    "data": ["quakestack.v1.DataService"],
    "trainer": ["quakestack.v1.ModelRegistry", "quakestack.v1.TrainerService"],
    "inference": ["quakestack.v1.InferenceService"],
}


def _upload_roundtrip(addr: str) -> str:
    payload = b"quakestack demo upload\n" * 1000
    requests = [data_pb2.UploadFileRequest(header=data_pb2.UploadFileHeader(
        filename="demo.txt", size_bytes=len(payload), sha256=hashlib.sha256(payload).hexdigest()))]
    requests += [data_pb2.UploadFileRequest(chunk=payload[i:i + 4096]) for i in range(0, len(payload), 4096)]
    with channel(addr) as ch:
        response = data_pb2_grpc.DataServiceStub(ch).UploadFile(iter(requests), timeout=30)
    return response.object_key


def run_demo(settings: Settings, workdir: Path) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    settings = with_free_ports(settings).replace(storage_dir=str(workdir / "s3"))
    started = time.monotonic()
    print(f"[demo] starting the stack in {workdir} ...", flush=True)
    stack = Stack(settings, state_dir=workdir)
    failures = 0
    try:
        endpoints = stack.start()
        print(f"[demo] stack up in {time.monotonic() - started:.1f}s; object storage at {endpoints.s3}")
        print(f"[demo] {'service':<10} {'address':<22} {'health':<12} services (reflection)")
        for name in SERVICES:
            addr = endpoints.grpc[name]
            with channel(addr) as ch:
                status = health_status(ch)
                listed = reflected_services(ch)
            ok = status == "SERVING" and all(s in listed for s in EXPECTED_SERVICES[name])
            failures += not ok
            shown = ", ".join(s for s in listed if s.startswith("quakestack"))
            print(f"[demo] {name:<10} {addr:<22} {status:<12} {shown}")
        key = _upload_roundtrip(endpoints.grpc["data"])
        print(f"[demo] uploaded a file through DataService.UploadFile -> {key}")
        print(f"[demo] gateway {endpoints.gateway}/healthz, logs in {stack.log_dir}")
    finally:
        codes = stack.stop()
        print("[demo] stopped: " + ", ".join(f"{n} exit {c}" for n, c in codes.items()))
        failures += sum(1 for c in codes.values() if c != 0)
    print(f"[demo] {'OK' if not failures else f'{failures} FAILURES'} in {time.monotonic() - started:.1f}s")
    return 1 if failures else 0
