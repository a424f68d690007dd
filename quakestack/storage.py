"""Object storage: one module over the minio client, with key validation and sha256 on every object.

Every byte quakestack keeps (uploads, shards, manifests, checkpoints, models) goes through here, so
keys are validated once, digests are computed once, and storage failures always surface as the
same two errors (Unavailable, NotFound) that the runtime maps to gRPC statuses.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from minio import Minio
from minio.error import S3Error

from quakestack.config import Settings
from quakestack.digests import file_sha256
from quakestack.errors import Conflict, InvalidArgument, NotFound, Unavailable
from quakestack.layout import sha256_sidecar_key, validate_key, validate_name

__all__ = ["ObjectInfo", "ObjectStore", "file_sha256", "validate_key", "validate_name"]

SHA256_META = "sha256"
PART_SIZE = 16 * 1024 * 1024
CHUNK_SIZE = 1024 * 1024
_NOT_FOUND_CODES = {"NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound"}


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None


class ObjectStore:
    """A bucket on an S3-compatible server."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, *,
                 secure: bool = False, region: str = "us-east-1", timeout_s: float = 5.0):
        self.endpoint = endpoint
        self.bucket = bucket
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout_s, read=max(timeout_s, 30.0)),
            retries=urllib3.Retry(total=1, backoff_factor=0.1, status_forcelist=[502, 503, 504]),
            maxsize=32,
        )
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                             region=region, http_client=http)

    @classmethod
    def from_settings(cls, settings: Settings) -> ObjectStore:
        if not settings.s3_endpoint:
            raise Unavailable("no S3 endpoint configured (QUAKESTACK_S3_ENDPOINT)")
        return cls(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_bucket,
                   secure=settings.s3_secure, region=settings.s3_region, timeout_s=settings.s3_timeout_s)

    # -- health -------------------------------------------------------------------------------
    def ensure_bucket(self) -> None:
        """Create the bucket when missing; raises Unavailable when storage cannot be reached."""
        with self._errors("bucket " + self.bucket):
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket)

    def ping(self) -> None:
        """One cheap authenticated request; Unavailable when storage is down or refuses us."""
        with self._errors("bucket " + self.bucket):
            if not self._client.bucket_exists(self.bucket):
                raise Unavailable(f"bucket {self.bucket!r} does not exist")

    # -- writes -------------------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> str:
        """Store data under key; returns its sha256 (also kept as object metadata)."""
        digest = hashlib.sha256(data).hexdigest()
        validate_key(key)
        with self._errors(key):
            self._client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type=content_type,
                                    metadata={SHA256_META: digest})
        return digest

    def put_if(self, key: str, data: bytes, *, etag: str | None = None,
               content_type: str = "application/json") -> str:
        """Conditional write: create only if absent (etag None, `If-None-Match: *`) or replace only the
        version we read (`If-Match: <etag>`). Returns the new etag; Conflict when another writer won.

        minio's public put_object turns unknown headers into user metadata, so the precondition goes
        through its PutObject call with raw headers (SeaweedFS >= 4.x, MinIO and AWS S3 honour both)."""
        validate_key(key)
        headers = {"Content-Type": content_type, "x-amz-meta-" + SHA256_META: hashlib.sha256(data).hexdigest()}
        headers.update({"If-None-Match": "*"} if etag is None else {"If-Match": f'"{etag}"'})
        with self._errors(key):
            result = self._client._put_object(self.bucket, key, data, headers=headers)
        return result.etag

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        """An object and the etag to make a following put_if conditional on it."""
        validate_key(key)
        with self._errors(key):
            response = self._client.get_object(self.bucket, key)
            try:
                return response.read(), response.headers.get("etag", "").strip('"')
            finally:
                response.close()
                response.release_conn()

    def put_json(self, key: str, value: Any) -> str:
        return self.put_bytes(key, json.dumps(value, sort_keys=True, indent=1).encode(),
                              content_type="application/json")

    def put_file(self, key: str, path: str | Path, *, sha256: str | None = None) -> str:
        """Upload a local file in parts; the digest is computed first so it is stored with the object."""
        path = Path(path)
        digest = sha256 or file_sha256(path)
        validate_key(key)
        with self._errors(key), path.open("rb") as fh:
            self._client.put_object(self.bucket, key, fh, path.stat().st_size, part_size=PART_SIZE,
                                    metadata={SHA256_META: digest})
        return digest

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        """Store an iterator of chunks of unknown total length (multipart); returns (size, sha256).

        The digest is only known at the end, so it is written as a sidecar `<key>.sha256` object
        rather than as metadata of the object itself.
        """
        validate_key(key)
        reader = _HashingReader(chunks)
        with self._errors(key):
            self._client.put_object(self.bucket, key, reader, -1, part_size=PART_SIZE)
        digest = reader.sha256.hexdigest()
        self.put_bytes(sha256_sidecar_key(key), digest.encode(), content_type="text/plain")
        return reader.size, digest

    # -- reads --------------------------------------------------------------------------------
    def get_bytes(self, key: str) -> bytes:
        return self.get_with_etag(key)[0]

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Stream a large object without holding it in memory."""
        validate_key(key)
        with self._errors(key):
            response = self._client.get_object(self.bucket, key)
        try:
            with self._errors(key):
                yield from response.stream(chunk_size)
        finally:
            response.close()
            response.release_conn()

    def get_file(self, key: str, path: str | Path, *, sha256: str | None = None) -> str:
        """Download to path atomically (temp file + rename); verifies sha256 when given."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.part")  # ranks on one node may fetch at once
        digest = hashlib.sha256()
        with tmp.open("wb") as fh:
            for chunk in self.iter_chunks(key):
                digest.update(chunk)
                fh.write(chunk)
        if sha256 and digest.hexdigest() != sha256:
            tmp.unlink(missing_ok=True)
            raise Unavailable(f"{key}: sha256 mismatch after download (expected {sha256}, got {digest.hexdigest()})")
        tmp.replace(path)
        return digest.hexdigest()

    def cached_file(self, key: str, path: str | Path, sha256: str | None) -> Path:
        """A local copy of key: reused while its `<file>.sha256` marker names the expected digest,
        otherwise downloaded (verified when the digest is known) and marked."""
        path = Path(path)
        marker = path.with_name(path.name + ".sha256")
        if sha256 and path.is_file() and marker.is_file() and marker.read_text() == sha256:
            return path
        marker.unlink(missing_ok=True)
        digest = self.get_file(key, path, sha256=sha256)
        marker.write_text(digest)
        return path

    def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        with self._errors(key):
            st = self._client.stat_object(self.bucket, key)
        meta = {k.lower(): v for k, v in (st.metadata or {}).items()}
        sha = meta.get("x-amz-meta-" + SHA256_META)
        return ObjectInfo(key=key, size=int(st.size or 0), sha256=sha)

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except NotFound:
            return False
        return True

    def list(self, prefix: str = "", *, recursive: bool = True, start_after: str | None = None) -> list[ObjectInfo]:
        """Objects under prefix (prefix '' lists the bucket), sorted by key; only keys after start_after."""
        if prefix:
            validate_key(prefix)
        with self._errors(prefix or self.bucket):
            objects = list(self._client.list_objects(self.bucket, prefix=prefix, recursive=recursive,
                                                     start_after=start_after))
        return sorted((ObjectInfo(o.object_name, int(o.size or 0), None) for o in objects), key=lambda o: o.key)

    def list_dirs(self, prefix: str) -> list[str]:
        """Immediate 'sub-directory' names under prefix (which must end with '/')."""
        validate_key(prefix)
        with self._errors(prefix):
            objects = self._client.list_objects(self.bucket, prefix=prefix, recursive=False)
            return sorted(o.object_name[len(prefix):].rstrip("/") for o in objects if o.is_dir)

    # -- deletes ------------------------------------------------------------------------------
    def delete(self, key: str) -> None:
        validate_key(key)
        with self._errors(key):
            self._client.remove_object(self.bucket, key)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under prefix; returns the count."""
        keys = [o.key for o in self.list(prefix)]
        for key in keys:
            self.delete(key)
        return len(keys)

    # -- errors -------------------------------------------------------------------------------
    class _ErrorMap:
        def __init__(self, what: str):
            self.what = what

        def __enter__(self) -> None:
            return None

        def __exit__(self, exc_type, exc, tb) -> bool:
            if exc is None or isinstance(exc, InvalidArgument | NotFound | Unavailable | Conflict):
                return False
            if isinstance(exc, S3Error):
                if exc.code == "PreconditionFailed":
                    raise Conflict(f"{self.what}: changed by another writer") from exc
                if exc.code in _NOT_FOUND_CODES:
                    raise NotFound(f"{self.what}: not found") from exc
                raise Unavailable(f"storage refused {self.what}: {exc.code} ({exc.message})") from exc
            if isinstance(exc, urllib3.exceptions.HTTPError | OSError | ValueError):
                raise Unavailable(f"storage unreachable for {self.what}: {type(exc).__name__}") from exc
            return False

    def _errors(self, what: str) -> ObjectStore._ErrorMap:
        return ObjectStore._ErrorMap(what)


class _HashingReader(io.RawIOBase):
    """A file-like view of a chunk iterator that hashes and counts what minio reads."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._buffer = bytearray()
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                break
            self.sha256.update(chunk)
            self.size += len(chunk)
            self._buffer += chunk
        if size < 0 or size >= len(self._buffer):
            data, self._buffer = bytes(self._buffer), bytearray()
        else:
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
        return data
