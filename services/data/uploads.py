"""UploadFile: a client stream (header, then chunks) written straight to `raw/<upload-id>/<filename>`."""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Iterator

from quakestack import metrics
from quakestack.auth import current_identity
from quakestack.errors import AlreadyExists, InvalidArgument, NotFound
from quakestack.layout import archive_key, sha256_sidecar_key, upload_key, upload_prefix
from quakestack.metadata.usage import UsageLedger
from quakestack.quotas import storage_quota_guard
from quakestack.storage import ObjectStore
from quakestack.v1 import data_pb2


def store_upload(store: ObjectStore, ledger: UsageLedger, requests: Iterator[data_pb2.UploadFileRequest],
                 max_bytes: int) -> data_pb2.UploadFileResponse:
    """Stream the chunks to storage without holding the file in memory; check size, sha256 and the
    caller's storage quota (an upload that crosses it stops there and nothing of it is kept)."""
    identity = current_identity()
    within_quota = storage_quota_guard(ledger, identity)
    first = next(requests, None)
    if first is None or first.WhichOneof("part") != "header":
        raise InvalidArgument("the first UploadFile message must be a header with the file name")
    header = first.header

    def chunks() -> Iterator[bytes]:
        total = 0
        for request in requests:
            if request.WhichOneof("part") != "chunk":
                raise InvalidArgument("only one header is allowed, at the start of an upload")
            total += len(request.chunk)
            if total > max_bytes:
                raise InvalidArgument(f"upload exceeds {max_bytes} bytes")
            within_quota(total)
            yield request.chunk

    if header.archive_key:
        response = _store_archive_file(store, header, chunks())
    else:
        response = _store_raw(store, header, chunks())
    if response.already_stored:
        return response
    metrics.BYTES_STORED.labels("upload").inc(response.size_bytes)
    if identity.limits.stored_bytes is not None:
        ledger.add(identity.id, response.size_bytes)
    return response


def _check(header: data_pb2.UploadFileHeader, name: str, size: int, digest: str) -> None:
    if header.size_bytes and size != header.size_bytes:
        raise InvalidArgument(f"{name}: received {size} bytes, header said {header.size_bytes}")
    if header.sha256 and digest != header.sha256.lower():
        raise InvalidArgument(f"{name}: sha256 {digest} differs from the header's {header.sha256}")


def _store_raw(store: ObjectStore, header: data_pb2.UploadFileHeader,
               chunks: Iterator[bytes]) -> data_pb2.UploadFileResponse:
    """`raw/<upload id>/<filename>` (a new upload, or beside an earlier upload's files), streamed (multipart;
    the digest as a sidecar). A failed file leaves nothing of itself behind."""
    joining = bool(header.upload_id)
    upload_id = header.upload_id or uuid.uuid4().hex
    key = upload_key(upload_id, header.filename)
    if joining and store.exists(key):
        raise AlreadyExists(f"upload {upload_id} already holds a file named {header.filename!r}")
    try:
        size, digest = store.put_stream(key, chunks)
        _check(header, header.filename, size, digest)
    except BaseException:
        if joining:
            store.delete(key)
            store.delete(sha256_sidecar_key(key))
        else:
            store.delete_prefix(upload_prefix(upload_id))
        raise
    return data_pb2.UploadFileResponse(upload_id=upload_id, object_key=key, size_bytes=size, sha256=digest)


def _store_archive_file(store: ObjectStore, header: data_pb2.UploadFileHeader,
                        chunks: Iterator[bytes]) -> data_pb2.UploadFileResponse:
    """One file of an archive at its own key: kept when already stored with the same sha256 (a resumed
    upload), refused when other bytes are there; written whole with its sha256 as object metadata (an SDS
    tree gets no sidecar objects), so the object is either absent or complete."""
    key = archive_key(header.archive_key)
    if len(header.sha256) != 64:
        raise InvalidArgument(f"{key}: an archive upload needs the file's sha256 (64 hex digits) in the header")
    try:
        stored = store.stat(key)
    except NotFound:
        stored = None
    if stored is not None:
        if stored.sha256 == header.sha256.lower():
            return data_pb2.UploadFileResponse(object_key=key, size_bytes=stored.size, sha256=stored.sha256,
                                               already_stored=True)
        raise AlreadyExists(f"{key} already holds other bytes (sha256 {stored.sha256 or 'unknown'}); delete it "
                            "or upload under another prefix")
    with tempfile.NamedTemporaryFile(prefix="quakestack-archive-upload-") as spool:
        digest, size = hashlib.sha256(), 0
        for chunk in chunks:
            spool.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        spool.flush()
        _check(header, key, size, digest.hexdigest())
        store.put_file(key, spool.name, sha256=digest.hexdigest())
    return data_pb2.UploadFileResponse(object_key=key, size_bytes=size, sha256=digest.hexdigest())
