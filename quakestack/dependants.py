"""Who depends on a dataset or a model version, found by indexed queries of the metadata store.

A safe delete is refused with how many things still use what it would delete and the first few of
them, never with the whole list: a dataset under a thousand jobs gets a refusal of one line, in
milliseconds, that still reaches the client.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from quakestack.metadata.jobs import JobStore
from quakestack.metadata.registry import Registry
from quakestack.pagination import all_pages

FIRST_FEW = 5


@dataclass(frozen=True)
class Dependants:
    """What still uses a thing: (count, the first few names) per kind of user."""

    groups: list[tuple[str, int, list[str]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(count for _, count, _ in self.groups)

    def describe(self) -> str:
        parts = []
        for what, count, first in self.groups:
            if not count:
                continue
            shown = ", ".join(first)
            more = f" and {count - len(first)} more" if count > len(first) else ""
            parts.append(f"{count} {what} ({shown}{more})")
        return "; ".join(parts)


def dataset_dependants(jobs: JobStore, registry: Registry, dataset: str) -> Dependants:
    """Training jobs trained on `dataset` and registered model versions whose lineage names it."""
    job_count, job_ids = jobs.using_dataset(dataset, ("training",), FIRST_FEW)
    version_count, versions = registry.trained_on(dataset, FIRST_FEW)
    return Dependants([("training job(s)", job_count, [f"training job {j}" for j in job_ids]),
                       ("model version(s)", version_count, [f"model {n} version {v}" for n, v in versions])])


def model_version_dependants(registry: Registry, name: str, version: int,
                             loaded: Iterable[tuple[str, str]] = ()) -> Dependants:
    """Aliases pointing at the version, and inference services that have it loaded ((name, version) pairs)."""
    aliases = sorted(a for a, v in registry.aliases(name).items() if v == int(version))
    serving = [f"loaded in the inference service as {n!r}" for n, v in loaded if n == name and str(v) == str(version)]
    return Dependants([("alias(es)", len(aliases), [f"alias {a!r}" for a in aliases[:FIRST_FEW]]),
                       ("inference service(s)", len(serving), serving[:FIRST_FEW])])


def refusal(what: str, dependants: Dependants) -> str:
    """The FAILED_PRECONDITION message of a refused delete."""
    return f"{what} is still used by {dependants.describe()}. Delete those first, or pass force=true (--force)"


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
