"""Continuous annotation throughput: hours of 3-component 100 Hz data per second through Annotate
versus SeisBench's own annotation of the same PhaseNet weights (random weights, same both sides),
in the same run: same windows (3001 samples, overlap 1500), same stacking (average), and the same
output — picks at the same threshold (SeisBench's ``classify``: ``annotate`` plus pick extraction,
which is what Annotate streams back).

``ratio`` = Annotate hours/s / SeisBench hours/s (goal >= 1.0). Prints one JSON object last.

    python bench/annotate.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import obspy
import seisbench.models as sbm
import torch
from google.protobuf.timestamp_pb2 import Timestamp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.stack import running_stack  # noqa: E402
from quakestack.client import channel  # noqa: E402
from quakestack.data.synthetic import coloured_noise  # noqa: E402
from quakestack.model_store import ModelStore  # noqa: E402
from quakestack.v1 import inference_pb2, inference_pb2_grpc  # noqa: E402

RATE, CHUNK_S, BATCH, THRESHOLD = 100.0, 600.0, 256, 0.3


def make_stream(hours: float, stations: int) -> obspy.Stream:
    rng = np.random.default_rng(0)
    n = int(hours * 3600 * RATE)
    stream = obspy.Stream()
    for s in range(stations):
        data = (coloured_noise(rng, (3, n), RATE) * 300).astype(np.float32)
        for c, comp in enumerate("ZNE"):
            stream += obspy.Trace(data[c], header={"network": "XB", "station": f"S{s:03d}", "location": "00",
                                                   "channel": f"HH{comp}", "sampling_rate": RATE,
                                                   "starttime": obspy.UTCDateTime(2024, 1, 1)})
    return stream


def requests(stream: obspy.Stream, config: inference_pb2.AnnotateConfig):
    """The config, then every channel in CHUNK_S pieces, interleaved as a live feed arrives."""
    yield inference_pb2.AnnotateRequest(config=config)
    step = int(CHUNK_S * RATE)
    for a in range(0, stream[0].stats.npts, step):
        for tr in stream:
            start = Timestamp()
            start.FromNanoseconds(int(round((tr.stats.starttime.timestamp + a / RATE) * 1e9)))
            yield inference_pb2.AnnotateRequest(chunk=inference_pb2.ChannelChunk(
                seed_id=tr.id, start_time=start, sampling_rate_hz=RATE, data=tr.data[a:a + step].tobytes()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 hour of 2 stations (< 60 s in all)")
    args = parser.parse_args()
    hours, stations = (1.0, 2) if args.quick else (6.0, 4)
    stream = make_stream(hours, stations)
    data_hours = hours * stations
    torch.manual_seed(0)
    model = sbm.PhaseNet().eval()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    card = {"architecture": "seisbench:PhaseNet", "task": "picking", "hyper_parameters": {},
            "input_spec": {"n_samples": 3001, "components": "ZNE", "sampling_rate": RATE, "extra_inputs": []},
            "class_names": [], "normalization": "none", "metrics": {}}

    model.classify(make_stream(0.1, 1), overlap=1500, batch_size=BATCH)  # warm-up
    start = time.perf_counter()
    output = model.classify(stream, overlap=1500, batch_size=BATCH, stacking="avg", P_threshold=THRESHOLD,
                            S_threshold=THRESHOLD)
    seisbench_s = time.perf_counter() - start

    with running_stack(inference_log_sample_rate=0.0) as stack:
        ModelStore.from_settings(stack.settings).register("phasenet", buf.getvalue(), card)
        with channel(stack.settings.inference_addr) as ch:
            stub = inference_pb2_grpc.InferenceServiceStub(ch)
            stub.LoadModel(inference_pb2.LoadModelRequest(name="phasenet", max_batch_size=BATCH), timeout=60)
            config = inference_pb2.AnnotateConfig(model="phasenet", stride_s=15.01, threshold=THRESHOLD)
            list(stub.Annotate(requests(make_stream(0.1, 1), config), timeout=600))  # warm-up
            start = time.perf_counter()
            picks = sum(len(r.picks) for r in stub.Annotate(requests(stream, config), timeout=600))
            service_s = time.perf_counter() - start

    print(json.dumps({"bench": "annotate", "model": "seisbench:PhaseNet", "data_hours": data_hours,
                      "stations": stations, "annotate_s": round(service_s, 3), "seisbench_s": round(seisbench_s, 3),
                      "annotate_hours_per_s": round(data_hours / service_s, 3),
                      "seisbench_hours_per_s": round(data_hours / seisbench_s, 3), "picks": picks,
                      "seisbench_picks": len(output.picks),
                      "ratio": round(seisbench_s / service_s, 3)}))


if __name__ == "__main__":
    main()
