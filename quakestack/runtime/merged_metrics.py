"""One /metrics for several processes: this process's registry plus other processes' counters, summed.

Counters and histograms of the given prefixes (what the other processes count: their calls and batches)
are added sample by sample, so ``grpc_server_handled_total`` and the inference histograms count every call
whichever process answered it. Their gauges and process_* series are left out: they describe one
process, and the series of this one stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

SUMMED_TYPES = frozenset({"counter", "histogram"})


class MergedRegistry:
    """Quacks like a CollectorRegistry for prometheus_client's exposition (collect, restricted_registry)."""

    def __init__(self, registry: CollectorRegistry, other_texts: Callable[[], list[str]],
                 prefixes: tuple[str, ...]):
        self.registry = registry
        self.other_texts = other_texts
        self.prefixes = prefixes

    def restricted_registry(self, names) -> MergedRegistry:  # noqa: ARG002 - ?name[]= filters are not honoured
        return self

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {f.name: f for f in self.registry.collect()}
        for text in self.other_texts():
            for family in text_string_to_metric_families(text):
                if family.type not in SUMMED_TYPES or not family.name.startswith(self.prefixes):
                    continue
                mine = families.get(family.name)
                if mine is None:
                    families[family.name] = family
                else:
                    _add(mine, family)
        yield from families.values()


def _add(into: Metric, other: Metric) -> None:
    """Sum ``other``'s samples into ``into`` (creation timestamps: this process's are kept)."""
    index = {(s.name, tuple(sorted(s.labels.items()))): i for i, s in enumerate(into.samples)}
    for sample in other.samples:
        if sample.name.endswith("_created"):
            continue
        key = (sample.name, tuple(sorted(sample.labels.items())))
        i = index.get(key)
        if i is None:
            index[key] = len(into.samples)
            into.samples.append(sample)
        else:
            into.samples[i] = into.samples[i]._replace(value=into.samples[i].value + sample.value)
