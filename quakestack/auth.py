"""One authentication and authorisation model for every gRPC service and the REST gateway.

Tokens come from `QUAKESTACK_API_TOKENS` and/or `QUAKESTACK_API_TOKENS_FILE` (re-read when the file
changes, so tokens rotate without a restart). One entry is `[id=]secret[:ro|:rw|:admin]` followed by
optional per-token limits (`rps=10 stored_mb=500 queued_jobs=2`); a bare `secret` is read-write, as
before. Every RPC has a required role in `RPC_ROLES`; an RPC missing from the table is refused
(fail closed), and a test enumerates the descriptors so a new RPC cannot be forgotten. The token id
(never the secret) is what logs, audit events and quotas name.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import ipaddress
import threading
import time
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import structlog

from quakestack.config import ConfigError, Settings
from quakestack.errors import PermissionDenied, Unauthenticated

log = structlog.get_logger()


class Role(IntEnum):
    """Ordered: a role may do everything the roles below it may."""

    READONLY = 1
    READWRITE = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


R, W, A = Role.READONLY, Role.READWRITE, Role.ADMIN
# Required role per RPC ("package.Service/Method"). Reads, Predict and Annotate: read-only; what
# creates or changes state: read-write; deletes and model load/unload: admin.
RPC_ROLES: dict[str, Role] = {
    **{f"quakestack.v1.DataService/{m}": role for m, role in {
        "UploadFile": W, "CreateDataset": W, "GetDatasetJob": R, "ListDatasetJobs": R, "WatchDatasetJob": R,
        "CancelDatasetJob": W, "GetDataset": R, "ListDatasets": R, "DescribeDataset": R, "SampleDataset": R,
        "DeleteDataset": A,
    }.items()},
    **{f"quakestack.v1.CatalogService/{m}": role for m, role in {
        "CreateAnnotationJob": W, "GetAnnotationJob": R, "ListAnnotationJobs": R, "WatchAnnotationJob": R,
        "CancelAnnotationJob": W, "GetCatalog": R, "EvaluateCatalog": W, "DownloadCatalogArtifact": R,
    }.items()},
    **{f"quakestack.v1.TrainerService/{m}": role for m, role in {
        "ListArchitectures": R, "CreateTrainingJob": W, "GetTrainingJob": R, "ListTrainingJobs": R,
        "UpdateTrainingJob": W, "StopTrainingJob": W, "CancelTrainingJob": W, "ResumeTrainingJob": W,
        "StreamTrainingProgress": R, "ListCheckpoints": R, "DownloadCheckpoint": R, "DownloadArtifact": R,
        "EvaluateModel": W,
    }.items()},
    **{f"quakestack.v1.ModelRegistryService/{m}": role for m, role in {
        "RegisterModel": W, "ListModels": R, "GetModel": R, "GetModelVersion": R, "DeleteModelVersion": A,
        "SetModelAlias": W, "DeleteModelAlias": A, "ImportModel": W,
    }.items()},
    **{f"quakestack.v1.SweepService/{m}": role for m, role in {
        "CreateSweep": W, "GetSweep": R, "ListSweeps": R, "WatchSweep": R, "UpdateSweep": W, "StopSweep": W,
        "CancelSweep": W, "CompareRuns": R,
    }.items()},
    **{f"quakestack.v1.InferenceService/{m}": role for m, role in {
        "LoadModel": A, "UnloadModel": A, "ListLoadedModels": R, "Predict": R, "Annotate": R, "AnnotateFile": R,
        "SubmitFeedback": W, "ExportModel": R,  # an export reads a registered version, like a download
    }.items()},
    # The Open Inference Protocol (KServe v2), served by the inference service.
    **{f"inference.GRPCInferenceService/{m}": role for m, role in {
        "ServerLive": R, "ServerReady": R, "ModelReady": R, "ServerMetadata": R, "ModelMetadata": R,
        "ModelInfer": R, "RepositoryIndex": R, "RepositoryModelLoad": A, "RepositoryModelUnload": A,
    }.items()},
}
# Services anyone may call: load balancers probe health; reflection is switched off by a setting.
OPEN_SERVICES = frozenset({"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                           "grpc.reflection.v1.ServerReflection"})
ROLE_SUFFIXES = {"ro": R, "readonly": R, "rw": W, "readwrite": W, "admin": A}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Limits:
    """Per-token quotas; None means unlimited."""

    requests_per_s: float | None = None
    stored_bytes: int | None = None
    queued_jobs: int | None = None


@dataclass(frozen=True)
class Token:
    id: str
    secret: bytes = field(repr=False)
    role: Role
    limits: Limits = Limits()


@dataclass(frozen=True)
class Identity:
    """Who a call runs as: the token's id and role (or anonymous when auth is off)."""

    id: str
    role: Role | None
    limits: Limits = Limits()


