"""A fresh local stack for a benchmark: embedded S3 and the inference service only, or the services a
benchmark names (the others and the gateway take no part and would only compete for the CPU), stopped
on exit."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from quakestack.config import load_settings
from quakestack.metadata.database import Database
from quakestack.stack import Stack, with_free_ports


@contextlib.contextmanager
def running_stack(names: tuple[str, ...] = ("inference",), **changes) -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="quakestack-bench-") as tmp:
        state = Path(tmp)
        settings = with_free_ports(load_settings({})).replace(storage_dir=str(state / "s3"),
                                                              cache_dir=str(state / "cache"), **changes)
        stack = Stack(settings, state_dir=state)
        try:
            stack.start(90.0, names=names)
            if not names:  # no service brought the metadata schema up: the benchmark's own processes need it
                database = Database.from_settings(settings)
                try:
                    database.upgrade()
                finally:
                    database.close()
            yield stack
        finally:
            stack.stop()
