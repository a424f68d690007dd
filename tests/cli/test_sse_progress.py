"""The SSE stream of training progress arrives epoch by epoch while the job runs, not buffered to its end."""

from __future__ import annotations

import json
import time
import urllib.request

from quakestack.stack import Stack
from quakestack.v1 import trainer_pb2, trainer_pb2_grpc
from tests.gateway.helpers import http, read_sse_events

EPOCHS = 40  # far more than it trains: the test ends the job itself once it has seen LIVE epochs
SEEN_BEFORE_ENDING = 3


def test_training_progress_streams_live_over_sse(stack: Stack, trainer_channel, small_dataset) -> None:
    base = stack.endpoints().gateway
    body = {"dataset": small_dataset, "architecture": "convnetquake_ingv",
            "hyperParameters": {"n_samples": 3000, "learning_rate": 0.01, "batch_size": 8, "epochs": EPOCHS}}
    reply = http("POST", base + "/v1/training-jobs", json.dumps(body).encode(),
                 {"Content-Type": "application/json"})
    assert reply.status == 200, reply.body
    job_id = reply.json()["job"]["jobId"]
    stub = trainer_pb2_grpc.TrainerServiceStub(trainer_channel)

    request = urllib.request.Request(f"{base}/v1/training-jobs/{job_id}:progress",
                                     headers={"Accept": "text/event-stream"})
    arrivals: list[tuple[float, int, dict]] = []  # (arrival time, job state then, epoch event)
    with urllib.request.urlopen(request, timeout=300) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for event in read_sse_events(response):
            epoch = event.data.get("epoch") if isinstance(event.data, dict) else None
            if epoch:
                job = stub.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=job_id), timeout=10).job
                arrivals.append((time.monotonic(), job.state, epoch))

    assert [a[2]["epoch"] for a in arrivals] == list(range(1, EPOCHS + 1))
    # the first epoch event came while the job was still running, with epochs left to train
    from quakestack.v1 import common_pb2

    assert arrivals[0][1] == common_pb2.JOB_STATE_RUNNING
    # arrival times follow the training: spread like the epochs' own end times, not all at once
    spread = arrivals[-1][0] - arrivals[0][0]
    trained = arrivals[-1][2]["elapsedS"] - arrivals[0][2]["elapsedS"]
    assert trained > 0 and spread >= 0.5 * trained, (spread, trained)
