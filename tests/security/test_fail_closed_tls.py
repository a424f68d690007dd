"""Fail-closed binds and TLS through real processes: a lone data service (its storage unreachable, so it
answers NOT_SERVING once a handshake succeeds) and a gateway in front of it."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from quakestack.certs import make_dev_certs
from quakestack.client import channel, health_status
from quakestack.embedded.seaweed import free_ports
from quakestack.metadata.database import sqlite_url
from quakestack.stack import Stack
from tests.conftest import fresh_settings
from tests.helpers import json_log_lines, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]


def _env(**changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
    data, metrics, gateway = free_ports(3)
    database = sqlite_url(Path(tempfile.mkdtemp(prefix="quakestack-tls-")) / "metadata.db")
    env.update({"QUAKESTACK_S3_ENDPOINT": "127.0.0.1:9", "QUAKESTACK_S3_ACCESS_KEY": "k",
                "QUAKESTACK_DATABASE_URL": database,
                "QUAKESTACK_S3_SECRET_KEY": "s", "QUAKESTACK_S3_TIMEOUT_S": "1",
                "QUAKESTACK_DATA_GRPC_PORT": str(data), "QUAKESTACK_DATA_METRICS_PORT": str(metrics),
                "QUAKESTACK_GATEWAY_PORT": str(gateway), "QUAKESTACK_DATA_ADDR": f"localhost:{data}",
                "PYTHONUNBUFFERED": "1", **changes})
    return env


class Proc:
    def __init__(self, module: str, env: dict[str, str], log: Path):
        self.env, self.log = env, log
        with log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", module], env=env, cwd=str(REPO_ROOT), stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_dev_certs(tmp_path_factory.mktemp("certs"))


@pytest.mark.parametrize("module", ["services.data", "gateway"])
def test_public_bind_without_tokens_exits_with_one_line(module: str) -> None:
    result = subprocess.run([sys.executable, "-m", module], env=_env(QUAKESTACK_BIND_HOST="0.0.0.0"),
                            cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "refusing to bind 0.0.0.0" in lines[0] and "QUAKESTACK_API_TOKENS" in lines[0], lines


def test_public_bind_with_auth_off_starts_and_warns(tmp_path: Path) -> None:
    env = _env(QUAKESTACK_BIND_HOST="0.0.0.0", QUAKESTACK_AUTH_DISABLED="true")
    proc = Proc("services.data", env, tmp_path / "data.log")
    try:
        with channel(f"127.0.0.1:{env['QUAKESTACK_DATA_GRPC_PORT']}") as ch:
            assert wait_for(lambda: health_status(ch) == "NOT_SERVING", 30, 0.2)
    finally:
        assert proc.stop() == 0
    warnings = [line for line in json_log_lines(tmp_path / "data.log") if line.get("level") == "warning"]
    assert any("authentication is OFF" in line["event"] for line in warnings)


def _tls_health(port: str, *, root: bytes | None = None, key: bytes | None = None, cert: bytes | None = None,
                use_tls: bool = True) -> str:
    target = f"localhost:{port}"
    if not use_tls:
        ch = grpc.insecure_channel(target)
    else:
        ch = grpc.secure_channel(target, grpc.ssl_channel_credentials(root, key, cert))
    with ch:
        return health_status(ch, timeout_s=3)


@pytest.fixture(scope="module")
def tls_data(certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A data service with TLS and mutual TLS (client certificates signed by the dev CA required)."""
    env = _env(QUAKESTACK_TLS_CERT_FILE=str(certs["server"]), QUAKESTACK_TLS_KEY_FILE=str(certs["server_key"]),
               QUAKESTACK_TLS_CLIENT_CA_FILE=str(certs["ca"]))
    proc = Proc("services.data", env, tmp_path_factory.mktemp("tls") / "data.log")
    root, key, cert = (certs[n].read_bytes() for n in ("ca", "client_key", "client"))
    port = env["QUAKESTACK_DATA_GRPC_PORT"]
    try:
        assert wait_for(lambda: _tls_health(port, root=root, key=key, cert=cert) == "NOT_SERVING", 30, 0.3)
        yield env
    finally:
        proc.stop()


