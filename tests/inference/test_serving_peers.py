"""The serving peers of bench/serving_peers.py are real servers that answer what quakestack answers.

MLServer (``.venv-mlserver``) and PyTriton (``.venv-pytriton``) are started as real processes on the model
registered here, sent every window once by the benchmark's own tritonclient program (``.venv-triton``) and
their magnitudes compared with the session stack's Predict; after each stops, nothing of its process
group (MLServer's workers, tritonserver and its Python stub) may be left. A peer is skipped only when its
virtualenv is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.support import peers
from quakestack.v1 import inference_pb2
from tests.inference.helpers import TINY_MAGNITUDE, predict_request, register

MODEL, TOLERANCE = "peers-mag", 1e-4
BATCHING = peers.Batching(max_batch_size=4, max_queue_delay_us=2000, torch_threads=1)

pytestmark = [pytest.mark.slow,  # starts MLServer and PyTriton (~25 s): the slow set, beside bench/serving_peers.py
              pytest.mark.skipif(not peers.TRITON_PYTHON.exists(),
                                 reason="no .venv-triton with tritonclient: run scripts/setup.sh --dev")]


@pytest.fixture(scope="module")
def served(registry, inference, tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    """The registered model's folder for the peers, the windows file, and quakestack's Predict of them."""
    register(registry, MODEL, "convnetquake_ingv", TINY_MAGNITUDE, normalization="std")
    inference.LoadModel(inference_pb2.LoadModelRequest(name=MODEL, max_batch_size=BATCHING.max_batch_size),
                        timeout=60)
    work = tmp_path_factory.mktemp("peers")
    card = registry.get(MODEL)
    folder = peers.write_model_folder(work / "model", card, registry.weights(card))
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((5, 3, TINY_MAGNITUDE["n_samples"])) * 1000 + rng.uniform(-300, 300, (5, 3, 1)))
    x = x.astype(np.float32)
    np.save(work / "windows.npy", x)
    answer = inference.Predict(predict_request(MODEL, x), timeout=60)
    return folder, work / "windows.npy", np.array([p.magnitude for p in answer.predictions], dtype=np.float32)


def _answers_like_predict(server: peers.ServerProcess, windows: Path, reference: np.ndarray, out: Path) -> None:
    pool = peers.ClientPool(server.target, MODEL, windows, processes=1)
    try:
        answers = pool.check(out)
    finally:
        pool.close()
    assert answers.shape == reference.shape
    np.testing.assert_allclose(answers, reference, rtol=0, atol=TOLERANCE)


@pytest.mark.skipif(not peers.MLSERVER_PYTHON.exists(), reason="no .venv-mlserver: run scripts/setup.sh --dev")
@pytest.mark.parametrize("workers", [1])  # MLServer's default: inference in a worker process
def test_mlserver_answers_like_predict(served, tmp_path, workers: int) -> None:
    folder, windows, reference = served
    with peers.mlserver(tmp_path, folder, MODEL, BATCHING, workers) as server:
        _answers_like_predict(server, windows, reference, tmp_path / "answers.npy")
    assert peers.group_members(server.proc.pid) == []


@pytest.mark.skipif(not peers.PYTRITON_PYTHON.exists(), reason="no .venv-pytriton: run scripts/setup.sh --dev")
def test_pytriton_answers_like_predict(served, tmp_path) -> None:
    folder, windows, reference = served
    with peers.pytriton(tmp_path, folder, MODEL, BATCHING) as server:
        _answers_like_predict(server, windows, reference, tmp_path / "answers.npy")
    assert peers.group_members(server.proc.pid) == []
