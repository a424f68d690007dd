"""Every Prometheus metric quakestack exports, declared in one place.

gRPC metrics use the go-grpc-prometheus names so that existing dashboards and alerts work;
domain metrics are prefixed `quakestack_`. Dashboards and alerts (deploy/) are checked against
these names. Label sets are bounded: never a job, dataset or request id (a job's figures are its
events), so a year of history adds no series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

GRPC_STARTED = Counter("grpc_server_started", "RPCs started on the server.", _GRPC_LABELS)
GRPC_HANDLED = Counter("grpc_server_handled", "RPCs completed on the server, regardless of success or failure.",
                       (*_GRPC_LABELS, "grpc_code"))
GRPC_HANDLING_SECONDS = Histogram("grpc_server_handling_seconds",
                                  "Histogram of response latency of RPCs handled by the server.",
                                  _GRPC_LABELS, buckets=_LATENCY_BUCKETS)
GRPC_MSG_RECEIVED = Counter("grpc_server_msg_received", "Stream messages received on the server.", _GRPC_LABELS)
GRPC_MSG_SENT = Counter("grpc_server_msg_sent", "Stream messages sent by the server.", _GRPC_LABELS)

STORAGE_UP = Gauge("quakestack_storage_up", "1 while object storage answers authenticated requests.")
DATABASE_UP = Gauge("quakestack_metadata_database_up", "1 while the metadata database answers.")

# data service
WINDOWS_WRITTEN = Counter("quakestack_windows_written", "Windows written to dataset shards.")
BYTES_STORED = Counter("quakestack_bytes_stored", "Bytes written to object storage.", ("kind",))
ITEMS_SKIPPED = Counter("quakestack_items_skipped", "Source items skipped during ingestion.", ("reason",))
INGEST_JOB_SECONDS = Histogram("quakestack_ingest_job_duration_seconds", "Duration of ingestion jobs.",
                               ("outcome",), buckets=(1, 5, 15, 60, 300, 900, 3600, 14400))

# trainer service
TRAINING_EPOCHS = Counter("quakestack_training_epochs", "Training epochs completed.", ("architecture",))
TRAINING_SAMPLES_PER_S = Histogram("quakestack_training_samples_per_second", "Training throughput of each epoch.",
                                   ("architecture",), buckets=(10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000))

# inference service (Triton's metric set as the anchor)
INFERENCE_REQUESTS = Counter("quakestack_inference_requests", "Prediction requests.", ("model", "outcome"))
INFERENCE_WINDOWS = Counter("quakestack_inference_windows", "Windows predicted.", ("model",))
INFERENCE_BATCH_SIZE = Histogram("quakestack_inference_batch_size", "Windows per executed batch.", ("model",),
                                 buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
INFERENCE_QUEUE_SECONDS = Histogram("quakestack_inference_queue_seconds", "Time requests wait for a batch.",
                                    ("model",), buckets=_LATENCY_BUCKETS)
INFERENCE_COMPUTE_SECONDS = Histogram("quakestack_inference_compute_seconds", "Model execution time per batch.",
                                      ("model",), buckets=_LATENCY_BUCKETS)
MODELS_LOADED = Gauge("quakestack_models_loaded", "Resident models.", ("device",))
MODEL_MEMORY_BYTES = Gauge("quakestack_model_memory_bytes", "Bytes of resident model parameters.", ("device",))


class JobCounts(Collector):
    """`quakestack_jobs{kind,state}`: read at scrape time from the metadata store's per-kind-and-state counts (kept
    by the transactions that change a state), so every replica reports the same figures and none scans jobs."""

    def __init__(self, counts: Callable[[], dict[tuple[str, str], int]], kinds: tuple[str, ...]):
        self.counts = counts
        self.kinds = kinds

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("quakestack_jobs", "Jobs by kind and state, as the metadata store holds them.",
                                   labels=("kind", "state"))
        try:
            counts = self.counts()
        except Exception:  # noqa: BLE001 - a database outage leaves the family empty, never breaks the scrape
            counts = {}
        for (kind, state), count in sorted(counts.items()):
            if kind in self.kinds:
                family.add_metric((kind, state), count)
        yield family


def register_job_counts(counts: Callable[[], dict[tuple[str, str], int]], kinds: tuple[str, ...]) -> None:
    REGISTRY.register(JobCounts(counts, kinds))
