"""UploadFile: a client stream (header, then chunks) written straight to `raw/<upload-id>/<filename>`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from quakestack import metrics
from quakestack.auth import current_identity
from quakestack.errors import InvalidArgument
from quakestack.layout import upload_key, upload_prefix
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
    upload_id = uuid.uuid4().hex
    key = upload_key(upload_id, header.filename)

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

    try:
        size, digest = store.put_stream(key, chunks())
        if header.size_bytes and size != header.size_bytes:
            raise InvalidArgument(f"{header.filename}: received {size} bytes, header said {header.size_bytes}")
        if header.sha256 and digest != header.sha256.lower():
            raise InvalidArgument(f"{header.filename}: sha256 {digest} differs from the header's {header.sha256}")
    except BaseException:
        store.delete_prefix(upload_prefix(upload_id))
        raise
    metrics.BYTES_STORED.labels("upload").inc(size)
    if identity.limits.stored_bytes is not None:
        ledger.add(identity.id, size)
    return data_pb2.UploadFileResponse(upload_id=upload_id, object_key=key, size_bytes=size, sha256=digest)
