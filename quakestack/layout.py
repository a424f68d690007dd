"""The object storage layout: every key the platform writes or reads is built (or parsed) here.

One function per row of the README's "Object storage layout" table, so a change of the layout is a
change of this module. User-chosen parts (dataset, model, alias, catalog and file names) are checked
with `validate_name` and every key with `validate_key`: no '..', no absolute keys, no odd characters,
each refused with INVALID_ARGUMENT naming what was wrong.
"""

from __future__ import annotations

import re
from datetime import datetime

from quakestack.errors import InvalidArgument

RAW_PREFIX = "raw/"
ARCHIVES_PREFIX = "archives/"  # waveform archives (SDS trees) that annotation jobs read
DATASETS_PREFIX = "datasets/"
JOBS_PREFIX = "jobs/"
MODELS_PREFIX = "models/"
INFERENCE_LOGS_PREFIX = "inference-logs/"
AUDIT_PREFIX = "audit/"
USAGE_PREFIX = "usage/"
CATALOGS_PREFIX = "catalogs/"

SHA256_SIDECAR = ".sha256"
MANIFEST_FILE = "manifest.json"
STOPPED = "stopped"
_EPOCH_LABEL = re.compile(r"epoch-([0-9]{4,})")
EVAL_DIR = "eval/"
TENSORBOARD_DIR = "tensorboard/"
# what DownloadArtifact builds on request instead of reading one object: every file of a job's folder, tar.gz
TENSORBOARD_ARCHIVE = "tensorboard.tar.gz"
EVAL_ARCHIVE = "eval.tar.gz"
JOB_ARCHIVES = {TENSORBOARD_ARCHIVE: TENSORBOARD_DIR, EVAL_ARCHIVE: EVAL_DIR}


_KEY_PART = re.compile(r"^[A-Za-z0-9._\-=$@+,:]+$")


def validate_key(key: str) -> str:
    """Refuse empty, absolute and traversing keys: a key is a relative path of plain parts."""
    if not isinstance(key, str) or not key:
        raise InvalidArgument("object key must not be empty")
    if key.startswith("/") or key.startswith("\\"):
        raise InvalidArgument(f"object key must be relative, got {key!r}")
    parts = key.rstrip("/").split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidArgument(f"object key {key!r} has an empty, '.' or '..' part")
        if not _KEY_PART.match(part):
            raise InvalidArgument(f"object key {key!r} has characters outside [A-Za-z0-9._-=$@+,:]")
    return key


def validate_name(name: str, what: str = "name") -> str:
    """A user-chosen name used as one key part (dataset, model, alias)."""
    if not name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,127}", name) or ".." in name:
        raise InvalidArgument(
            f"{what} {name!r} must be 1-128 letters, digits, '.', '-' or '_', starting with a letter or digit"
        )
    return name


def _id(value: str, what: str) -> str:
    """A generated id (job, upload, evaluation, token) is one plain key part like any name."""
    return validate_name(str(value), what)


# -- archives/<...>: SDS trees uploaded file by file --------------------------------------------------
def archive_key(key: str) -> str:
    """A file of an uploaded archive: a key under `archives/` with at least one folder of its own."""
    validate_key(key)
    if not key.startswith(ARCHIVES_PREFIX) or key.endswith("/") or key.count("/") < 2:
        raise InvalidArgument(f"archive_key must lie under {ARCHIVES_PREFIX}<name>/, e.g. "
                              f"archives/xn/sds/2024/XN/N000/HHZ.D/XN.N000.00.HHZ.D.2024.061; got {key!r}")
    return key


# -- raw/<upload-id>/<file> ------------------------------------------------------------------------
def upload_prefix(upload_id: str) -> str:
    return validate_key(f"{RAW_PREFIX}{_id(upload_id, 'upload id')}/")


def upload_key(upload_id: str, filename: str) -> str:
    """`raw/<upload-id>/<file>`: one uploaded file."""
    return validate_key(upload_prefix(upload_id) + validate_name(filename, "file name"))


def sha256_sidecar_key(key: str) -> str:
    """`<key>.sha256`: the digest a streamed upload stores beside its object."""
    return validate_key(key + SHA256_SIDECAR)


def is_sha256_sidecar(key: str) -> bool:
    return key.endswith(SHA256_SIDECAR)


# -- datasets/<name>/... ---------------------------------------------------------------------------
def dataset_prefix(name: str) -> str:
    return validate_key(f"{DATASETS_PREFIX}{validate_name(name, 'dataset name')}/")


def manifest_key(name: str) -> str:
    """`datasets/<name>/manifest.json`: stored last, before the dataset's catalog row is published."""
    return dataset_prefix(name) + MANIFEST_FILE


def dataset_writer_key(name: str) -> str:
    """`datasets/<name>/writer.json`: which job could write the dataset, in buckets of versions before the
    metadata store (read once by its import; the catalog row's writer took its place)."""
    return dataset_prefix(name) + "writer.json"


