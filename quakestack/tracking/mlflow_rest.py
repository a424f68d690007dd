"""A small client of MLflow's REST API (/api/2.0/mlflow/..., /api/2.0/mlflow-artifacts/...) over plain HTTP.

The `mlflow` package pins its own protobuf, SQLAlchemy and Flask ranges; talking to the tracking server through
its documented REST API keeps the project's environment free of them and works with any MLflow server.
Credentials come from the environment as MLflow's own client reads them (MLFLOW_TRACKING_TOKEN, or
MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD; MLFLOW_TRACKING_INSECURE_TLS,
MLFLOW_TRACKING_SERVER_CERT_PATH) and are never logged or shown in errors.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

RETRIES = 4  # 429, 5xx and refused connections are retried with backoff; anything else is the caller's error
TIMEOUT_S = 60.0


class MlflowError(Exception):
    """An error answer of the tracking server: its HTTP status, MLflow error code and message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"MLflow {status} {code}: {message}")
        self.status, self.code = status, code


def auth_headers(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Authorization header MLflow's client would send for these environment variables (none without them)."""
    env = os.environ if env is None else env
    if env.get("MLFLOW_TRACKING_TOKEN"):
        return {"Authorization": f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"}
    if env.get("MLFLOW_TRACKING_USERNAME") and env.get("MLFLOW_TRACKING_PASSWORD"):
        pair = f"{env['MLFLOW_TRACKING_USERNAME']}:{env['MLFLOW_TRACKING_PASSWORD']}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
    return {}


def _tls_context(env: Mapping[str, str]) -> ssl.SSLContext | None:
    if env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        return ssl._create_unverified_context()  # noqa: S323 - the user asked for it, as MLflow's variable says
    if env.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        return ssl.create_default_context(cafile=env["MLFLOW_TRACKING_SERVER_CERT_PATH"])
    return None


class MlflowRest:
    """One tracking server: JSON calls and artifact uploads, retried on 429/5xx and refused connections."""

    def __init__(self, tracking_uri: str, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        parsed = urllib.parse.urlsplit(tracking_uri)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"tracking URI must be http(s)://host[:port][/path] of an MLflow server, "
                             f"got {tracking_uri!r}")
        self.base = tracking_uri.rstrip("/")
        self._headers = auth_headers(env)
        self._tls = _tls_context(env)

    def __repr__(self) -> str:  # never the credentials
        return f"MlflowRest({self.base!r})"

    # -- transport ----------------------------------------------------------------------------
    def _send(self, method: str, url: str, body: bytes | None, content_type: str) -> bytes:
        headers = {**self._headers, "Content-Type": content_type, "Accept": "application/json"}
        delay = 0.5
        for attempt in range(RETRIES + 1):
            request = urllib.request.Request(url, data=body, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=self._tls) as response:
                    return response.read()
            except urllib.error.HTTPError as exc:
                text = exc.read().decode("utf-8", "replace")
                if (exc.code == 429 or exc.code >= 500) and attempt < RETRIES:
                    time.sleep(delay)
                    delay *= 2
                    continue
                try:
                    answer = json.loads(text)
                except json.JSONDecodeError:
                    answer = {}
                raise MlflowError(exc.code, str(answer.get("error_code", "")),
                                  str(answer.get("message") or text[:300])) from None
            except urllib.error.URLError as exc:
                if attempt < RETRIES:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise MlflowError(0, "UNREACHABLE", f"{self.base}: {exc.reason}") from None
        raise AssertionError("unreachable")

    def call(self, method: str, endpoint: str, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """`endpoint` below /api/2.0/mlflow/; GET payloads go in the query string (lists repeated)."""
        url = f"{self.base}/api/2.0/mlflow/{endpoint}"
        body = None
        if method == "GET" and payload:
            url += "?" + urllib.parse.urlencode(payload, doseq=True)
        elif payload is not None:
            body = json.dumps(payload).encode()
        raw = self._send(method, url, body, "application/json")
        return json.loads(raw) if raw.strip() else {}

    def upload_artifact(self, artifact_uri: str, path: str, data: bytes) -> None:
        """Store one file of a run through the server's artifact proxy (`mlflow-artifacts:` artifact roots,
        `mlflow server`'s default). A run whose artifacts live elsewhere (s3://, a path on the server) cannot be
        written through the REST API: ArtifactsNotProxied says so."""
        parsed = urllib.parse.urlsplit(artifact_uri)
        if parsed.scheme != "mlflow-artifacts":
            raise ArtifactsNotProxied(artifact_uri)
        relative = "/".join(p for p in (parsed.path.strip("/"), path.strip("/")) if p)
        url = f"{self.base}/api/2.0/mlflow-artifacts/artifacts/{urllib.parse.quote(relative)}"
        self._send("PUT", url, data, "application/octet-stream")

    # -- the endpoints the export uses --------------------------------------------------------
    def experiment_id(self, name: str) -> str:
        """The experiment's id, created when missing."""
        try:
            return str(self.call("GET", "experiments/get-by-name", {"experiment_name": name})
                       ["experiment"]["experiment_id"])
        except MlflowError as exc:
            if exc.code != "RESOURCE_DOES_NOT_EXIST":
                raise
        return str(self.call("POST", "experiments/create", {"name": name})["experiment_id"])

    def search_runs(self, experiment_id: str, filter_string: str) -> Iterator[dict[str, Any]]:
        token = ""
        while True:
            payload: dict[str, Any] = {"experiment_ids": [experiment_id], "filter": filter_string,
                                       "max_results": 1000}
            if token:
                payload["page_token"] = token
            answer = self.call("POST", "runs/search", payload)
            yield from answer.get("runs", [])
            token = answer.get("next_page_token", "")
            if not token:
                return

    def metric_history(self, run_id: str, key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token = ""
        while True:
            payload = {"run_id": run_id, "metric_key": key, "max_results": 25000}
            if token:
                payload["page_token"] = token
            answer = self.call("GET", "metrics/get-history", payload)
            out += answer.get("metrics", [])
            token = answer.get("next_page_token", "")
            if not token:
                return out

    def log_batch(self, run_id: str, *, metrics: list[dict[str, Any]] = (), params: list[dict[str, str]] = (),
                  tags: list[dict[str, str]] = ()) -> None:
        """runs/log-batch in pieces within MLflow's limits (1000 metrics, 100 params, 100 tags per request)."""
        metrics, params, tags = list(metrics), list(params), list(tags)
        while metrics or params or tags:
            self.call("POST", "runs/log-batch", {"run_id": run_id, "metrics": metrics[:1000], "params": params[:100],
                                                 "tags": tags[:100]})
            metrics, params, tags = metrics[1000:], params[100:], tags[100:]

    def model_versions(self, name: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token = ""
        while True:
            payload = {"filter": f"name='{name}'", "max_results": 200}
            if token:
                payload["page_token"] = token
            answer = self.call("GET", "model-versions/search", payload)
            out += answer.get("model_versions", [])
            token = answer.get("next_page_token", "")
            if not token:
                return out


class ArtifactsNotProxied(Exception):
    """The run's artifact root is not served by the tracking server (`mlflow server --no-serve-artifacts`)."""

    def __init__(self, artifact_uri: str):
        super().__init__(f"artifact root {artifact_uri!r} is not served by the tracking server (mlflow-artifacts:); "
                         "start it with --serve-artifacts (the default) to export artifacts")
