"""The metadata store: jobs, their events, control, leases and heartbeats; the model registry; the dataset
catalog; usage — rows in a database beside the object store that keeps the artifacts.

Records that are queried, filtered, paged, leased and watched belong in a database (as in MLflow's
backend store, Katib, Argo's archive, Airflow and Optuna's RDB storage); shards, checkpoints, weights,
catalogs and logs stay in object storage, named from these rows. SQLite (one file beside the embedded
storage, WAL) is the one-machine default; PostgreSQL serves several replicas and machines. Every query
a service runs per call or per scheduler tick is bounded by an index, never by the history.
"""

from quakestack.metadata.database import Database

__all__ = ["Database"]