def shard_dir(split: str, index: int) -> str:
    """`shards/<split>/<nnnnn>`: a shard's place relative to its dataset (key prefix and local directory)."""
    return validate_key(f"shards/{validate_name(split, 'split')}/{int(index):05d}")


def shards_prefix(name: str) -> str:
    return dataset_prefix(name) + "shards/"


def dataset_file_key(name: str, relative: str) -> str:
    """`datasets/<name>/<relative>`: a shard file named relative to its dataset (as the manifest does)."""
    return validate_key(dataset_prefix(name) + validate_key(relative))


# -- jobs/<job-id>/... -----------------------------------------------------------------------------
def job_prefix(job_id: str) -> str:
    return validate_key(f"{JOBS_PREFIX}{_id(job_id, 'job id')}/")


def job_key(job_id: str, name: str) -> str:
    """`jobs/<job-id>/<name>`: any object of one job (the functions below name each kind)."""
    return validate_key(job_prefix(job_id) + name)


def spec_key(job_id: str) -> str:
    """`jobs/<job-id>/job.json`: a job's record in buckets of versions before the metadata store (imported)."""
    return job_key(job_id, "job.json")


def legacy_history_key(job_id: str) -> str:
    """`jobs/<job-id>/metrics.jsonl`: an older version's event history (rewritten whole per event); kept."""
    return job_key(job_id, "metrics.jsonl")


def control_key(job_id: str) -> str:
    """`jobs/<job-id>/control.json`: an older version's control record (desired epochs, stop, cancel, attempt)."""
    return job_key(job_id, "control.json")


def shard_result_key(job_id: str, shard: str) -> str:
    """`jobs/<job-id>/<shard dir>.json`: a rendered and uploaded shard's result, created once by whichever
    worker of a dataset job rendered it (a conditional create: a shard has one result)."""
    return job_key(job_id, f"{validate_key(shard)}.json")


def shard_results_prefix(job_id: str) -> str:
    return job_key(job_id, "shards/")


def events_prefix(job_id: str) -> str:
    """`jobs/<job-id>/events/`: an older version's event log, one object per event (imported)."""
    return job_key(job_id, "events/")


# -- jobs/<job-id>/checkpoints/ --------------------------------------------------------------------
def epoch_label(epoch: int) -> str:
    """`epoch-<nnnn>`: the label of the checkpoint written after an epoch."""
    if int(epoch) < 1:
        raise InvalidArgument(f"epoch must be at least 1, got {epoch}")
    return f"epoch-{int(epoch):04d}"


def label_epoch(label: str) -> int | None:
    """The epoch of an `epoch-<nnnn>` label; None for any other label (`stopped`)."""
    match = _EPOCH_LABEL.fullmatch(label)
    return int(match.group(1)) if match else None


def checkpoints_prefix(job_id: str) -> str:
    return job_key(job_id, "checkpoints/")


def checkpoint_key(job_id: str, label: str) -> str:
    """`jobs/<job-id>/checkpoints/<label>.pt`: `epoch-<nnnn>` every epoch, `stopped` after a graceful stop."""
    if label != STOPPED and label_epoch(label) is None:
        raise InvalidArgument(f"checkpoint label must be 'epoch-NNNN' or {STOPPED!r}, got {label!r}")
    return job_key(job_id, f"checkpoints/{label}.pt")


def epoch_checkpoint_key(job_id: str, epoch: int) -> str:
    return checkpoint_key(job_id, epoch_label(epoch))


def checkpoint_label(key: str) -> str | None:
    """The label of a checkpoint key (`.../checkpoints/epoch-0003.pt` -> `epoch-0003`); None otherwise."""
    parent, _, name = key.rpartition("/")
    if not parent.endswith("/checkpoints") or not name.endswith(".pt"):
        return None
    label = name[:-3]
    return label if label == STOPPED or label_epoch(label) is not None else None


def checkpoint_file_name(job_id: str, epoch: int) -> str:
    """`<job-id>-epoch-<nnnn>.pt`: the local file name a downloaded checkpoint is saved as."""
    return f"{_id(job_id, 'job id')}-{epoch_label(epoch)}.pt"


# -- jobs/<job-id>/eval/<evaluation-id>/ -----------------------------------------------------------
def evaluation_prefix(job_id: str, evaluation_id: str) -> str:
    """`jobs/<job-id>/eval/<evaluation-id>/`: an evaluation's plots (PNG) and metrics.json."""
    return job_key(job_id, f"{EVAL_DIR}{_id(evaluation_id, 'evaluation id')}/")


def artifact_key(job_id: str, path: str) -> str:
    """The key of an evaluation artifact named by its path inside the job (`eval/<id>/<file>`)."""
    path = validate_key(path)
    if not path.startswith(EVAL_DIR):
        raise InvalidArgument(f"path must lie under {EVAL_DIR} (evaluation artifacts) or be one of "
                              f"{', '.join(JOB_ARCHIVES)} (a folder as one archive), got {path!r}")
    return job_key(job_id, path)


