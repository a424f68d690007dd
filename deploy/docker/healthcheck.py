"""Container health check: `python healthcheck.py data|trainer|inference|gateway`.

Ports come from the same QUAKESTACK_* variables the process reads (quakestack.config), so the
check follows any port change. gRPC services: grpc.health.v1 Check on the service's health name
(NOT_SERVING while object storage is unreachable, so Docker reports "unhealthy" then, which is
what an operator wants to see). Gateway: HTTP GET /healthz (liveness of the process itself).
Exit 0 = healthy, 1 = not.
"""

from __future__ import annotations

import ssl
import sys
import urllib.request

HEALTH_NAMES = {
    "data": "quakestack.v1.DataService",
    "trainer": "quakestack.v1.TrainerService",
    "inference": "quakestack.v1.InferenceService",
}


def main(argv: list[str]) -> int:
    from quakestack.config import load_settings

    if len(argv) != 1 or argv[0] not in (*HEALTH_NAMES, "gateway"):
        print("usage: healthcheck.py data|trainer|inference|gateway", file=sys.stderr)
        return 2
    name = argv[0]
    settings = load_settings()
    # The server binds QUAKESTACK_BIND_HOST (0.0.0.0 in containers); probe it over loopback.
    host = settings.bind_host if settings.bind_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    if name == "gateway":
        scheme, context = "http", None
        if settings.tls_cert_file:  # HTTPS: trust the configured CA (the certificate names localhost)
            scheme, host = "https", "localhost" if host == "127.0.0.1" else host
            context = ssl.create_default_context(cafile=settings.tls_ca_file or None)
        try:
            with urllib.request.urlopen(f"{scheme}://{host}:{settings.gateway_port}/healthz", timeout=3,
                                        context=context) as response:
                ok = response.status == 200
        except OSError as exc:
            print(f"gateway: {exc}", file=sys.stderr)
            return 1
        print("gateway: ok" if ok else "gateway: unhealthy")
        return 0 if ok else 1

    from quakestack.client import health_status, settings_channel

    if settings.tls_ca_file and host == "127.0.0.1":
        host = "localhost"  # TLS: a name the server certificate carries
    with settings_channel(settings, f"{host}:{getattr(settings, f'{name}_grpc_port')}") as ch:
        status = health_status(ch, HEALTH_NAMES[name], timeout_s=3.0)
    print(f"{name}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
