"""The dynamic batcher on its own: when a batch closes, how split requests come back, what a failure does.

The executor is woken only by the first request (to start the delay) and by a full batch; these tests
fail if either wake-up is lost (a full batch would wait out a 60 s delay) or the queued-window count drifts.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from quakestack.errors import DeadlineExceeded
from quakestack.inference.batcher import DynamicBatcher

WAIT_S = 30.0  # far below the long delays used here: a lost wake-up shows as a timeout


def windows(n: int, first: int = 0) -> np.ndarray:
    """n windows whose every sample is the window's number, so outputs show where each came from."""
    return np.repeat(np.arange(first, first + n, dtype=np.float32), 6).reshape(n, 2, 3)


class Recorder:
    """A run function that records each batch's size; ``fail`` makes the next batch raise."""

    def __init__(self):
        self.sizes: list[int] = []
        self.fail = False
        self.lock = threading.Lock()

    def __call__(self, x: np.ndarray, extras: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self.lock:
            self.sizes.append(int(x.shape[0]))
            if self.fail:
                self.fail = False
                raise RuntimeError("model exploded")
        return {"magnitude": x[:, 0, 0].copy()}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def test_a_full_batch_runs_at_once_without_waiting_out_the_delay(recorder) -> None:
    batcher = DynamicBatcher("m", recorder, max_batch_size=4, max_queue_delay_s=60.0)
    try:
        futures = [batcher.submit(windows(1, i)) for i in range(4)]
        outs = [f.result(timeout=WAIT_S) for f in futures]
    finally:
        batcher.close()
    assert recorder.sizes == [4]
    assert [float(o["magnitude"][0]) for o in outs] == [0.0, 1.0, 2.0, 3.0]


def test_a_lone_request_runs_when_the_delay_ends(recorder) -> None:
    batcher = DynamicBatcher("m", recorder, max_batch_size=32, max_queue_delay_s=0.05)
    try:
        out = batcher.submit(windows(3)).result(timeout=WAIT_S)
    finally:
        batcher.close()
    assert recorder.sizes == [3]
    np.testing.assert_array_equal(out["magnitude"], [0.0, 1.0, 2.0])


def test_a_request_split_over_batches_comes_back_whole_and_in_order(recorder) -> None:
    batcher = DynamicBatcher("m", recorder, max_batch_size=4, max_queue_delay_s=60.0)
    try:
        big = batcher.submit(windows(10))
        small = batcher.submit(windows(2, 100))  # fills the third batch: 4 + 4 + (2 + 2)
        np.testing.assert_array_equal(big.result(timeout=WAIT_S)["magnitude"], np.arange(10, dtype=np.float32))
        np.testing.assert_array_equal(small.result(timeout=WAIT_S)["magnitude"], [100.0, 101.0])
    finally:
        batcher.close()
    assert recorder.sizes == [4, 4, 4]
    assert batcher.stats.windows == 12 and not batcher.busy


def test_dropped_and_failed_requests_leave_the_count_of_queued_windows_right(recorder) -> None:
    """Sizes [1, 4, 4] hold only if the count forgets cancelled, expired and failed windows exactly:
    too high and a batch runs early, too low and a full batch waits out the 60 s delay."""
    batcher = DynamicBatcher("m", recorder, max_batch_size=4, max_queue_delay_s=60.0)
    try:
        ahead = batcher.submit(windows(1, 7))
        cancelled = batcher.submit(windows(2))
        batcher.cancel(cancelled)  # its caller gave up while it was queued behind another request
        with pytest.raises(DeadlineExceeded):
            cancelled.result(timeout=WAIT_S)
        expired = batcher.submit(windows(3), deadline=0.0)  # 1 + 3 queued windows fill the batch
        assert float(ahead.result(timeout=WAIT_S)["magnitude"][0]) == 7.0
        with pytest.raises(DeadlineExceeded):  # past its deadline: dropped when the batch formed, never run
            expired.result(timeout=WAIT_S)
        recorder.fail = True
        failing = [batcher.submit(windows(1, i)) for i in range(4)]
        for f in failing:
            with pytest.raises(RuntimeError, match="model exploded"):
                f.result(timeout=WAIT_S)
        after = [batcher.submit(windows(1, i)) for i in range(4)]
        assert [float(f.result(timeout=WAIT_S)["magnitude"][0]) for f in after] == [0.0, 1.0, 2.0, 3.0]
    finally:
        batcher.close()
    assert recorder.sizes == [1, 4, 4]
    assert not batcher.busy


def test_the_delay_runs_from_the_present_head_after_the_first_was_dropped(recorder) -> None:
    """A request queued after a dropped one waits its own full delay: the executor must not keep the
    dropped request's closing time (a batch would close early, for a lone request within its deadline)."""
    import time

    batcher = DynamicBatcher("m", recorder, max_batch_size=32, max_queue_delay_s=0.6)
    try:
        dropped = batcher.submit(windows(1))
        time.sleep(0.1)
        batcher.cancel(dropped)  # its caller's deadline passed while it waited
        time.sleep(0.3)
        started = time.monotonic()
        out = batcher.submit(windows(1, 5)).result(timeout=WAIT_S)
        waited = time.monotonic() - started
    finally:
        batcher.close()
    assert float(out["magnitude"][0]) == 5.0 and recorder.sizes == [1]
    assert waited >= 0.55, f"the batch closed {waited:.3f} s after its request, not after its own 0.6 s delay"
