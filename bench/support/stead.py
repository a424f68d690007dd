"""A synthetic STEAD folder ingested through the data service, as a user's `data ingest` would: the dataset
every training and sweep benchmark starts from."""

from __future__ import annotations

from pathlib import Path

from quakestack.client import channel
from quakestack.v1 import common_pb2, data_pb2, data_pb2_grpc


def ingest_stead(addr: str, source: Path, name: str, timeout_s: float = 600, **options) -> None:
    """CreateDataset over the folder (``options``: more CreateDatasetRequest fields, e.g. window, split),
    watched to its end; exits naming the error when it fails."""
    with channel(addr) as ch:
        stub = data_pb2_grpc.DataServiceStub(ch)
        request = data_pb2.CreateDatasetRequest(name=name, seed=1, shard_size=512, sources=[
            data_pb2.DataSource(format=data_pb2.SOURCE_FORMAT_STEAD,
                                waveforms=common_pb2.Location(local_path=str(source)))], **options)
        job = stub.CreateDataset(request, timeout=30).job
        for event in stub.WatchDatasetJob(data_pb2.WatchDatasetJobRequest(job_id=job.job_id), timeout=timeout_s):
            last = event.job
        if last.state != common_pb2.JOB_STATE_SUCCEEDED:
            raise SystemExit(f"ingestion of {name} failed: {last.error}")
