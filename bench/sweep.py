"""Sweeps: what early stopping saves, what it costs, and what the controller adds per trial.

The same sweep twice on one fresh stack (data + trainer, two CPU slots): 16 trials of 12 epochs (--quick: 6 of 3) of
ConvNetQuake-INGV magnitude models on a synthetic STEAD set ingested through the data service, searching the
learning rate (log scale) and the weight decay, two trials at once, the random sampler with one seed, so
both runs try exactly the same 16 settings (each trial's sampler seed derives from the sweep's seed and the
trial number). Run (a) prunes with the median pruner; run (b) has no pruner and runs every trial to the end.

- time_saved = 1 - wall(a) / wall(b)                         goal >= 0.40
- objective_loss = (best(a) - best(b)) / |best(b)|            goal <= 0.02 (val_loss, minimised)
- overhead_s_per_trial: from a slot freeing (the previous trial's job ending; the sweep's start for the
  first two) to the next trial's training job existing, mean over the trials. goal <= 1 s. The trial job's
  own start (the trainer's claim, the worker process, torch's import) is not the controller's and is left out.

Prints one JSON object as its last line.

    python bench/sweep.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from google.protobuf import struct_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.stack import running_stack  # noqa: E402
from bench.support.stead import ingest_stead  # noqa: E402
from quakestack.client import channel  # noqa: E402
from quakestack.data.synthetic import write_stead  # noqa: E402
from quakestack.protoconv import seconds_from_iso  # noqa: E402
from quakestack.v1 import (  # noqa: E402
    common_pb2,
    sweep_pb2,
    sweep_pb2_grpc,
    trainer_pb2,
    trainer_pb2_grpc,
)

GOALS = {"time_saved": 0.40, "objective_loss": 0.02, "overhead_s_per_trial": 1.0}


def request(trials: int, epochs: int, pruned: bool) -> sweep_pb2.CreateSweepRequest:
    fixed = struct_pb2.Struct()
    fixed.update({"n_samples": 3000, "batch_size": 32, "epochs": epochs, "seed": 1})
    return sweep_pb2.CreateSweepRequest(
        dataset="bench-sweep", architecture="convnetquake_ingv", hyper_parameters=fixed, device="cpu",
        search_space=[
            sweep_pb2.SearchParameter(name="learning_rate", type=sweep_pb2.SEARCH_PARAMETER_TYPE_FLOAT, low=1e-4,
                                      high=3e-2, log=True),
            sweep_pb2.SearchParameter(name="weight_decay", type=sweep_pb2.SEARCH_PARAMETER_TYPE_FLOAT, low=1e-6,
                                      high=1e-2, log=True)],
        objective=sweep_pb2.Objective(metric="val_loss"), sampler=sweep_pb2.SWEEP_SAMPLER_RANDOM,
        pruner=sweep_pb2.SWEEP_PRUNER_MEDIAN if pruned else sweep_pb2.SWEEP_PRUNER_NONE, parallel_trials=2,
        max_trials=trials, max_failures=trials, seed=42, pruner_startup_trials=2, pruner_warmup_epochs=1)


def run_sweep(addr: str, trials: int, epochs: int, pruned: bool) -> dict:
    with channel(addr) as ch:
        sweeps, trainer = sweep_pb2_grpc.SweepServiceStub(ch), trainer_pb2_grpc.TrainerServiceStub(ch)
        started = time.time()
        sweep = sweeps.CreateSweep(request(trials, epochs, pruned), timeout=60).sweep
        for update in sweeps.WatchSweep(sweep_pb2.WatchSweepRequest(sweep_id=sweep.sweep_id), timeout=3600):
            last = update.sweep
        wall = time.time() - started
        if last.state != common_pb2.JOB_STATE_SUCCEEDED:
            raise SystemExit(f"sweep failed: {last.error}")
        final = sweeps.GetSweep(sweep_pb2.GetSweepRequest(sweep_id=sweep.sweep_id), timeout=30).sweep
        jobs = [trainer.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=t.job_id), timeout=30).job
                for t in final.trials]
    return {"wall_s": wall, "sweep": final, "jobs": jobs, "created_s": started}


def controller_overheads(result: dict, parallel: int = 2) -> list[float]:
    """Per trial: its job's creation minus the moment its slot became free (a job ending, or the sweep start)."""
    jobs = result["jobs"]
    created = sorted(j.create_time.ToNanoseconds() / 1e9 for j in jobs)
    ends = sorted(j.update_time.ToNanoseconds() / 1e9 for j in jobs)
    start = seconds_from_iso(result["sweep"].create_time.ToJsonString()) or result["created_s"]
    out = []
    for k, at in enumerate(created):
        freed = start if k < parallel else ends[k - parallel]
        out.append(max(0.0, at - freed))
    return out


def summary(result: dict) -> dict:
    sweep = result["sweep"]
    states = [sweep_pb2.TrialState.Name(t.state).removeprefix("TRIAL_STATE_").lower() for t in sweep.trials]
    epochs = sum(len(t.intermediate_values) for t in sweep.trials)
    return {"wall_s": round(result["wall_s"], 1), "best": sweep.best_trial.value,
            "best_trial": sweep.best_trial.number, "trials": len(sweep.trials),
            "pruned": states.count("pruned"), "complete": states.count("complete"), "epochs_trained": epochs,
            "parameters": [dict(t.parameters) for t in sweep.trials]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6 trials of 3 epochs on 300 events (about 100 s)")
    args = parser.parse_args()
    trials, epochs, n_events = (6, 3, 300) if args.quick else (16, 12, 1500)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        source = Path(tmp) / "stead"
        write_stead(str(source), n_events=n_events, n_noise=n_events // 15, seed=1)
        with running_stack(("data", "trainer"), trainer_cpu_slots=2, health_interval_s=0.5, log_level="warning",
                           data_allowed_dirs=(source,)) as stack:
            ingest_stead(stack.settings.data_addr, source, "bench-sweep")
            pruned = run_sweep(stack.settings.trainer_addr, trials, epochs, pruned=True)
            full = run_sweep(stack.settings.trainer_addr, trials, epochs, pruned=False)
    a, b = summary(pruned), summary(full)
    if a.pop("parameters") != b.pop("parameters"):
        raise SystemExit("the two sweeps tried different settings: the comparison would mean nothing")
    overheads = controller_overheads(pruned) + controller_overheads(full)
    time_saved = 1.0 - pruned["wall_s"] / full["wall_s"]
    objective_loss = (a["best"] - b["best"]) / abs(b["best"])
    figures = {"time_saved": round(time_saved, 3), "objective_loss": round(objective_loss, 4),
               "overhead_s_per_trial": round(statistics.mean(overheads), 3),
               "overhead_s_p90": round(sorted(overheads)[int(0.9 * (len(overheads) - 1))], 3)}
    print(json.dumps({"pruned": a, "to_the_end": b}, indent=1), file=sys.stderr)
    print(json.dumps({
        "benchmark": "sweep", "quick": args.quick, "trials": trials, "epochs": epochs, "events": n_events,
        **figures, "pruned_trials": a["pruned"], "epochs_trained": [a["epochs_trained"], b["epochs_trained"]],
        "wall_s": [a["wall_s"], b["wall_s"]], "best": [a["best"], b["best"]],
        "goals": GOALS, "meets": {"time_saved": time_saved >= GOALS["time_saved"],
                                  "objective_loss": objective_loss <= GOALS["objective_loss"],
                                  "overhead_s_per_trial": figures["overhead_s_per_trial"]
                                  <= GOALS["overhead_s_per_trial"]}}))


if __name__ == "__main__":
    main()
