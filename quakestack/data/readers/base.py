"""The one reader protocol: what a source format tells the CLI, the data service and the pipeline.

A format is a :class:`Reader` subclass whose module exposes ``READER = MyReader()``; the registry
(:mod:`quakestack.data.readers`) finds it. The pipeline calls ``list_items`` (metadata only, cheap)
then ``load_many``; the data service calls ``resolve`` on the files it located; the CLI calls
``sniff``, ``check_inputs`` and ``upload_groups`` on local inputs. Every hook but ``list_items``
and ``load_many`` has a default, so a simple format is two methods and a name. Errors about what a
user gave are ``InvalidArgument`` (the service answers INVALID_ARGUMENT, the CLI prints the message).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from quakestack.errors import InvalidArgument

from ..records import ItemRef, Skipped, TraceRecord
from ..spec import ListOptions, SourceSpec

SIDECARS = (".sha256",)  # files stored beside uploads, never part of a source


class NotThisFormat(InvalidArgument):
    """A local input that is not of the format asked for (the CLI then says which format it looks like)."""

    def __init__(self, path: Path, message: str):
        super().__init__(message)
        self.path = path


@dataclass
class Located:
    """A source's files on local disk as the data service found them (a file, or a folder / key prefix)."""

    display: str  # what messages name: the object key / prefix or the local path
    root: str  # the local folder (prefix) or file
    files: list[str]
    is_dir: bool = False


@dataclass
class UploadGroup:
    """Local files the CLI uploads as one source, and a catalog: ``files`` side by side under one upload
    (each keeps its own name in messages and lineage; the source is the upload's folder), or, with
    ``filename``, concatenated into one object of that name."""

    files: list[Path]
    catalog: Path | None = None
    filename: str | None = None  # concatenate into one object of this name (default: one object per file)


def expand_inputs(inputs: Sequence[str], suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """Files named on a command line; a folder gives its files ending in one of ``suffixes`` (None: all)."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir()
                              if f.is_file() and (suffixes is None or f.name.lower().endswith(suffixes))))
        elif p.is_file():
            out.append(p)
        else:
            raise InvalidArgument(f"{item}: no such file or directory")
    return out


class Reader(ABC):
    """One source format. Subclasses set ``name`` and implement ``list_items`` and ``load_many``."""

    name: ClassVar[str]  # registry name, lower-case: SourceSpec.format, ItemRef.reader, DataSource.format_name
    cli_name: ClassVar[str] = ""  # what `quakestack data ingest --format` calls it (default: name)
    summary: ClassVar[str] = ""  # a few words for hints, e.g. "HDF5 + metadata CSV"
    file_kind: ClassVar[str] = ""  # "a STEAD HDF5/CSV file": for "not ..." messages ("": folders only)
    needs_catalog: ClassVar[bool] = False  # a source must name a catalog file
    catalog_formats: ClassVar[tuple[str, ...]] = ()  # catalog formats it reads (CatalogFormat names)
    default_p_offset_s: ClassVar[float | None] = None  # P offset when a request leaves it open (None: as stored)
    minor_reasons: ClassVar[tuple[str, ...]] = ()  # skip reasons listed after the others in a job's warnings

    @property
    def command_name(self) -> str:
        return self.cli_name or self.name

    # -- the pipeline -------------------------------------------------------------------------
    def check_source(self, source: SourceSpec) -> None:
        """Refuse a SourceSpec this format cannot read (ValueError), before any file is opened."""
        if self.needs_catalog and not source.catalog_path:
            raise ValueError(f"{self.name} source needs catalog_path")
        if self.catalog_formats and source.catalog_path and source.catalog_format.lower() not in self.catalog_formats:
            raise ValueError(f"catalog_format must be one of {self.catalog_formats}, got {source.catalog_format!r}")

    @abstractmethod
    def list_items(self, source: SourceSpec, options: ListOptions) -> list[ItemRef | Skipped]:
        """The source's traces as metadata + locator (no waveform reads); DataSourceError for an unusable source."""

    @abstractmethod
    def load_many(self, items: Sequence[ItemRef]) -> list[TraceRecord | Skipped]:
        """Load items in order (each file opened once); a bad trace becomes a Skipped, never an exception."""

    def load(self, item: ItemRef) -> TraceRecord | Skipped:
        """Load one item (prefer :meth:`load_many` for many)."""
        return self.load_many([item])[0]

    # -- the data service ---------------------------------------------------------------------
    def resolve(self, waveforms: Located, catalog: Located | None, catalog_format: str | None,
                name: str) -> SourceSpec:
        """The SourceSpec over located files (``name`` prefixes messages, e.g. "sources[0]")."""
        files = [p for p in waveforms.files if not p.endswith(SIDECARS)]
        if catalog is not None:
            files = [p for p in files if p not in catalog.files]
        if not files:
            raise InvalidArgument(f"{name}: no {self.name} files in {waveforms.display}")
        cat = self.one_catalog(catalog, name)
        return SourceSpec(self.name, files, catalog_path=cat, catalog_format=catalog_format or "", name=name)

    @staticmethod
    def one_catalog(catalog: Located | None, name: str) -> str | None:
        """The one catalog file of a source (INVALID_ARGUMENT when a prefix holds several)."""
        if catalog is None:
            return None
        if catalog.is_dir and len(catalog.files) != 1:
            raise InvalidArgument(f"{name}: catalog must be one file, got {len(catalog.files)} under "
                                  f"{catalog.display}")
        return catalog.files[0]

    # -- the CLI ------------------------------------------------------------------------------
    def sniff(self, path: Path) -> int:
        """How surely a local file or folder is of this format: 0 not, 1 readable, 2 by name, 3 by structure."""
        return 0

    def guess_catalog_format(self, path: str) -> str | None:
        """The catalog format of a file, from its name (None: not known)."""
        return None

    def check_inputs(self, inputs: Sequence[str], catalog: str | None, window_s: float) -> None:
        """Local inputs before anything is uploaded: they exist and are what this format reads."""
        expand_inputs(inputs)

    def upload_groups(self, inputs: Sequence[str], catalog: str | None) -> list[UploadGroup]:
        """How the CLI uploads local inputs: one source per file by default (with the catalog if given)."""
        cat = Path(catalog) if catalog else None
        return [UploadGroup([f], cat) for f in expand_inputs(inputs) if cat is None or f != cat]

