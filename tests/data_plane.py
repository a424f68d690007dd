"""The inference service's data-plane processes (inference_processes > 1), seen from a test."""

from __future__ import annotations

import contextlib
from pathlib import Path

import grpc
import psutil

from quakestack.inference.processes import local_channel, worker_socket
from quakestack.stack import Stack
from tests.helpers import wait_for


def data_plane_processes(stack: Stack) -> list[psutil.Process]:
    """The primary's live data-plane processes (a killed one is a zombie until the primary reaps it)."""
    found = []
    for child in psutil.Process(stack.processes["inference"].pid).children():
        with contextlib.suppress(psutil.Error):
            if "services.inference.worker" in " ".join(child.cmdline()):
                found.append(child)
    return found


def ask(process: psutil.Process, method: str) -> bytes:
    """A data-plane process's own answer to a private method (quakestack.inference.processes)."""
    run_dir, index = Path(process.cmdline()[-3]), int(process.cmdline()[-2])
    with local_channel(worker_socket(run_dir, index), 1 << 20) as ch:
        return ch.unary_unary(method)(b"", timeout=5)


def wait_serving(stack: Stack, timeout_s: float = 60.0) -> list[psutil.Process]:
    """Every data-plane process started and answering (it starts its private server after the public one)."""
    from quakestack.inference.processes import SERVED_METHOD

    def serving() -> bool:
        found = data_plane_processes(stack)
        if len(found) != stack.settings.inference_processes - 1:
            return False
        try:
            for process in found:
                ask(process, SERVED_METHOD)
        except (grpc.RpcError, psutil.Error):
            return False
        return True

    assert wait_for(serving, timeout_s, interval_s=0.2), "the data-plane processes did not start"
    return data_plane_processes(stack)