# -- jobs/<job-id>/tensorboard/ -------------------------------------------------------------------
def tensorboard_key(job_id: str) -> str:
    """`jobs/<job-id>/tensorboard/events.out.tfevents.<job-id>`: the job's TensorBoard event file, rewritten whole
    from its epoch events after each epoch (one fixed name: a retried or resumed worker replaces it, never adds)."""
    return job_key(job_id, f"{TENSORBOARD_DIR}events.out.tfevents.{_id(job_id, 'job id')}")


def job_archive_prefix(job_id: str, path: str) -> str | None:
    """The folder of a job that DownloadArtifact sends as one tar.gz for `path` (`tensorboard.tar.gz`,
    `eval.tar.gz`); None for any other path (one stored artifact)."""
    folder = JOB_ARCHIVES.get(path)
    return job_key(job_id, folder) if folder else None


# -- models/<name>/... -----------------------------------------------------------------------------
def model_prefix(name: str) -> str:
    return validate_key(f"{MODELS_PREFIX}{validate_name(name, 'model name')}/")


def version_prefix(name: str, version: int) -> str:
    return validate_key(f"{model_prefix(name)}{int(version)}/")


def content_weights_key(name: str, sha256: str) -> str:
    """`models/<name>/weights/<sha256>.pt`: a registered version's weights (state_dict), named by their digest so
    that the bytes are stored before the version number is taken (the version's row names this key)."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise InvalidArgument(f"weights digest must be 64 hex digits, got {sha256!r}")
    return validate_key(f"{model_prefix(name)}weights/{sha256}.pt")


def card_key(name: str, version: int) -> str:
    """`models/<name>/<version>/model.json`: its card, as versions before the metadata store kept it (imported)."""
    return version_prefix(name, version) + "model.json"


def aliases_key(name: str) -> str:
    """`models/<name>/aliases.json`: alias -> version, as versions before the metadata store kept them (imported)."""
    return model_prefix(name) + "aliases.json"


# -- inference-logs/, audit/: hourly JSON-lines objects ----------------------------------------------
def log_batch_key(prefix: str, when: datetime, process: str, sequence: int) -> str:
    """`<prefix><date>/<hour>-<host>-<pid>-<n>.jsonl`: one flush of sampled predictions or audit events."""
    if prefix not in (INFERENCE_LOGS_PREFIX, AUDIT_PREFIX):
        raise InvalidArgument(f"log prefix must be {INFERENCE_LOGS_PREFIX!r} or {AUDIT_PREFIX!r}, got {prefix!r}")
    return validate_key(f"{prefix}{when:%Y-%m-%d}/{when:%H}-{process}-{int(sequence):06d}.jsonl")


# -- usage/<token-id>.json -------------------------------------------------------------------------
def usage_key(identity_id: str) -> str:
    """`usage/<token-id>.json`: bytes a token stored through uploads, as an older version counted them (imported)."""
    return validate_key(f"{USAGE_PREFIX}{identity_id}.json")  # token ids are configured, not user input


# -- catalogs/<catalog-id>/... ---------------------------------------------------------------------
def catalog_prefix(catalog_id: str) -> str:
    return validate_key(f"{CATALOGS_PREFIX}{validate_name(catalog_id, 'catalog id')}/")


def picks_key(catalog_id: str, task_id: str) -> str:
    """`catalogs/<catalog-id>/picks/<NET.STA.LOC.BAND.YYYY.DOY>.json`: one station-day task's picks."""
    return validate_key(catalog_prefix(catalog_id) + f"picks/{task_id}.json")  # task ids may hold '..' (no location)


CATALOG_FILES = ("catalog.xml", "events.csv", "picks.csv", "all_picks.csv", "summary.json")


def catalog_file_key(catalog_id: str, name: str) -> str:
    """`catalogs/<catalog-id>/{catalog.xml,events.csv,picks.csv,summary.json}`: the associated catalog."""
    if name not in CATALOG_FILES:
        raise InvalidArgument(f"catalog file must be one of {', '.join(CATALOG_FILES)}, got {name!r}")
    return catalog_prefix(catalog_id) + name


def catalog_evaluation_prefix(catalog_id: str, evaluation_id: str) -> str:
    """`catalogs/<catalog-id>/eval/<evaluation-id>/`: an EvaluateCatalog's plots (PNG) and metrics.json."""
    return catalog_prefix(catalog_id) + f"{EVAL_DIR}{_id(evaluation_id, 'evaluation id')}/"


def catalog_artifact_key(catalog_id: str, path: str) -> str:
    """The key of a catalog's evaluation artifact named by its path inside the catalog (`eval/<id>/<file>`)."""
    path = validate_key(path)
    if not path.startswith(EVAL_DIR):
        raise InvalidArgument(f"path must lie under {EVAL_DIR} (evaluation artifacts), got {path!r}")
    return catalog_prefix(catalog_id) + path
