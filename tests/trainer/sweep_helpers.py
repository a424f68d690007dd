"""Requests and waits shared by the sweep tests (real trainer processes, real Optuna storage)."""

from __future__ import annotations

import time

from google.protobuf import json_format, struct_pb2

from quakestack.v1 import common_pb2, sweep_pb2, sweep_pb2_grpc

# a magnitude model that learns within a few epochs on the 600-event synthetic set (tests.trainer.conftest)
FIXED = {"n_samples": 3000, "batch_size": 32, "seed": 3}


def struct(values: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def value(v) -> struct_pb2.Value:
    out = struct_pb2.Value()
    json_format.ParseDict(v, out)
    return out


def lr_space(low: float = 1e-3, high: float = 3e-2) -> list[sweep_pb2.SearchParameter]:
    return [sweep_pb2.SearchParameter(name="learning_rate", type=sweep_pb2.SEARCH_PARAMETER_TYPE_FLOAT, low=low,
                                      high=high, log=True)]


def sweep_request(dataset: str, *, epochs: int = 4, space=None, **fields) -> sweep_pb2.CreateSweepRequest:
    fields.setdefault("objective", sweep_pb2.Objective(metric="val_loss"))
    return sweep_pb2.CreateSweepRequest(dataset=dataset, architecture="convnetquake_ingv",
                                        hyper_parameters=struct({**FIXED, "epochs": epochs}),
                                        search_space=space if space is not None else lr_space(), device="cpu",
                                        **fields)


def state_name(v: int) -> str:
    return common_pb2.JobState.Name(v).removeprefix("JOB_STATE_")


def get_sweep(stub: sweep_pb2_grpc.SweepServiceStub, sweep_id: str) -> sweep_pb2.Sweep:
    return stub.GetSweep(sweep_pb2.GetSweepRequest(sweep_id=sweep_id), timeout=30).sweep


def wait_sweep(stub, sweep_id: str, predicate, timeout_s: float = 600) -> sweep_pb2.Sweep:
    deadline = time.monotonic() + timeout_s
    while True:
        sweep = get_sweep(stub, sweep_id)
        if predicate(sweep):
            return sweep
        if time.monotonic() > deadline:
            raise AssertionError(f"sweep {sweep_id} stuck: {state_name(sweep.state)} {sweep.trial_counts} "
                                 f"{sweep.error}")
        time.sleep(0.5)


def ended(sweep: sweep_pb2.Sweep) -> bool:
    return state_name(sweep.state) in {"SUCCEEDED", "FAILED", "CANCELLED", "STOPPED"}