ANONYMOUS = Identity("anonymous", None)
_current: contextvars.ContextVar[Identity] = contextvars.ContextVar("quakestack_identity", default=ANONYMOUS)


def current_identity() -> Identity:
    """The caller of the RPC this thread is serving (set by the server interceptor)."""
    return _current.get()


def set_identity(identity: Identity) -> contextvars.Token:
    return _current.set(identity)


def reset_identity(token: contextvars.Token) -> None:
    _current.reset(token)


def token_id(secret: str) -> str:
    """A stable, non-reversible name for an unnamed token (a short hash prefix)."""
    return "tok-" + hashlib.sha256(secret.encode()).hexdigest()[:10]


_LIMIT_OPTIONS = {"rps": ("requests_per_s", float, 1), "stored_mb": ("stored_bytes", float, 1024 * 1024),
                  "stored_bytes": ("stored_bytes", int, 1), "queued_jobs": ("queued_jobs", int, 1)}


def _limits(options: list[str], where: str) -> Limits:
    values: dict[str, float | int] = {}
    for option in options:
        key, _, raw = option.partition("=")
        if key not in _LIMIT_OPTIONS:
            raise ConfigError(f"{where}: unknown token option {key!r} (rps=N, stored_mb=N, queued_jobs=N)")
        name, parse, scale = _LIMIT_OPTIONS[key]
        try:
            value = parse(raw)
        except ValueError:
            raise ConfigError(f"{where}: token option {key} needs a number") from None
        if not value > 0:
            raise ConfigError(f"{where}: token option {key} must be > 0")
        values[name] = value * scale if name == "requests_per_s" else int(value * scale)
    return Limits(**values)


def parse_entry(entry: str, where: str) -> Token | None:
    """`[id=]secret[:role] [option=value ...]` → a Token (None for blanks and comments)."""
    words = entry.split()
    if not words or words[0].startswith("#"):
        return None
    head, options = words[0], words[1:]
    name, sep, secret = head.partition("=")
    if not sep:
        name, secret = "", head
    role = W
    base, colon, suffix = secret.rpartition(":")
    if colon and suffix.lower() in ROLE_SUFFIXES:
        secret, role = base, ROLE_SUFFIXES[suffix.lower()]
    if not secret:
        raise ConfigError(f"{where}: a token entry has no secret")
    return Token(name or token_id(secret), secret.encode(), role, _limits(options, where))


def parse_tokens(text: str, separator: str, where: str) -> list[Token]:
    return [t for t in (parse_entry(item, where) for item in text.split(separator)) if t is not None]