def test_tls_handshake_needs_the_ca_and_mtls_a_client_certificate(tls_data, certs) -> None:
    port = tls_data["QUAKESTACK_DATA_GRPC_PORT"]
    root, key, cert = (certs[n].read_bytes() for n in ("ca", "client_key", "client"))
    assert _tls_health(port, use_tls=False) == "UNAVAILABLE"                   # plaintext
    assert _tls_health(port, key=key, cert=cert) == "UNAVAILABLE"              # system roots only: untrusted
    assert _tls_health(port, root=root) == "UNAVAILABLE"                       # no client certificate
    assert _tls_health(port, root=root, key=key, cert=cert) == "NOT_SERVING"   # handshake done; storage is down


def _readyz(url: str, context: ssl.SSLContext | None = None) -> dict:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=10, context=context) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def test_gateway_over_https_and_mtls_to_the_service(tls_data, certs, tmp_path: Path) -> None:
    """Without a client certificate the gateway cannot reach the mTLS service; with one it can."""
    common = {k: tls_data[k] for k in ("QUAKESTACK_DATA_ADDR",)}
    tls = {"QUAKESTACK_TLS_CERT_FILE": str(certs["server"]), "QUAKESTACK_TLS_KEY_FILE": str(certs["server_key"]),
           "QUAKESTACK_TLS_CA_FILE": str(certs["ca"])}
    ca_context = ssl.create_default_context(cafile=str(certs["ca"]))
    without = Proc("gateway", _env(**common, **tls), tmp_path / "gw-nocert.log")
    with_cert = Proc("gateway", _env(**common, **tls, QUAKESTACK_TLS_CLIENT_CERT_FILE=str(certs["client"]),
                                     QUAKESTACK_TLS_CLIENT_KEY_FILE=str(certs["client_key"])),
                     tmp_path / "gw-cert.log")
    try:
        for gw in (without, with_cert):
            url = f"https://localhost:{gw.env['QUAKESTACK_GATEWAY_PORT']}"
            assert wait_for(lambda url=url: _gateway_up(url, ca_context), 30, 0.3)
            with pytest.raises(urllib.error.URLError) as err:  # a client without the CA fails the handshake
                urllib.request.urlopen(url + "/healthz", timeout=10)
            assert isinstance(err.value.reason, ssl.SSLError)
        url_without = f"https://localhost:{without.env['QUAKESTACK_GATEWAY_PORT']}"
        url_with = f"https://localhost:{with_cert.env['QUAKESTACK_GATEWAY_PORT']}"
        assert wait_for(lambda: _readyz(url_with, ca_context)["backends"]["data"] == "NOT_SERVING", 20, 0.5)
        assert _readyz(url_without, ca_context)["backends"]["data"] == "UNAVAILABLE"
    finally:
        without.stop()
        with_cert.stop()


def _gateway_up(url: str, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=3, context=context) as response:
            return response.status == 200
    except OSError:
        return False


