"""Dataset jobs fanned out over worker processes (quakestack.jobs.fanout), on real storage through a real
data service: two workers render disjoint shares whose shards are byte for byte those of one worker,
each shard recorded and published once; a peer SIGKILLed mid-job has its share taken over by rank 0
within the same attempt. The Indexed Job these workers become on Kubernetes is validated in
tests/trainer/test_multinode.py; the refusal of local paths for pods in test_executor_placement below."""

from __future__ import annotations

import signal
from collections import Counter

import psutil
import pytest

from quakestack.config import load_settings
from quakestack.errors import FailedPrecondition
from quakestack.jobs.executor import check_reachable_by_workers, local_workers
from quakestack.storage import ObjectStore
from quakestack.v1 import common_pb2
from tests.data.test_data_restart import (  # noqa: F401 - fixtures reused
    SLOW,
    _attempts,
    _create,
    _finished,
    _request,
    _shard_events,
    _source,
    _stored_shards_match,
    bucket_settings,
    own_data,
)
from tests.helpers import wait_for


def _results(store: ObjectStore, job_id: str) -> dict[str, dict]:
    """The shard results the job's workers created, by shard key."""
    values = [store.get_json(info.key) for info in store.list(f"jobs/{job_id}/shards/")]
    return {v["key"]: v for v in values}


def _peer(settings) -> psutil.Process | None:
    for proc in local_workers(settings.s3_endpoint, settings.s3_bucket):
        try:
            if proc.environ().get("JOB_FANOUT_INDEX") == "1":
                return proc
        except psutil.Error:
            continue
    return None


def _same_bytes(store: ObjectStore, a: str, b: str) -> None:
    first, second = _stored_shards_match(store, a), _stored_shards_match(store, b)
    assert [s["files"] for s in first] == [s["files"] for s in second], f"{a} and {b} differ"


def test_two_workers_render_disjoint_shares_with_the_bytes_of_one(own_data, tmp_path) -> None:  # noqa: F811
    settings = own_data.settings
    store = ObjectStore.from_settings(settings)
    prefix = _source(store, tmp_path, n_events=60, n_noise=12, seed=5)
    two = _create(settings.data_addr, _request("fanned", prefix, shard_size=6, workers=2))
    final = _finished(settings.data_addr, two)
    assert final.state == common_pb2.JOB_STATE_SUCCEEDED, final.error
    shards = _stored_shards_match(store, "fanned")
    keys = [e["shard"]["key"] for e in _shard_events(settings, two)]
    assert sorted(keys) == sorted(s["key"] for s in shards) and len(shards) >= 10, "each shard published once"
    ranks = Counter(r["rank"] for r in _results(store, two).values())
    assert set(ranks) == {0, 1} and abs(ranks[0] - ranks[1]) <= 1, f"shares i::2, got {ranks}"
    assert _attempts(settings, two) == Counter({1: 1})
    one = _create(settings.data_addr, _request("single", prefix, shard_size=6))
    assert _finished(settings.data_addr, one).state == common_pb2.JOB_STATE_SUCCEEDED
    _same_bytes(store, "fanned", "single")
    assert wait_for(lambda: not local_workers(settings.s3_endpoint, settings.s3_bucket), 15, 0.2), "left behind"


def test_a_killed_peer_has_its_share_taken_over_within_the_attempt(own_data, tmp_path) -> None:  # noqa: F811
    settings = own_data.settings
    store = ObjectStore.from_settings(settings)
    prefix = _source(store, tmp_path, n_events=120, n_noise=24, seed=7)
    job_id = _create(settings.data_addr, _request("taken-over", prefix, shard_size=6, workers=2,
                                                  preprocessing=SLOW))
    def peer_rendering() -> bool:  # the peer has recorded a shard: it is well into its share
        return _peer(settings) is not None and any(r["rank"] == 1 for r in _results(store, job_id).values())

    assert wait_for(peer_rendering, 120, 0.1)
    peer = _peer(settings)
    tree = [peer, *peer.children(recursive=True)]
    peer.send_signal(signal.SIGKILL)
    _, alive = psutil.wait_procs(tree, timeout=15)
    assert not alive, f"the killed peer left {[p.cmdline()[:3] for p in alive]} running"
    final = _finished(settings.data_addr, job_id)
    assert final.state == common_pb2.JOB_STATE_SUCCEEDED, final.error
    assert _attempts(settings, job_id) == Counter({1: 1}), "taken over by rank 0, not retried"
    shards = _stored_shards_match(store, "taken-over")
    keys = [e["shard"]["key"] for e in _shard_events(settings, job_id)]
    assert sorted(keys) == sorted(s["key"] for s in shards), "each shard published once"
    ranks = Counter(r["rank"] for r in _results(store, job_id).values())
    assert ranks[0] > ranks[1] + 1, f"rank 0 rendered the dead peer's rest: {ranks}"
    reference = _create(settings.data_addr, _request("unbroken", prefix, shard_size=6, preprocessing=SLOW))
    assert _finished(settings.data_addr, reference).state == common_pb2.JOB_STATE_SUCCEEDED
    _same_bytes(store, "taken-over", "unbroken")


def test_executor_placement_refuses_local_paths_for_pods() -> None:
    """Pods see object storage only: with the kubernetes executor a local path is refused before a job exists."""
    pods = load_settings({"QUAKESTACK_JOBS_EXECUTOR": "kubernetes"})
    with pytest.raises(FailedPrecondition, match=r"sources\[0\].waveforms is a local path of this service"):
        check_reachable_by_workers(pods, {"sources[0].waveforms": "/data/stead", "sources[0].catalog": ""})
    check_reachable_by_workers(pods, {"sources[0].waveforms": ""})  # objects only: fine
    check_reachable_by_workers(load_settings({}), {"sources[0].waveforms": "/data/stead"})  # local: fine
