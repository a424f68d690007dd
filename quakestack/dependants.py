"""Who depends on a dataset or a model version, read from what storage holds (job records, model cards).

One small function per kind of thing deleted, so that safe deletes (refused with the list of
dependants unless forced) ask one place; the job-record layout is read only here, so a change of
the job runtime re-points this module and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable

from quakestack.errors import NotFound
from quakestack.layout import JOBS_PREFIX, job_id_of_spec_key, manifest_key
from quakestack.model_store import ModelStore
from quakestack.pagination import all_pages
from quakestack.storage import ObjectStore

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "STOPPED"}


def _job_records(store: ObjectStore) -> Iterable[dict]:
    for info in store.list(JOBS_PREFIX):
        if job_id_of_spec_key(info.key) is not None:
            try:
                yield store.get_json(info.key)
            except (NotFound, ValueError):
                continue  # deleted meanwhile, or half-written: not a dependant


def dataset_dependants(store: ObjectStore, dataset: str) -> list[str]:
    """Training jobs trained on `dataset` and registered model versions whose lineage names it."""
    out = []
    for record in _job_records(store):
        # training jobs keep their request in the runtime's versioned spec (quakestack.jobs.spec.JobRecord)
        if record.get("kind") == "training" and (record.get("spec") or {}).get("dataset") == dataset:
            out.append(f"training job {record.get('job_id')}")
    model_store = ModelStore(store)
    for name in model_store.model_names():
        for number in model_store.version_numbers(name):
            try:
                card = model_store.card(name, number)
            except NotFound:
                continue
            if card.get("dataset") == dataset:
                out.append(f"model {name} version {number}")
    return out


def model_version_dependants(store: ObjectStore, name: str, version: int,
                             loaded: Iterable[tuple[str, str]] = ()) -> list[str]:
    """Aliases pointing at the version, and inference services that have it loaded ((name, version) pairs)."""
    aliases = sorted(a for a, v in ModelStore(store).aliases(name).items() if v == int(version))
    out = [f"alias {a!r}" for a in aliases]
    out += [f"loaded in the inference service as {n!r}" for n, v in loaded if n == name and str(v) == str(version)]
    return out


def refusal(what: str, dependants: list[str]) -> str:
    """The FAILED_PRECONDITION message of a refused delete."""
    return f"{what} is still used by: {'; '.join(dependants)}. Delete those first, or pass force=true (--force)"


def loaded_versions(inference_addr: str, timeout_s: float = 2.0) -> list[tuple[str, str]]:
    """(name, version) of the models an inference service holds; empty when it cannot be reached (it then
    cannot be serving them either; its next LoadModel of a deleted version answers NOT_FOUND)."""
    import grpc

    from quakestack.client import channel
    from quakestack.v1 import inference_pb2, inference_pb2_grpc

    if not inference_addr:
        return []
    with channel(inference_addr) as ch:
        try:
            models = list(all_pages(inference_pb2_grpc.InferenceServiceStub(ch).ListLoadedModels,
                                    inference_pb2.ListLoadedModelsRequest(), "models", timeout=timeout_s))
        except grpc.RpcError:
            return []
    return [(m.name, str(m.version)) for m in models]


def dataset_exists(store: ObjectStore, dataset: str) -> bool:
    """A dataset exists exactly when its manifest does (what a resumed job would read)."""
    return store.exists(manifest_key(dataset))