def test_rotated_certificates_are_used_without_a_restart(tmp_path: Path) -> None:
    """Replace the server's PEM files with ones from another CA: the next handshakes use them."""
    old, new = make_dev_certs(tmp_path / "old"), make_dev_certs(tmp_path / "new")
    live = {"cert": tmp_path / "server.pem", "key": tmp_path / "server-key.pem"}
    live["cert"].write_bytes(old["server"].read_bytes())
    live["key"].write_bytes(old["server_key"].read_bytes())
    tls = {"QUAKESTACK_TLS_CERT_FILE": str(live["cert"]), "QUAKESTACK_TLS_KEY_FILE": str(live["key"])}
    env = _env(**tls)
    data = Proc("services.data", env, tmp_path / "data.log")
    gateway = Proc("gateway", _env(**tls), tmp_path / "gateway.log")
    port = env["QUAKESTACK_DATA_GRPC_PORT"]
    url = f"https://localhost:{gateway.env['QUAKESTACK_GATEWAY_PORT']}"
    old_ca, new_ca = old["ca"].read_bytes(), new["ca"].read_bytes()
    old_ctx = ssl.create_default_context(cafile=str(old["ca"]))
    new_ctx = ssl.create_default_context(cafile=str(new["ca"]))
    try:
        assert wait_for(lambda: _tls_health(port, root=old_ca) == "NOT_SERVING", 30, 0.3)
        assert wait_for(lambda: _gateway_up(url, old_ctx), 30, 0.3)
        assert _tls_health(port, root=new_ca) == "UNAVAILABLE" and not _gateway_up(url, new_ctx)
        for name, source in (("key", new["server_key"]), ("cert", new["server"])):
            tmp = live[name].with_suffix(".tmp")
            tmp.write_bytes(source.read_bytes())
            os.replace(tmp, live[name])
        assert wait_for(lambda: _tls_health(port, root=new_ca) == "NOT_SERVING", 20, 0.5)
        assert wait_for(lambda: _gateway_up(url, new_ctx), 20, 0.5)
        assert _tls_health(port, root=old_ca) == "UNAVAILABLE"
    finally:
        assert data.stop() == 0
        gateway.stop()


def test_cli_trusts_the_configured_ca_bundle(tls_data, certs, tmp_path: Path) -> None:
    """`quakestack data ls` over mTLS: with another CA the handshake fails; with the right one the service
    answers (from its metadata database: no dataset, though its storage is down)."""
    other = make_dev_certs(tmp_path / "other")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
    env.update({"QUAKESTACK_DATA_ADDR": tls_data["QUAKESTACK_DATA_ADDR"],
                "QUAKESTACK_TLS_CLIENT_CERT_FILE": str(certs["client"]),
                "QUAKESTACK_TLS_CLIENT_KEY_FILE": str(certs["client_key"])})
    command = [sys.executable, "-m", "quakestack", "data", "ls", "--json"]

    def run_with(ca: Path) -> tuple[int, str]:
        result = subprocess.run(command, env={**env, "QUAKESTACK_TLS_CA_FILE": str(ca)}, capture_output=True,
                                text=True, timeout=60, cwd=str(REPO_ROOT))
        return result.returncode, (result.stderr + result.stdout).lower()

    code, output = run_with(other["ca"])
    assert code != 0 and "handshake" in output, output
    code, output = run_with(certs["ca"])
    assert code == 0 and output.strip() == "[]", output


def test_embedded_stack_with_tls_everywhere(certs, tmp_path: Path) -> None:
    """`quakestack up`'s Stack with the TLS settings: every gRPC port and the gateway refuse plaintext and
    clients without the CA; with it they serve (the gateway reaches the services over TLS)."""
    settings = fresh_settings(tmp_path, tls_cert_file=str(certs["server"]), tls_key_file=str(certs["server_key"]),
                              tls_ca_file=str(certs["ca"]))
    with Stack(settings, state_dir=tmp_path) as stack:
        root = certs["ca"].read_bytes()
        for name in ("data", "trainer", "inference"):
            port = getattr(stack.settings, f"{name}_addr").rsplit(":", 1)[1]
            assert _tls_health(port, root=root) == "SERVING", name
            assert _tls_health(port, use_tls=False) == "UNAVAILABLE", name
            assert _tls_health(port) == "UNAVAILABLE", name  # system roots only
        url = stack.endpoints().gateway
        assert url.startswith("https://")
        ready = _readyz(url, ssl.create_default_context(cafile=str(certs["ca"])))
        assert ready["ready"] is True, ready
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(url + "/healthz", timeout=10)
