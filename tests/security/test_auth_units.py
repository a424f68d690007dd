"""The auth model's parts on their own: token entries, the bind policy, the rate limiter, reloads."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gateway.auth import GatewayAuth
from quakestack.auth import Authorizer, Identity, Limits, Role, TokenSet, check_bind_policy, parse_entry, token_id
from quakestack.config import ConfigError, load_settings
from quakestack.errors import PermissionDenied, Unauthenticated
from quakestack.quotas import RateLimiter


def test_token_entries() -> None:
    token = parse_entry("ci=s3cr3t:admin rps=2.5 stored_mb=1 queued_jobs=3", "t")
    assert (token.id, token.secret, token.role) == ("ci", b"s3cr3t", Role.ADMIN)
    assert token.limits == Limits(requests_per_s=2.5, stored_bytes=1024 * 1024, queued_jobs=3)
    assert "s3cr3t" not in repr(token)
    legacy = parse_entry("abc:ro", "t")
    assert legacy.role is Role.READONLY and legacy.id == token_id("abc") and "abc" not in legacy.id
    assert parse_entry("plain", "t").role is Role.READWRITE
    assert parse_entry("# comment", "t") is None and parse_entry("   ", "t") is None
    for bad in ("x rps=0", "x quota=1", "x rps=fast", ":admin"):
        with pytest.raises(ConfigError):
            parse_entry(bad, "t")


def test_bind_policy() -> None:
    def settings(**env: str):
        return load_settings({f"QUAKESTACK_{k.upper()}": v for k, v in env.items()})

    assert check_bind_policy(settings(), "data") is None  # loopback default
    assert check_bind_policy(settings(bind_host="::1"), "data") is None
    with pytest.raises(ConfigError, match="refusing to bind 0.0.0.0"):
        check_bind_policy(settings(bind_host="0.0.0.0"), "data")
    assert check_bind_policy(settings(bind_host="0.0.0.0", api_tokens="t"), "data") is None
    assert "OFF" in check_bind_policy(settings(bind_host="0.0.0.0", auth_disabled="true"), "data")


def test_rate_limiter_gives_whole_seconds_to_wait() -> None:
    limiter = RateLimiter()

    slow = Identity("slow", Role.READONLY, Limits(requests_per_s=0.5))
    assert limiter.check(slow) is None
    assert limiter.check(slow) == 2
    assert limiter.check(Identity("free", Role.READONLY)) is None


def test_unknown_rpcs_are_refused_and_open_services_stay_open() -> None:
    auth = Authorizer(TokenSet("adm:admin"), enabled=True)
    with pytest.raises(PermissionDenied, match="no access rule"):
        auth.authorize("quakestack.v1.DataService/NewThing", "Bearer adm")
    with pytest.raises(Unauthenticated):
        auth.authorize("quakestack.v1.DataService/NewThing", None)
    assert auth.authorize("grpc.health.v1.Health/Check", None).id == "anonymous"


def test_whoami_with_auth_off() -> None:
    auth = GatewayAuth(Authorizer(TokenSet(""), enabled=False))
    assert auth.whoami("Bearer anything") == {"id": "anonymous", "role": "anonymous", "authEnabled": False}


def test_token_file_reload_keeps_the_last_good_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("a=one:ro\n")
    tokens = TokenSet("", str(path), check_interval_s=0)
    assert tokens.lookup(b"one").id == "a"
    path.write_text("b=two\nbad entry rps=x\n")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert tokens.lookup(b"one").id == "a" and tokens.lookup(b"two") is None  # unparsable: kept
    path.write_text("b=two\n")
    os.utime(path, (time.time() + 10, time.time() + 10))
    assert tokens.lookup(b"two").id == "b" and tokens.lookup(b"one") is None
    path.unlink()
    assert tokens.lookup(b"two") is None  # a removed file revokes its tokens
    assert tokens.configured  # and auth stays on