class TokenSet:
    """The configured tokens; the file is re-read (at most once a second) when its mtime or size changes.

    A file that cannot be parsed keeps the last good tokens and logs: a half-written rotation never
    locks everybody out nor lets anybody in. A removed file revokes its tokens (auth stays on).
    """

    def __init__(self, env_text: str = "", file_path: str = "", *, check_interval_s: float = 1.0):
        self.env_tokens = parse_tokens(env_text, ",", "QUAKESTACK_API_TOKENS")
        self.file_path = Path(file_path) if file_path else None
        self.check_interval_s = check_interval_s
        self._file_tokens: list[Token] = []
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        if self.file_path is not None:
            self._reload(initial=True)

    @property
    def configured(self) -> bool:
        """Auth is on as soon as tokens are configured at all (an emptied file then refuses everyone)."""
        return bool(self.env_tokens) or self.file_path is not None

    def _reload(self, initial: bool = False) -> None:
        assert self.file_path is not None
        try:
            stat = self.file_path.stat()
        except FileNotFoundError:
            if initial:
                raise ConfigError(f"QUAKESTACK_API_TOKENS_FILE: {self.file_path} does not exist") from None
            if self._file_tokens:  # fail closed: a removed file revokes its tokens
                log.warning("token file removed; its tokens are revoked", path=str(self.file_path))
            self._file_tokens, self._stamp = [], None
            return
        try:
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._stamp:
                return
            tokens = parse_tokens(self.file_path.read_text(), "\n", str(self.file_path))
        except (OSError, ConfigError) as exc:
            if initial:
                raise ConfigError(f"QUAKESTACK_API_TOKENS_FILE: {exc}") from None
            log.warning("token file not reloaded; keeping the previous tokens", error=str(exc))
            return
        self._file_tokens, self._stamp = tokens, stamp
        if not initial:
            log.info("token file reloaded", tokens=len(tokens))

    def tokens(self) -> list[Token]:
        if self.file_path is not None and time.monotonic() - self._checked >= self.check_interval_s:
            with self._lock:
                self._checked = time.monotonic()
                self._reload()
        return [*self.env_tokens, *self._file_tokens]

    def lookup(self, presented: bytes) -> Token | None:
        """Constant-time comparison against every token, so timing tells nothing about near matches."""
        found = None
        for token in self.tokens():
            if hmac.compare_digest(token.secret, presented):
                found = token
        return found

    def secrets(self) -> list[str]:
        return [t.secret.decode() for t in self.tokens()]


def bearer(authorization: str | None) -> str | None:
    scheme, _, value = (authorization or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class Authorizer:
    """Decides who a caller is and whether they may call an RPC; shared by the interceptor and the gateway."""

    def __init__(self, tokens: TokenSet, *, enabled: bool):
        self.tokens = tokens
        self.enabled = enabled

    @classmethod
    def from_settings(cls, settings: Settings) -> Authorizer:
        tokens = TokenSet(settings.api_tokens, settings.api_tokens_file)
        return cls(tokens, enabled=tokens.configured and not settings.auth_disabled)

    def identify(self, authorization: str | None) -> Identity:
        """Identity for an `authorization` value; UNAUTHENTICATED when missing or unknown (auth on)."""
        if not self.enabled:
            return ANONYMOUS
        presented = bearer(authorization)
        if presented is None:
            raise Unauthenticated("a bearer token is required (authorization: Bearer <token>)")
        token = self.tokens.lookup(presented.encode())
        if token is None:
            raise Unauthenticated("invalid bearer token")
        return Identity(token.id, token.role, token.limits)

    def authorize(self, rpc: str, authorization: str | None) -> Identity:
        """The caller's identity when it may call `rpc` ("pkg.Service/Method"); raises otherwise."""
        service = rpc.split("/", 1)[0]
        if service in OPEN_SERVICES:
            return ANONYMOUS
        required = RPC_ROLES.get(rpc)
        if not self.enabled:
            return ANONYMOUS
        identity = self.identify(authorization)
        if required is None:
            raise PermissionDenied(f"{rpc} has no access rule; refused")
        assert identity.role is not None
        if identity.role < required:
            raise PermissionDenied(f"{rpc} needs a {required.label} token; this one is {identity.role.label}")
        return identity


def is_state_changing(rpc: str) -> bool:
    """What the audit trail records: every RPC that needs more than a read-only token."""
    role = RPC_ROLES.get(rpc)
    return role is not None and role > R


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind_policy(settings: Settings, process: str) -> str | None:
    """Fail closed: a non-loopback bind needs tokens or an explicit auth-off; returns a warning to log."""
    configured = bool(settings.api_tokens.strip()) or bool(settings.api_tokens_file)
    if settings.auth_disabled:
        return (f"{process}: authentication is OFF (QUAKESTACK_AUTH_DISABLED=true); anyone who reaches "
                f"{settings.bind_host} may call every API")
    if not configured and not is_loopback(settings.bind_host):
        raise ConfigError(f"refusing to bind {settings.bind_host} with no API tokens: set QUAKESTACK_API_TOKENS "
                          "or QUAKESTACK_API_TOKENS_FILE (or QUAKESTACK_AUTH_DISABLED=true to run without auth)")
    return None
