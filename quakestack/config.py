"""Configuration from QUAKESTACK_* environment variables, declared once in a table.

The table is the single source of truth: processes validate it at start, the README's table and
the deployment checks (compose, Kubernetes) are generated from / tested against it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quakestack.devices import parse_device


class ConfigError(ValueError):
    """A QUAKESTACK_* variable holds a value the process cannot run with."""


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default (as text), parser and meaning."""

    name: str
    default: str
    parse: Callable[[str], Any]
    doc: str
    secret: bool = False
    shown_default: str = ""  # the README's wording where the default depends on the machine

    @property
    def env(self) -> str:
        return "QUAKESTACK_" + self.name.upper()


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("expected a TCP port 0-65535")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("expected an integer >= 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("expected an integer >= 0")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("expected a number > 0")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError("expected a number in [0, 1]")
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        lowered = text.strip().lower()
        if lowered not in choices:
            raise ValueError("expected one of " + ", ".join(choices))
        return lowered

    return parse


def _address(text: str) -> str:
    value = text.strip()
    if not value or any(c.isspace() for c in value):
        raise ValueError("expected host:port or a gRPC target such as dns:///name:port")
    return value


def _path_list(text: str) -> tuple[Path, ...]:
    return tuple(Path(p).resolve() for p in text.split(os.pathsep) if p.strip())


def _module_list(text: str) -> tuple[str, ...]:
    names = tuple(n for n in re.split(r"[\s,:]+", text) if n)
    bad = [n for n in names if not all(part.isidentifier() for part in n.split("."))]
    if bad:
        raise ValueError(f"expected comma-separated Python module names, got {bad[0]!r}")
    return names


def _text(text: str) -> str:
    return text.strip()


def _tolerations(text: str) -> str:
    """`key[=value]:effect[,...]`: Kubernetes tolerations (Exists without a value, Equal with one)."""
    value = text.strip()
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, _, effect = item.rpartition(":")
        if not key.split("=", 1)[0] or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise ValueError(f"expected key[=value]:effect (effect NoSchedule, PreferNoSchedule or NoExecute), "
                             f"got {item!r}")
    return value


def _database_url(text: str) -> str:
    """An SQLAlchemy URL of SQLite or PostgreSQL (the two backends the metadata store is tested on)."""
    value = text.strip()
    if value and not re.match(r"^(sqlite|postgresql|postgres)(\+[a-z0-9]+)?://", value):
        raise ValueError("expected sqlite:///path or postgresql://user:password@host:port/database")
    return value


def _bucket(text: str) -> str:
    value = text.strip()
    if not 3 <= len(value) <= 63 or not all(c.islower() or c.isdigit() or c in "-." for c in value):
        raise ValueError("expected an S3 bucket name: 3-63 lowercase letters, digits, '-' or '.'")
    return value


SETTINGS: tuple[Setting, ...] = (
    Setting("s3_endpoint", "", _text,
            "S3 endpoint host:port. Empty: `quakestack up` starts an embedded SeaweedFS and sets it."),
    Setting("s3_access_key", "", _text, "S3 access key (required with an endpoint).", secret=True),
    Setting("s3_secret_key", "", _text, "S3 secret key (required with an endpoint).", secret=True),
    Setting("s3_bucket", "quakestack", _bucket, "Bucket holding raw files, datasets, jobs and models."),
    Setting("s3_secure", "false", _bool, "Use HTTPS to reach S3."),
    Setting("s3_region", "us-east-1", _text, "S3 region name."),
    Setting("s3_timeout_s", "5", _positive_float, "Connect/read timeout of one S3 request, seconds."),
    Setting("bind_host", "127.0.0.1", _text, "Address every server binds (0.0.0.0 in containers)."),
    Setting("data_grpc_port", "50051", _port, "DataService gRPC port."),
    Setting("trainer_grpc_port", "50052", _port, "TrainerService and ModelRegistryService gRPC port."),
    Setting("inference_grpc_port", "50053", _port, "InferenceService gRPC port."),
    Setting("data_metrics_port", "9101", _port, "Prometheus /metrics port of the data service."),
    Setting("trainer_metrics_port", "9102", _port, "Prometheus /metrics port of the trainer service."),
    Setting("inference_metrics_port", "9103", _port, "Prometheus /metrics port of the inference service."),
    Setting("gateway_port", "8080", _port, "REST gateway port (also serves /metrics, /healthz)."),
    Setting("data_addr", "127.0.0.1:50051", _address, "gRPC target of the data service (gateway, CLI)."),
    Setting("trainer_addr", "127.0.0.1:50052", _address, "gRPC target of the trainer service (gateway, CLI)."),
    Setting("inference_addr", "127.0.0.1:50053", _address,
            "gRPC target of the inference service (gateway, CLI)."),
    Setting("max_message_mb", "64", _positive_int,
            "Largest gRPC message in MiB; larger requests get RESOURCE_EXHAUSTED."),
    Setting("grace_s", "10", _positive_float, "Seconds in-flight RPCs may take to drain on SIGTERM."),
    Setting("health_interval_s", "2", _positive_float, "Seconds between storage health probes."),
    Setting("log_level", "info", _choice("debug", "info", "warning", "error"), "Log level."),
    Setting("log_format", "json", _choice("json", "console"), "json lines (default) or console."),
    Setting("log_data_plane_calls", "false", _bool,
            "One `rpc finished` line per successful Predict / ModelInfer too (off, as in Triton and KServe: "
            "the data plane answers thousands of calls a second; failures are always logged and the "
            "grpc_server_* metrics count every call)."),
    Setting("device", "auto", parse_device, "Default torch device: auto, cpu, cuda or cuda:N."),
    Setting("data_allowed_dirs", "", _path_list,
            "Local directories (':'-separated) that requests may read sources from."),
    Setting("data_readers", "", _module_list,
            "Python modules (comma-separated) that each define a source reader `READER`: formats beyond the "
            "built-in ones and the `quakestack.readers` entry points (docs: `quakestack/data/readers/`)."),
    Setting("data_workers", str(max(1, os.cpu_count() or 1)), _positive_int,
            "Worker processes of an ingestion job.", shown_default="CPU count"),
    Setting("cache_dir", str(Path.home() / ".cache" / "quakestack"), _text,
            "Local cache of downloaded shards and sources.", shown_default="~/.cache/quakestack"),
    Setting("trainer_cpu_slots", "1", _positive_int, "Concurrent training jobs when no GPU is present."),
    Setting("inference_memory_budget_mb", "4096", _positive_int,
            "Memory budget per device for resident models; idle models are evicted LRU."),
    Setting("inference_autoload_alias", "production", _text,
            "Models carrying this alias are loaded at start (empty: none)."),
    Setting("inference_log_sample_rate", "0.1", _fraction,
            "Fraction of predictions logged to object storage for feedback."),
    Setting("keep_freed_memory", "true", _bool,
            "Processes that run models (inference service, job workers) keep freed heap blocks for reuse "
            "(glibc: 32 MiB mmap threshold, no trimming) instead of faulting in fresh pages for every batch; "
            "they keep their peak heap."),
    Setting("inference_processes", "1", _positive_int,
            "Processes serving the inference service's one port (SO_REUSEPORT), each with its own GIL: the first "
            "answers every RPC; each other holds its own copy of the resident models, answers Predict and "
            "ModelInfer and forwards the rest to the first. More than 1 raises CPU throughput "
            "(bench/serving_peers.py) and costs the models' memory once more per process."),
    Setting("inference_torch_threads", "0", _non_negative_int,
            "torch intra-op threads of the inference service on CPU (0: half the CPUs, at least 1): the "
            "other cores are left to the gRPC threads."),
    Setting("storage_dir", str(Path.home() / ".local" / "share" / "quakestack" / "s3"), _text,
            "Data directory of the embedded SeaweedFS (`quakestack up`); persists across restarts.",
            shown_default="~/.local/share/quakestack/s3"),
    Setting("api_tokens", "", _text,
            "Bearer tokens of every gRPC service and the gateway, comma-separated, each "
            "`[id=]token[:ro|:rw|:admin]` (bare: read-write) plus optional limits `rps=N stored_mb=N queued_jobs=N`.",
            secret=True),
    Setting("api_tokens_file", "", _text,
            "File with more tokens, one entry per line as above; re-read when it changes (rotation without restart)."),
    Setting("auth_disabled", "false", _bool,
            "Turn authentication off explicitly (warns). Without it a non-loopback bind needs tokens."),
    Setting("client_token", "", _text, "Bearer token the CLI and clients send.", secret=True),
    Setting("grpc_reflection", "true", _bool, "Serve gRPC server reflection (open, like health)."),
    Setting("tls_cert_file", "", _text,
            "PEM server certificate (chain) for every gRPC port and the gateway; re-read when it changes."),
    Setting("tls_key_file", "", _text, "PEM private key of QUAKESTACK_TLS_CERT_FILE."),
    Setting("tls_client_ca_file", "", _text,
            "CA bundle the gRPC services verify client certificates against: set, clients need one (mTLS)."),
    Setting("tls_ca_file", "", _text,
            "CA bundle clients (gateway, CLI, stack health checks) verify servers with; set, they use TLS."),
    Setting("tls_client_cert_file", "", _text, "PEM client certificate the gateway and CLI present (mTLS)."),
    Setting("tls_client_key_file", "", _text, "PEM private key of QUAKESTACK_TLS_CLIENT_CERT_FILE."),
    Setting("audit_flush_s", "2", _positive_float,
            "Seconds between writes of buffered audit events to `audit/<date>/...jsonl`."),
    Setting("max_body_mb", "64", _positive_int, "Largest REST request body in MiB (413 beyond)."),
    Setting("database_url", "", _database_url,
            "Metadata database (jobs, events, leases, registry, datasets, usage) as an SQLAlchemy URL: "
            "`postgresql://user:password@host:5432/db` for several replicas or machines. Empty: SQLite in "
            "`metadata.db` beside QUAKESTACK_STORAGE_DIR (one machine).", secret=True),
    Setting("database_url_file", "", _text,
            "File holding the database URL (a mounted Secret); read at start, used when QUAKESTACK_DATABASE_URL "
            "is empty."),
    Setting("database_timeout_s", "5", _positive_float,
            "Seconds to connect to the metadata database, and to wait for a lock, before a call fails UNAVAILABLE."),
    Setting("jobs_executor", "local", _choice("local", "kubernetes"),
            "Where job workers run: local (detached processes) or kubernetes (batch/v1 Jobs)."),
    Setting("jobs_lease_ttl_s", "10", _positive_float,
            "Seconds a replica's lease on a job lasts without renewal (another replica may then take it)."),
    Setting("jobs_heartbeat_s", "1", _positive_float, "Seconds between a worker's heartbeats and control reads."),
    Setting("jobs_lost_after_s", "20", _positive_float,
            "Seconds without a heartbeat after which a worker is declared lost and its job rescheduled."),
    Setting("jobs_max_retries", "2", _non_negative_int, "Times a lost worker's job is rescheduled before it fails."),
    Setting("jobs_k8s_namespace", "quakestack", _text, "Namespace of the Jobs the kubernetes executor submits."),
    Setting("jobs_k8s_image", "quakestack/trainer:0.1.0", _text, "Image of the training job pods."),
    Setting("jobs_k8s_service_account", "quakestack-training-worker", _text,
            "Service account of the training job pods (no API access needed)."),
    Setting("jobs_k8s_node_selector", "", _text,
            "Node selector of the training job pods, `key=value[,key=value]` (the gpu overlay: the GPU node pool)."),
    Setting("jobs_k8s_tolerations", "", _tolerations,
            "Tolerations of the training job pods, `key[=value]:effect[,...]` (the gpu overlay: "
            "`nvidia.com/gpu:NoSchedule`, the GPU pool's taint)."),
    Setting("jobs_k8s_gpus_per_node", "0", _non_negative_int,
            "GPUs of one node of the job pods' pool: a pod requests a job's num_gpus (at least 1) as "
            "`nvidia.com/gpu`, and no job may ask for more; 0: job pods run on CPU."),
    Setting("jobs_k8s_cpu", "4", _text, "CPU request and limit of each training job pod."),
    Setting("jobs_k8s_memory", "16Gi", _text, "Memory request and limit of each training job pod."),
)

SETTINGS_BY_ENV: dict[str, Setting] = {s.env: s for s in SETTINGS}


class Settings:
    """Validated configuration; attribute names are the settings' lower-case names."""

    def __init__(self, values: Mapping[str, Any]):
        self._values = dict(values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def replace(self, **changes: Any) -> Settings:
        unknown = set(changes) - set(self._values)
        if unknown:
            raise KeyError(f"unknown settings: {sorted(unknown)}")
        return Settings({**self._values, **changes})

    def __repr__(self) -> str:
        shown = {s.name: ("***" if s.secret and self._values[s.name] else self._values[s.name]) for s in SETTINGS}
        return f"Settings({shown})"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse every QUAKESTACK_* variable; the first bad one raises ConfigError naming it."""
    environ = os.environ if environ is None else environ
    unknown = sorted(k for k in environ if k.startswith("QUAKESTACK_") and k not in SETTINGS_BY_ENV)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown setting (known: see README, Configuration)")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.env, setting.default)
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            shown = "***" if setting.secret else repr(raw)
            raise ConfigError(f"{setting.env}={shown}: {exc}") from None
    if values["s3_endpoint"] and not (values["s3_access_key"] and values["s3_secret_key"]):
        raise ConfigError("QUAKESTACK_S3_ACCESS_KEY and QUAKESTACK_S3_SECRET_KEY are required with an endpoint")
    if bool(values["tls_cert_file"]) != bool(values["tls_key_file"]):
        raise ConfigError("QUAKESTACK_TLS_CERT_FILE and QUAKESTACK_TLS_KEY_FILE go together")
    if bool(values["tls_client_cert_file"]) != bool(values["tls_client_key_file"]):
        raise ConfigError("QUAKESTACK_TLS_CLIENT_CERT_FILE and QUAKESTACK_TLS_CLIENT_KEY_FILE go together")
    return Settings(values)


def settings_env(settings: Settings) -> dict[str, str]:
    """Settings back to QUAKESTACK_* variables, for child processes."""
    env = {}
    for s in SETTINGS:
        value = getattr(settings, s.name)
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, tuple):
            text = os.pathsep.join(str(v) for v in value)
        else:
            text = str(value)
        env[s.env] = text
    return env


def settings_table_markdown() -> str:
    """The README's configuration table."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for s in SETTINGS:
        rows.append(f"| `{s.env}` | `{s.shown_default or s.default}` | {s.doc} |")
    return "\n".join(rows)
