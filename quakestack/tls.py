"""TLS from configured PEM files: gRPC server credentials re-read on change, client credentials, the
gateway's ssl context. A rotated certificate is picked up by the next handshake, without a restart.
"""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import grpc
import structlog

from quakestack.config import ConfigError, Settings

log = structlog.get_logger()


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None


def _stamp(paths: list[str]) -> tuple:
    out = []
    for p in paths:
        try:
            st = Path(p).stat()
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


def check_pair(cert_file: str, key_file: str) -> None:
    """ConfigError unless the key matches the certificate (a rotation caught between two file writes)."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"QUAKESTACK_TLS_CERT_FILE/KEY_FILE: {exc}") from None


class ServerCertificates:
    """The server's key pair (and client CA for mTLS), re-read when a file's mtime or size changes."""

    def __init__(self, settings: Settings):
        self.cert_file, self.key_file = settings.tls_cert_file, settings.tls_key_file
        self.client_ca_file = settings.tls_client_ca_file
        self.paths = [p for p in (self.cert_file, self.key_file, self.client_ca_file) if p]
        self._stamp = _stamp(self.paths)
        self._lock = threading.Lock()
        self.config = self._load()

    def _load(self) -> grpc.ServerCertificateConfiguration:
        check_pair(self.cert_file, self.key_file)
        pair = (_read(self.key_file, "QUAKESTACK_TLS_KEY_FILE"), _read(self.cert_file, "QUAKESTACK_TLS_CERT_FILE"))
        root = _read(self.client_ca_file, "QUAKESTACK_TLS_CLIENT_CA_FILE") if self.client_ca_file else None
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=root)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's certificate-config fetcher: None keeps the current one."""
        with self._lock:
            stamp = _stamp(self.paths)
            if stamp == self._stamp:
                return None
            try:
                config = self._load()
            except ConfigError as exc:
                log.warning("TLS files changed but cannot be read; keeping the previous certificate", error=str(exc))
                return None
            self._stamp = stamp
            log.info("TLS certificate reloaded", cert_file=self.cert_file)
            return config

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(self.config, self.fetch,
                                                   require_client_authentication=bool(self.client_ca_file))


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """None (plaintext) when no server certificate is configured."""
    if not settings.tls_cert_file:
        return None
    return ServerCertificates(settings).credentials()


def client_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    """TLS towards the services when a CA bundle is configured (plus a client certificate for mTLS)."""
    if not settings.tls_ca_file:
        return None
    root = _read(settings.tls_ca_file, "QUAKESTACK_TLS_CA_FILE")
    key = cert = None
    if settings.tls_client_cert_file:
        key = _read(settings.tls_client_key_file, "QUAKESTACK_TLS_CLIENT_KEY_FILE")
        cert = _read(settings.tls_client_cert_file, "QUAKESTACK_TLS_CLIENT_CERT_FILE")
    return grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=cert)


class ReloadingSslContext:
    """The gateway's HTTPS context; `maybe_reload` (called periodically) loads a changed key pair in place."""

    def __init__(self, settings: Settings):
        self.cert_file, self.key_file = settings.tls_cert_file, settings.tls_key_file
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._stamp = _stamp([self.cert_file, self.key_file])
        try:
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"QUAKESTACK_TLS_CERT_FILE/KEY_FILE: {exc}") from None

    def maybe_reload(self) -> bool:
        stamp = _stamp([self.cert_file, self.key_file])
        if stamp == self._stamp:
            return False
        try:
            check_pair(self.cert_file, self.key_file)  # never leave the live context half-loaded
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (ConfigError, OSError, ssl.SSLError) as exc:
            log.warning("TLS files changed but cannot be loaded; keeping the previous certificate", error=str(exc))
            return False
        self._stamp = stamp
        log.info("TLS certificate reloaded", cert_file=self.cert_file)
        return True
