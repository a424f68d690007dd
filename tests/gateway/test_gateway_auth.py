"""A second gateway with tokens and a 1 MiB body limit, against the stack's backends: 401, 403, 413."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from quakestack.stack import Stack
from quakestack.storage import ObjectStore
from tests.gateway.helpers import GatewayProcess, http

RW, RO = "rw-5ecret-token-a1", "ro-5ecret-token-b2"
FILE_TOKEN = "file-5ecret-token-c3"


@pytest.fixture(scope="module")
def guarded(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    state = tmp_path_factory.mktemp("guarded")
    tokens_file = state / "tokens"
    tokens_file.write_text(f"# one per line\n{FILE_TOKEN}:ro\n")
    with GatewayProcess(stack.settings, state / "gateway.log", QUAKESTACK_API_TOKENS=f"{RW},{RO}:ro",
                        QUAKESTACK_API_TOKENS_FILE=str(tokens_file), QUAKESTACK_MAX_BODY_MB="1") as gateway:
        yield gateway


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_missing_or_invalid_token_is_401(guarded: GatewayProcess) -> None:
    for headers in ({}, _auth("wrong"), {"Authorization": RW}):
        reply = http("GET", guarded.url + "/v1/models", headers=headers)
        assert reply.status == 401 and reply.json()["code"] == "UNAUTHENTICATED"
        assert reply.headers["www-authenticate"].startswith("Bearer")


def test_public_endpoints_need_no_token(guarded: GatewayProcess) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        assert http("GET", guarded.url + path).status == 200, path
    assert http("GET", guarded.url + "/openapi.json").json()["security"] == [{"bearer": []}]


def test_read_only_tokens_may_only_read(guarded: GatewayProcess) -> None:
    for token in (RO, FILE_TOKEN, RW):
        reply = http("GET", guarded.url + "/v1/models", headers=_auth(token))
        assert reply.status not in (401, 403), reply
    for token in (RO, FILE_TOKEN):
        reply = http("POST", guarded.url + "/v1/models", b"{}", {**_auth(token), "Content-Type": "application/json"})
        assert (reply.status, reply.json()["code"]) == (403, "PERMISSION_DENIED")
        reply = http("DELETE", guarded.url + "/v1/datasets/x", headers=_auth(token))
        assert reply.status == 403
    reply = http("POST", guarded.url + "/v1/models", b"{}", {**_auth(RW), "Content-Type": "application/json"})
    assert reply.status not in (401, 403)


def _chunks(total: int, size: int = 65536) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def test_bodies_over_the_limit_are_413(guarded: GatewayProcess, store: ObjectStore) -> None:
    big = b'{"description": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    reply = http("POST", guarded.url + "/v1/datasets", big, {**_auth(RW), "Content-Type": "application/json"})
    assert (reply.status, reply.json()["code"]) == (413, "RESOURCE_EXHAUSTED")
    headers = {**_auth(RW), "Content-Type": "application/octet-stream"}
    reply = http("POST", guarded.url + "/v1/uploads?filename=declared-too-big.bin", b"y" * (2 * 1024 * 1024), headers)
    assert reply.status == 413
    # chunked: no Content-Length, so the gateway must count the bytes as they stream
    reply = http("POST", guarded.url + "/v1/uploads?filename=streamed-too-big.bin", _chunks(3 * 1024 * 1024),
                 {**headers, "Transfer-Encoding": "chunked"})
    assert reply.status == 413
    keys = [o.key for o in store.list("raw/")]
    assert not any(k.endswith(("/streamed-too-big.bin", "/declared-too-big.bin")) for k in keys)
    reply = http("POST", guarded.url + "/v1/uploads?filename=small.bin", _chunks(500_000),
                 {**headers, "Transfer-Encoding": "chunked"})
    assert reply.status == 200 and reply.json()["sizeBytes"] == "500000"


def test_tokens_never_logged(guarded: GatewayProcess, stack: Stack) -> None:
    http("GET", guarded.url + "/v1/models", headers=_auth(RW))
    http("GET", guarded.url + "/v1/models", headers=_auth("wrong-5ecret"))
    log = Path(guarded.log_path).read_text()
    assert '"route": "/v1/models"' in log
    for secret in (RW, RO, FILE_TOKEN, "wrong-5ecret", "5ecret"):
        assert secret not in log
