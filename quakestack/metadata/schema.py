"""The tables of the metadata store (SQLAlchemy Core); Alembic's migrations create and change them.

JSON documents (a job's spec, folded status and control; an event; a model card) are stored as text:
the same on SQLite and PostgreSQL, and never queried inside. Everything a query filters or orders by
is a column with an index. Times are POSIX seconds (float) for ordering and filters; the RFC 3339 text
a record was created with is kept as it was.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text

NAMING = {"ix": "ix_%(table_name)s_%(column_0_N_name)s", "pk": "pk_%(table_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
metadata = MetaData(naming_convention=NAMING)

ID = String(64)
NAME = String(128)

jobs = Table(
    "jobs", metadata,
    Column("job_id", ID, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("spec_version", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("owner", NAME, nullable=False, default=""),
    Column("dataset", NAME, nullable=False, default=""),
    Column("architecture", String(64), nullable=False, default=""),
    Column("create_time", String(40), nullable=False),
    Column("created_s", Float, nullable=False),
    Column("update_s", Float, nullable=False),
    Column("spec", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("control", Text, nullable=False),
    Column("last_sequence", Integer, nullable=False, default=0),
    Column("attempt", Integer, nullable=False, default=0),
    Column("lease_owner", NAME, nullable=True),
    Column("lease_token", BigInteger, nullable=False, default=0),
    Column("lease_expires_s", Float, nullable=False, default=0.0),
)
# newest first, per kind, with and without each filter users page by
Index("ix_jobs_kind_created", jobs.c.kind, jobs.c.created_s, jobs.c.job_id)
Index("ix_jobs_kind_state_created", jobs.c.kind, jobs.c.state, jobs.c.created_s, jobs.c.job_id)
Index("ix_jobs_kind_dataset_created", jobs.c.kind, jobs.c.dataset, jobs.c.created_s, jobs.c.job_id)
Index("ix_jobs_kind_architecture_created", jobs.c.kind, jobs.c.architecture, jobs.c.created_s, jobs.c.job_id)
Index("ix_jobs_kind_owner_state", jobs.c.kind, jobs.c.owner, jobs.c.state)
Index("ix_jobs_dataset_kind", jobs.c.dataset, jobs.c.kind)

job_events = Table(
    "job_events", metadata,
    Column("job_id", ID, ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True),
    Column("sequence", Integer, primary_key=True),
    Column("type", String(16), nullable=False),
    Column("time_s", Float, nullable=False),
    Column("body", Text, nullable=False),
)

job_heartbeats = Table(
    "job_heartbeats", metadata,
    Column("job_id", ID, ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True),
    Column("rank", Integer, primary_key=True),
    Column("attempt", Integer, nullable=False),
    Column("beat", BigInteger, nullable=False),
    Column("time_s", Float, nullable=False),
    Column("body", Text, nullable=False),
)

# jobs per kind and state, kept by the same transaction that changes a state (a gauge without a scan)
job_counts = Table(
    "job_counts", metadata,
    Column("kind", String(32), primary_key=True),
    Column("state", String(16), primary_key=True),
    Column("count", BigInteger, nullable=False, default=0),
)

datasets = Table(
    "datasets", metadata,
    Column("name", NAME, primary_key=True),
    Column("published", Boolean, nullable=False, default=False),
    Column("manifest_key", String(300), nullable=False, default=""),
    Column("manifest_sha256", String(64), nullable=False, default=""),
    Column("windows", BigInteger, nullable=False, default=0),
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("created_s", Float, nullable=False, default=0.0),
    Column("writer_job_id", ID, nullable=True),
    Column("writer_claimed_s", Float, nullable=False, default=0.0),
)
Index("ix_datasets_published_name", datasets.c.published, datasets.c.name)

models = Table(
    "models", metadata,
    Column("name", NAME, primary_key=True),
    Column("created_s", Float, nullable=False),
)

model_versions = Table(
    "model_versions", metadata,
    Column("name", NAME, ForeignKey("models.name", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("architecture", String(64), nullable=False, default=""),
    Column("dataset", NAME, nullable=False, default=""),
    Column("source_job_id", ID, nullable=False, default=""),
    Column("weights_key", String(300), nullable=False),
    Column("weights_sha256", String(64), nullable=False),
    Column("create_time", String(40), nullable=False),
    Column("card", Text, nullable=False),
)
Index("ix_model_versions_dataset", model_versions.c.dataset)
Index("ix_model_versions_weights_key", model_versions.c.weights_key)

model_aliases = Table(
    "model_aliases", metadata,
    Column("name", NAME, ForeignKey("models.name", ondelete="CASCADE"), primary_key=True),
    Column("alias", NAME, primary_key=True),
    Column("version", Integer, nullable=False),
)
Index("ix_model_aliases_name_version", model_aliases.c.name, model_aliases.c.version)
Index("ix_model_aliases_alias", model_aliases.c.alias)

usage = Table(
    "usage", metadata,
    Column("identity_id", NAME, primary_key=True),
    Column("stored_bytes", BigInteger, nullable=False, default=0),
)

# one-off facts of this database: when object storage was imported, by whom
meta = Table(
    "meta", metadata,
    Column("key", NAME, primary_key=True),
    Column("value", Text, nullable=False),
)
