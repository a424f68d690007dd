"""Object storage against the real SeaweedFS of the session stack."""

from __future__ import annotations

import hashlib
import os

import pytest

from quakestack.errors import InvalidArgument, NotFound, Unavailable
from quakestack.storage import ObjectStore, validate_key, validate_name


@pytest.mark.parametrize("key", ["", "/etc/passwd", "a/../b", "..", "a//b", "./a", "a/./b", "a\\b", "\\x"])
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_key(key)


@pytest.mark.parametrize("name", ["", "..", "a/b", "-x", "a" * 129, "a..b"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_name(name)


def test_put_get_with_sha256(store: ObjectStore) -> None:
    data = os.urandom(1000)
    digest = store.put_bytes("tests/storage/blob.bin", data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.get_bytes("tests/storage/blob.bin") == data
    info = store.stat("tests/storage/blob.bin")
    assert info.size == 1000 and info.sha256 == digest


def test_streaming_large_object(store: ObjectStore, tmp_path) -> None:
    block = os.urandom(1 << 20)
    size, digest = store.put_stream("tests/storage/large.bin", (block for _ in range(20)))
    assert size == 20 << 20
    assert digest == hashlib.sha256(block * 20).hexdigest()
    assert store.get_bytes("tests/storage/large.bin.sha256").decode() == digest
    assert sum(len(c) for c in store.iter_chunks("tests/storage/large.bin")) == size
    target = tmp_path / "large.bin"
    assert store.get_file("tests/storage/large.bin", target, sha256=digest) == digest
    with pytest.raises(Unavailable, match="sha256 mismatch"):
        store.get_file("tests/storage/large.bin", tmp_path / "bad.bin", sha256="0" * 64)
    assert not (tmp_path / "bad.bin").exists()


def test_file_upload_and_listing(store: ObjectStore, tmp_path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 5000)
    store.put_file("tests/list/a/f.bin", path)
    store.put_bytes("tests/list/b/g.bin", b"y")
    assert [o.key for o in store.list("tests/list/")] == ["tests/list/a/f.bin", "tests/list/b/g.bin"]
    assert store.list_dirs("tests/list/") == ["a", "b"]
    assert store.delete_prefix("tests/list/") == 2
    assert store.list("tests/list/") == []


def test_missing_object_is_not_found(store: ObjectStore) -> None:
    with pytest.raises(NotFound):
        store.get_bytes("tests/does/not/exist")
    assert not store.exists("tests/does/not/exist")


def test_wrong_credentials_are_unavailable(store: ObjectStore) -> None:
    wrong = ObjectStore(store.endpoint, "wrong-key", "wrong-secret", store.bucket)
    with pytest.raises(Unavailable, match="refused"):
        wrong.ping()


def test_unreachable_endpoint_is_unavailable() -> None:
    nowhere = ObjectStore("127.0.0.1:9", "k", "s", "quakestack", timeout_s=0.5)
    with pytest.raises(Unavailable, match="unreachable"):
        nowhere.ping()
