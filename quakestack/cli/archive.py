"""`quakestack archive upload DIR --prefix archives/NAME`: a local SDS tree into object storage, by the
platform's own means (DataService.UploadFile with an archive key), resumable and checked by sha256, so
that `catalog build --sds-prefix` has something to read."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

from quakestack.cli.common import CliError, Ctx
from quakestack.cli.data import CHUNK, stub
from quakestack.cli.progress import ProgressBar, human_bytes
from quakestack.errors import InvalidArgument
from quakestack.layout import archive_key
from quakestack.v1 import data_pb2


def _requests(key: str, path: Path, size: int, sha256: str) -> Iterator[data_pb2.UploadFileRequest]:
    yield data_pb2.UploadFileRequest(header=data_pb2.UploadFileHeader(
        filename=path.name, size_bytes=size, sha256=sha256, archive_key=key))
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            yield data_pb2.UploadFileRequest(chunk=block)


def upload_archive(ctx: Ctx, root: str | Path, prefix: str) -> dict:
    """Survey the tree, say what it holds and what is skipped (and why), upload what is not stored yet."""
    from quakestack.archive.survey import survey

    root = Path(root)
    if not root.is_dir():
        raise CliError(f"{root}: no such directory")
    prefix = prefix.strip("/")
    try:
        archive_key(f"{prefix}/YEAR/file")
    except InvalidArgument as exc:
        raise CliError(f"--prefix {prefix!r}: must lie under archives/, e.g. archives/xn/sds ({exc})") from None
    found = survey(root)
    for relative, why in found.skipped.items():
        ctx.note(f"skipped {relative}: {why}")
    if not found.files:
        raise CliError(f"{root} holds no SDS waveform file (YEAR/NET/STA/CHAN.TYPE/NET.STA.LOC.CHAN.TYPE.YEAR.DOY)")
    bar = ProgressBar("archive upload", ctx.stderr, enabled=not ctx.quiet and not ctx.as_json)
    sent = stored = 0
    started = time.monotonic()
    try:
        for i, f in enumerate(found.files):
            response = stub(ctx).UploadFile(_requests(f"{prefix}/{f.relative}", f.path, f.size, f.sha256),
                                            timeout=max(60.0, f.size / 2e6))
            if response.already_stored:
                stored += 1
            else:
                sent += 1
            bar.update(i + 1, len(found.files), f"{i + 1}/{len(found.files)} files, "
                       f"{human_bytes(sum(x.size for x in found.files[:i + 1]))}")
    finally:
        bar.close()
    summary = {"prefix": prefix, "uploaded": sent, "already_stored": stored,
               "seconds": round(time.monotonic() - started, 2), **found.to_dict()}
    ctx.emit(summary)
    days = sorted(found.days)
    ctx.say(f"archive {prefix}: {len(found.files)} files ({human_bytes(found.size)}), {sent} uploaded, "
            f"{stored} already stored (same sha256)")
    ctx.say(f"  {len(found.stations)} stations, {len(found.channels)} channels, {len(days)} days "
            f"({days[0]} to {days[-1]}), {found.gaps} gaps ({found.gap_seconds:.1f} s)"
            + (f"; {len(found.skipped)} files skipped" if found.skipped else ""))
    ctx.say(f"  quakestack catalog build --sds-prefix {prefix} ...")
    return summary


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    archive = sub.add_parser("archive", help="waveform archives in object storage: upload an SDS tree")
    asub = archive.add_subparsers(dest="archive_command", required=True)
    p = asub.add_parser("upload", parents=[common], help="upload a local SDS tree (resumable, checked by sha256)")
    p.add_argument("directory", help="the SDS tree's root (the folder holding the YEAR folders)")
    p.add_argument("--prefix", required=True,
                   help="where it goes in the bucket, under archives/ (e.g. archives/xn/sds)")
    p.set_defaults(func=lambda ctx, a: upload_archive(ctx, a.directory, a.prefix))
