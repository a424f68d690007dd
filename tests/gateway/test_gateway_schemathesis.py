"""schemathesis against /openapi.json: no 5xx (501 UNIMPLEMENTED aside) and no schema violation.

It runs on a stack of its own: generated requests create uploads, datasets and jobs that must not
leak into the shared session stack other tests count on.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from quakestack.config import load_settings
from quakestack.stack import Stack, with_free_ports

SEED = 20260101
# 501 is how an RPC that is not implemented yet answers (documented as the default error response);
# any other 5xx, 503 from a backend included, is a failure: the stack is up.
CONFIG = '[checks.not_a_server_error]\nexpected-statuses = ["2xx", "3xx", "4xx", "501"]\n'
RUN_SCHEMATHESIS = "from schemathesis.cli import schemathesis; schemathesis()"


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("schemathesis-stack")
    settings = with_free_ports(load_settings({})).replace(storage_dir=str(state / "s3"),
                                                          cache_dir=str(state / "cache"))
    running = Stack(settings, state_dir=state)
    running.start()
    yield running
    running.stop()


@pytest.mark.timeout(180)
def test_schemathesis_finds_no_server_error_or_schema_violation(own_stack: Stack, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [sys.executable, "-c", RUN_SCHEMATHESIS, "--config-file", str(config), "run",
               own_stack.endpoints().gateway + "/openapi.json", "--seed", str(SEED), "--max-examples", "10",
               "--mode", "positive", "--phases", "examples,coverage,fuzzing",
               "--checks", "not_a_server_error,response_schema_conformance", "--workers", "2",
               "--generation-database", "none", "--request-timeout", "20", "--no-color"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "Tested: 35" in output or "passed" in output
