"""Shared fixtures: one real stack per test session (real weed, real gRPC servers, free ports)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from quakestack.client import channel
from quakestack.config import Settings, load_settings
from quakestack.stack import Stack, with_free_ports
from quakestack.storage import ObjectStore

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def fresh_settings(state_dir: Path, **changes) -> Settings:
    """Defaults (not the caller's environment) with free ports and a private storage directory."""
    return with_free_ports(load_settings({})).replace(storage_dir=str(state_dir / "s3"),
                                                      cache_dir=str(state_dir / "cache"), **changes)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir = tmp_path_factory.mktemp("stack")
    running = Stack(fresh_settings(state_dir, health_interval_s=0.5, data_allowed_dirs=(state_dir / "allowed",)),
                    state_dir=state_dir)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def store(stack: Stack) -> ObjectStore:
    return ObjectStore.from_settings(stack.settings)


@pytest.fixture(scope="session")
def data_channel(stack: Stack) -> Iterator[grpc.Channel]:
    with channel(stack.settings.data_addr) as ch:
        yield ch


@pytest.fixture(scope="session")
def trainer_channel(stack: Stack) -> Iterator[grpc.Channel]:
    with channel(stack.settings.trainer_addr) as ch:
        yield ch


@pytest.fixture(scope="session")
def inference_channel(stack: Stack) -> Iterator[grpc.Channel]:
    with channel(stack.settings.inference_addr) as ch:
        yield ch
