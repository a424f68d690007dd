"""The benchmarks' own stack starts and serves: a copy of the start sequence once lost the admin's
bucket creation, so every benchmark's service stayed NOT_SERVING and no figure could be taken."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from bench.support.stack import running_stack
from quakestack.client import health_status, settings_channel

BENCHES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "bench").glob("*.py"))


def test_bench_stack_serves() -> None:
    with running_stack() as stack:
        with settings_channel(stack.settings, stack.settings.inference_addr) as ch:
            assert health_status(ch) == "SERVING"
        assert set(stack.processes) == {"inference"}


@pytest.mark.parametrize("name", BENCHES)
def test_every_bench_imports(name: str) -> None:
    assert callable(importlib.import_module(f"bench.{name}").main)
