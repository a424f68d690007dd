"""Optional location-cluster labels (ConvNetQuake's regions): k-means over event epicentres."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .records import ItemRef


def location_clusters(items: Sequence[ItemRef], n_clusters: int, seed: int = 0) -> dict[str, int]:
    """Cluster events by epicentre; returns event_id -> cluster (0..k-1, numbered by centroid lat, lon).

    Each event counts once (not once per station). Fewer events than clusters: k is reduced.
    Noise and events without coordinates are absent from the map (their label stays -1).
    """
    if n_clusters <= 0:
        return {}
    coords: dict[str, tuple[float, float]] = {}
    for it in items:
        if it.is_noise or not it.event_id or it.source_latitude is None or it.source_longitude is None:
            continue
        coords.setdefault(it.event_id, (it.source_latitude, it.source_longitude))
    if not coords:
        return {}
    ids = sorted(coords)
    pts = np.array([coords[i] for i in ids], dtype=float)
    k = min(n_clusters, len(np.unique(pts, axis=0)))
    if k <= 1:
        return {i: 0 for i in ids}
    from scipy.cluster.vq import kmeans2  # opt-in: scipy.cluster would add 0.3 s to every dataset worker's start

    centroids, labels = kmeans2(pts, k, seed=np.random.default_rng(seed), minit="++")
    order = np.lexsort((centroids[:, 1], centroids[:, 0]))
    rank = np.empty(k, dtype=int)
    rank[order] = np.arange(k)
    return {i: int(rank[lab]) for i, lab in zip(ids, labels, strict=True)}


def assign_clusters(items: Sequence[ItemRef], n_clusters: int, seed: int = 0) -> None:
    """Set ``location_cluster`` on each item in place (noise / unknown: -1)."""
    mapping = location_clusters(items, n_clusters, seed)
    for it in items:
        it.location_cluster = mapping.get(it.event_id, -1) if (it.event_id and not it.is_noise) else -1
