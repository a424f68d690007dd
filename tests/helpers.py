"""Test helpers shared by several test modules (real processes, real sockets)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from quakestack.v1 import data_pb2


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def sample_value(text: str, name: str, **labels: str) -> float:
    """Value of one sample in a Prometheus exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def json_log_lines(path: Path) -> list[dict]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return lines


def wait_for(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def upload_requests(filename: str, payload: bytes, chunk: int = 65536,
                    pause_s: float = 0.0) -> Iterator[data_pb2.UploadFileRequest]:
    yield data_pb2.UploadFileRequest(header=data_pb2.UploadFileHeader(filename=filename, size_bytes=len(payload)))
    for start in range(0, len(payload), chunk):
        if pause_s:
            time.sleep(pause_s)
        yield data_pb2.UploadFileRequest(chunk=payload[start:start + chunk])
