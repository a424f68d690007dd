"""Every Prometheus metric quakestack exports, declared in one place.

gRPC metrics use the go-grpc-prometheus names so that existing dashboards and alerts work;
domain metrics are prefixed `quakestack_`. Dashboards and alerts (deploy/) are checked against
these names.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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

# data service
WINDOWS_WRITTEN = Counter("quakestack_windows_written", "Windows written to dataset shards.", ("dataset",))
BYTES_STORED = Counter("quakestack_bytes_stored", "Bytes written to object storage.", ("kind",))
ITEMS_SKIPPED = Counter("quakestack_items_skipped", "Source items skipped during ingestion.", ("reason",))
INGEST_JOB_SECONDS = Histogram("quakestack_ingest_job_duration_seconds", "Duration of ingestion jobs.",
                               ("outcome",), buckets=(1, 5, 15, 60, 300, 900, 3600, 14400))

# trainer service
TRAINING_EPOCHS = Counter("quakestack_training_epochs", "Training epochs completed.", ("architecture",))
TRAINING_LOSS = Gauge("quakestack_training_loss", "Loss of the latest epoch.", ("job_id", "split"))
TRAINING_SAMPLES_PER_S = Gauge("quakestack_training_samples_per_second", "Training throughput of the latest epoch.",
                               ("job_id",))
TRAINING_JOBS = Gauge("quakestack_training_jobs", "Training jobs by state.", ("state",))

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
