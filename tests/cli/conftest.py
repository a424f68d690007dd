"""CLI tests: `quakestack.cli.main([...])` against the session stack, addresses given as flags."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from quakestack.cli import main
from quakestack.stack import Stack
from tests.datasets import publish_synthetic_dataset

SMALL_DATASET = dict(n_events=120, n_noise=12, seed=3, length_s=60.0)
FAST_HP = ["n_samples=3000", "learning_rate=0.01", "batch_size=32"]


@pytest.fixture(autouse=True)
def _no_quakestack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads QUAKESTACK_* from the environment: start from none, as on a fresh shell."""
    import os

    for key in [k for k in os.environ if k.startswith("QUAKESTACK_")]:
        monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def addresses(stack: Stack) -> list[str]:
    s = stack.settings
    return ["--data", s.data_addr, "--trainer", s.trainer_addr, "--inference", s.inference_addr]


@pytest.fixture
def cli(addresses, capsys) -> Callable[..., tuple[int, str, str]]:
    """Run one command; returns (exit code, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*argv, *addresses])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def cli_json(cli) -> Callable[..., object]:
    """Run one command with --json; exit 0 expected; returns the parsed document (or list of JSON lines)."""

    def run(*argv: str) -> object:
        code, out, err = cli(*argv, "--json")
        assert code == 0, err
        lines = [json.loads(line) for line in out.splitlines() if line.strip()]
        return lines[0] if len(lines) == 1 else lines

    return run


@pytest.fixture(scope="session")
def small_dataset(store, metadata, tmp_path_factory) -> str:
    publish_synthetic_dataset(store, metadata, "cli-small", Path(tmp_path_factory.mktemp("cli-datasets")),
                              **SMALL_DATASET)
    return "cli-small"
