"""`quakestack certs`: a local certificate authority for development and tests.

Writes `ca.pem`/`ca-key.pem`, a server pair `server.pem`/`server-key.pem` (for the services and the
gateway; its names default to localhost, 127.0.0.1 and ::1) and a client pair `client.pem`/
`client-key.pem` for mutual TLS (the gateway and the CLI). Keys are ECDSA P-256, mode 0600. For
production use your own CA; the settings only ask for PEM files.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _san(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _issue(subject: str, key, issuer_name: x509.Name, issuer_key, *, days: int, ca: bool = False,
           names: tuple[str, ...] = (), usage: x509.ObjectIdentifier | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                      content_commitment=False, key_encipherment=False,
                                                      data_encipherment=False, key_agreement=False,
                                                      encipher_only=False, decipher_only=False), critical=True)
    if names:
        builder = builder.add_extension(_san(names), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_dev_certs(out_dir: str | Path, names: tuple[str, ...] = DEFAULT_NAMES, days: int = 825) -> dict[str, Path]:
    """A fresh CA and a server and a client certificate signed by it; returns the written paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "quakestack development CA")])
    ca = _issue("quakestack development CA", ca_key, ca_name, ca_key, days=days, ca=True)
    server_key, client_key = _key(), _key()
    server = _issue(names[0], server_key, ca_name, ca_key, days=days, names=names,
                    usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client = _issue("quakestack-client", client_key, ca_name, ca_key, days=days,
                    usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    paths = {"ca": out / "ca.pem", "ca_key": out / "ca-key.pem", "server": out / "server.pem",
             "server_key": out / "server-key.pem", "client": out / "client.pem", "client_key": out / "client-key.pem"}
    pem = serialization.Encoding.PEM
    _write(paths["ca"], ca.public_bytes(pem))
    _write(paths["ca_key"], _pem_key(ca_key), private=True)
    _write(paths["server"], server.public_bytes(pem))
    _write(paths["server_key"], _pem_key(server_key), private=True)
    _write(paths["client"], client.public_bytes(pem))
    _write(paths["client_key"], _pem_key(client_key), private=True)
    return paths


def settings_hint(paths: dict[str, Path]) -> str:
    """The QUAKESTACK_TLS_* lines that use the files."""
    return "\n".join([
        f"QUAKESTACK_TLS_CERT_FILE={paths['server']}", f"QUAKESTACK_TLS_KEY_FILE={paths['server_key']}",
        f"QUAKESTACK_TLS_CA_FILE={paths['ca']}",
        f"# mutual TLS: QUAKESTACK_TLS_CLIENT_CA_FILE={paths['ca']}",
        f"#             QUAKESTACK_TLS_CLIENT_CERT_FILE={paths['client']} "
        f"QUAKESTACK_TLS_CLIENT_KEY_FILE={paths['client_key']}",
    ])
