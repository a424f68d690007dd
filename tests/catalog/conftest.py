"""Catalog tests: object storage alone (a real SeaweedFS, no services) and one small synthetic network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from obspy import UTCDateTime

from quakestack.data.network import SyntheticNetwork, write_network
from quakestack.embedded.seaweed import SeaweedServer
from quakestack.storage import ObjectStore

MIDNIGHT_EVENT = UTCDateTime(2024, 3, 1, 23, 59, 58)


@pytest.fixture(scope="session")
def weed_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    directory = tmp_path_factory.mktemp("weed")
    weed = SeaweedServer(directory / "s3", log_path=directory / "weed.log").start()
    try:
        store = ObjectStore(weed.endpoint, weed.credentials.access_key, weed.credentials.secret_key, "catalog-tests")
        store.ensure_bucket()
        yield store
    finally:
        weed.stop()


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> SyntheticNetwork:
    """8 stations, 23:30 to 00:30 across two UTC days, 8 events (one at 23:59:58), one station-day missing."""
    directory = tmp_path_factory.mktemp("network")
    return write_network(str(directory), seed=5, start=UTCDateTime(2024, 3, 1, 23, 30),
                         end=UTCDateTime(2024, 3, 2, 0, 30), n_events=7, fixed_times=[MIDNIGHT_EVENT],
                         missing_days=[("XN.N005.00", "2024.062")])
