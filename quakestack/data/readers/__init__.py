"""The reader registry: every source format the CLI, the data service and the pipeline know.

A format is one module exposing ``READER``, an instance of :class:`~.base.Reader`. Built-in formats
are the lines of ``BUILTIN``; plugins come from the ``quakestack.readers`` entry-point group (a
package's ``[project.entry-points."quakestack.readers"] toy = "toy_pkg.reader"``) and from the
modules ``QUAKESTACK_DATA_READERS`` names, so a format added by a user reaches the data service and
its render workers without a change here. Nothing else in the code base names a format.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from ..records import ItemRef, Skipped, TraceRecord
from .base import Located, Reader, UploadGroup, expand_inputs

BUILTIN: dict[str, str] = {
    "stead": "quakestack.data.readers.stead",
    "seisbench": "quakestack.data.readers.seisbench",
    "waveform_catalog": "quakestack.data.readers.waveform_catalog",
}
DEFAULT_FORMAT = "stead"  # what `quakestack data ingest --keys` assumes without --format
ENTRY_POINT_GROUP = "quakestack.readers"
SETTING_ENV = "QUAKESTACK_DATA_READERS"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_registry: dict[str, Reader] | None = None


def _reader_of(target: str, origin: str) -> Reader:
    """``module`` or ``module:attribute`` -> its Reader (``READER`` by default)."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{origin}: cannot import reader module {module_name!r}: {exc}") from None
    reader = getattr(module, attr or "READER", None)
    if not isinstance(reader, Reader):
        raise ValueError(f"{origin}: {target} does not define {attr or 'READER'} = <a Reader instance>")
    if not _NAME.match(getattr(reader, "name", "") or ""):
        raise ValueError(f"{origin}: {target}: reader name must be lower-case letters, digits and '_'")
    return reader


def plugin_modules() -> tuple[str, ...]:
    """The modules QUAKESTACK_DATA_READERS names (parsed by its declared setting)."""
    from quakestack.config import SETTINGS_BY_ENV

    setting = SETTINGS_BY_ENV[SETTING_ENV]
    return setting.parse(os.environ.get(SETTING_ENV, setting.default))


def _discover() -> dict[str, Reader]:
    found: dict[str, Reader] = {}

    def add(reader: Reader, origin: str) -> None:
        taken = {r.command_name for r in found.values()} | set(found)
        if reader.name in found or reader.command_name in taken:
            raise ValueError(f"{origin}: source format {reader.name!r} is already registered")
        found[reader.name] = reader

    for name, module in BUILTIN.items():
        add(_reader_of(module, f"built-in reader {name}"), f"built-in reader {name}")
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        add(_reader_of(ep.value, f"entry point {ep.name}"), f"entry point {ep.name} ({ENTRY_POINT_GROUP})")
    for module in plugin_modules():
        add(_reader_of(module, SETTING_ENV), f"{SETTING_ENV} module {module}")
    return found


def registry() -> dict[str, Reader]:
    """Every registered reader by name, built-ins first (loaded once per process)."""
    global _registry
    if _registry is None:
        _registry = _discover()
    return _registry


def reload() -> dict[str, Reader]:
    """Discover again (after QUAKESTACK_DATA_READERS or installed entry points changed)."""
    global _registry
    _registry = None
    return registry()


def names() -> list[str]:
    return list(registry())


def get_reader(name: str) -> Reader:
    """The reader registered under ``name`` (ValueError for an unknown format)."""
    try:
        return registry()[name]
    except KeyError:
        raise ValueError(f"unknown source format {name!r}; known: {sorted(registry())}") from None


def by_command_name(name: str) -> Reader:
    """The reader the CLI's ``--format NAME`` means (its cli_name, or its registry name)."""
    for reader in registry().values():
        if name in (reader.command_name, reader.name):
            return reader
    raise ValueError(f"unknown format {name!r} ({', '.join(r.command_name for r in registry().values())})")


def guess(path: Path) -> Reader | None:
    """The reader most sure of a local file or folder (ties: the first registered); None if none claims it."""
    best, score = None, 0
    for reader in registry().values():
        got = reader.sniff(path)
        if got > score:
            best, score = reader, got
    return best


def catalog_formats() -> list[str]:
    """Every catalog format some reader reads, in first-seen order."""
    return list(dict.fromkeys(f for r in registry().values() for f in r.catalog_formats))


def minor_reasons() -> frozenset[str]:
    return frozenset(x for r in registry().values() for x in r.minor_reasons)


def load_items(items: Sequence[ItemRef]) -> list[TraceRecord | Skipped]:
    """Load items of any formats, in order; each reader batches its own items (one open per file)."""
    out: list[TraceRecord | Skipped | None] = [None] * len(items)
    by_reader: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_reader.setdefault(item.reader, []).append(i)
    for name, idx in by_reader.items():
        loaded = get_reader(name).load_many([items[i] for i in idx])
        for i, rec in zip(idx, loaded, strict=True):
            out[i] = rec
    return out  # type: ignore[return-value]


__all__ = ["BUILTIN", "Located", "Reader", "UploadGroup", "by_command_name", "expand_inputs", "get_reader",
           "guess", "load_items", "names", "registry", "reload"]
