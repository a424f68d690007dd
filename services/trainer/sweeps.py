"""SweepService servicer: protobuf in, one SweepJobs / compare call, protobuf out; and the conversions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2

from quakestack.jobs.listing import list_jobs
from quakestack.protoconv import dict_from_struct, struct_from_dict, timestamp_from_iso
from quakestack.sweeps.jobs import SweepJobs, sweep_record
from quakestack.v1 import sweep_pb2, sweep_pb2_grpc
from services.trainer import convert

SAMPLERS = {sweep_pb2.SWEEP_SAMPLER_UNSPECIFIED: "tpe", sweep_pb2.SWEEP_SAMPLER_TPE: "tpe",
            sweep_pb2.SWEEP_SAMPLER_RANDOM: "random", sweep_pb2.SWEEP_SAMPLER_GRID: "grid"}
PRUNERS = {sweep_pb2.SWEEP_PRUNER_UNSPECIFIED: "median", sweep_pb2.SWEEP_PRUNER_MEDIAN: "median",
           sweep_pb2.SWEEP_PRUNER_NONE: "none", sweep_pb2.SWEEP_PRUNER_HYPERBAND: "hyperband"}
DIRECTIONS = {sweep_pb2.OBJECTIVE_DIRECTION_UNSPECIFIED: "minimize", sweep_pb2.OBJECTIVE_DIRECTION_MINIMIZE: "minimize",
              sweep_pb2.OBJECTIVE_DIRECTION_MAXIMIZE: "maximize"}
TYPES = {sweep_pb2.SEARCH_PARAMETER_TYPE_FLOAT: "float", sweep_pb2.SEARCH_PARAMETER_TYPE_INT: "int",
         sweep_pb2.SEARCH_PARAMETER_TYPE_CATEGORICAL: "categorical"}
SAMPLER_ENUMS = {v: k for k, v in SAMPLERS.items() if k}
PRUNER_ENUMS = {v: k for k, v in PRUNERS.items() if k}
DIRECTION_ENUMS = {v: k for k, v in DIRECTIONS.items() if k}
TYPE_ENUMS = {v: k for k, v in TYPES.items()}
TRIAL_STATES = {"running": sweep_pb2.TRIAL_STATE_RUNNING, "complete": sweep_pb2.TRIAL_STATE_COMPLETE,
                "pruned": sweep_pb2.TRIAL_STATE_PRUNED, "failed": sweep_pb2.TRIAL_STATE_FAIL,
                "waiting": sweep_pb2.TRIAL_STATE_WAITING}


def _name(table: Mapping[int, str], value: int, field: str) -> str:
    """An enum value as its plain name; an unknown number stays visible so the library refuses it by name."""
    return table.get(value, f"{field} {value}")


def _values(values) -> list[Any]:
    return [json_format.MessageToDict(v) for v in values]


def _value(value: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    json_format.ParseDict(value, out)
    return out


def search_parameter_in(p: sweep_pb2.SearchParameter) -> dict[str, Any]:
    return {"name": p.name, "type": TYPES.get(p.type, ""), "low": p.low, "high": p.high, "log": p.log,
            "step": p.step, "choices": _values(p.choices),
            "condition": {"parameter": p.condition.parameter, "values": _values(p.condition.values)}
            if p.HasField("condition") and p.condition.parameter else None}


def search_parameter_out(p: Mapping[str, Any]) -> sweep_pb2.SearchParameter:
    out = sweep_pb2.SearchParameter(name=p["name"], type=TYPE_ENUMS[p["type"]], low=p["low"], high=p["high"],
                                    log=p["log"], step=p["step"], choices=[_value(c) for c in p["choices"]])
    if p.get("condition"):
        out.condition.parameter = p["condition"]["parameter"]
        out.condition.values.extend(_value(v) for v in p["condition"]["values"])
    return out


def trial_out(t: Mapping[str, Any] | None) -> sweep_pb2.SweepTrial | None:
    if not t:
        return None
    out = sweep_pb2.SweepTrial(number=t["number"], job_id=t["job_id"], state=TRIAL_STATES[t["state"]],
                               parameters=struct_from_dict(t["parameters"]), message=t.get("message", ""),
                               start_time=timestamp_from_iso(t.get("start_time")),
                               end_time=timestamp_from_iso(t.get("end_time")),
                               intermediate_values=[sweep_pb2.TrialValue(epoch=e, value=v)
                                                    for e, v in t["intermediate_values"]])
    if t.get("value") is not None:
        out.value = float(t["value"])
    return out


def sweep_out(r: Mapping[str, Any]) -> sweep_pb2.Sweep:
    objective = sweep_pb2.Objective(metric=r["objective"]["metric"],
                                    direction=DIRECTION_ENUMS[r["objective"]["direction"]])
    if r["objective"].get("target") is not None:
        objective.target = float(r["objective"]["target"])
    limits, counts = r["limits"], r.get("trial_counts") or {}
    out = sweep_pb2.Sweep(
        sweep_id=r["sweep_id"], display_name=r.get("display_name", ""), dataset=r["dataset"],
        architecture=r["architecture"], hyper_parameters=struct_from_dict(r.get("resolved_hyper_parameters", {})),
        search_space=[search_parameter_out(p) for p in r["search_space"]], objective=objective,
        sampler=SAMPLER_ENUMS[r["sampler"]], pruner=PRUNER_ENUMS[r["pruner"]],
        parallel_trials=int(limits["parallel_trials"]), max_trials=int(limits["max_trials"]),
        max_failures=int(limits["max_failures"]), time_budget_s=float(limits["time_budget_s"]),
        state=convert.state(r["state"]), error=r.get("error", ""),
        trial_counts=sweep_pb2.TrialCounts(**{k: int(counts.get(k, 0)) for k in
                                              ("running", "complete", "pruned", "failed", "waiting")}),
        importances={k: float(v) for k, v in (r.get("importances") or {}).items()},
        create_time=timestamp_from_iso(r.get("create_time")), update_time=timestamp_from_iso(r.get("update_time")),
        trials=[trial_out(t) for t in r.get("trials", [])], seed=int(r.get("seed", 0)),
        register_best=sweep_pb2.RegisterBest(**r.get("register_best", {})), message=r.get("message", ""))
    best = trial_out(r.get("best_trial"))
    if best is not None:
        out.best_trial.CopyFrom(best)
    if r.get("registered"):
        out.registered.CopyFrom(sweep_pb2.RegisteredVersion(**r["registered"]))
    return out


class SweepServicer(sweep_pb2_grpc.SweepServiceServicer):
    def __init__(self, sweeps: SweepJobs):
        self.sweeps = sweeps

    def _sweep(self, view, trials=None) -> sweep_pb2.Sweep:
        return sweep_out(sweep_record(view, trials))

    def CreateSweep(self, request, context):
        view = self.sweeps.create(
            dataset=request.dataset, architecture=request.architecture,
            hyper_parameters=dict_from_struct(request.hyper_parameters),
            search_space=[search_parameter_in(p) for p in request.search_space],
            objective={"metric": request.objective.metric,
                       "direction": _name(DIRECTIONS, request.objective.direction, "objective.direction"),
                       "target": request.objective.target if request.objective.HasField("target") else None},
            sampler=_name(SAMPLERS, request.sampler, "sampler"), pruner=_name(PRUNERS, request.pruner, "pruner"),
            limits={"max_trials": request.max_trials, "parallel_trials": request.parallel_trials,
                    "max_failures": request.max_failures, "time_budget_s": request.time_budget_s},
            enqueued=[dict_from_struct(s) for s in request.enqueued_trials], seed=request.seed,
            pruner_startup_trials=request.pruner_startup_trials if request.pruner_startup_trials else 2,
            pruner_warmup_epochs=request.pruner_warmup_epochs if request.pruner_warmup_epochs else 1,
            register_best={"model_name": request.register_best.model_name,
                           "aliases": list(request.register_best.aliases)},
            device=request.device or "auto", display_name=request.display_name)
        return sweep_pb2.CreateSweepResponse(sweep=self._sweep(view))

    def GetSweep(self, request, context):
        view = self.sweeps.get(request.sweep_id)
        return sweep_pb2.GetSweepResponse(sweep=self._sweep(view, self.sweeps.trials(request.sweep_id)))

    def ListSweeps(self, request, context):
        views, token = list_jobs(self.sweeps.scheduler, "ListSweeps", request)
        return sweep_pb2.ListSweepsResponse(sweeps=[self._sweep(v) for v in views], next_page_token=token)

    def WatchSweep(self, request, context):
        for view in self.sweeps.watch(request.sweep_id, context.is_active):
            yield sweep_pb2.WatchSweepResponse(sweep=self._sweep(view))

    def UpdateSweep(self, request, context):
        view = self.sweeps.update(request.sweep_id, {
            "max_trials": request.max_trials, "parallel_trials": request.parallel_trials,
            "max_failures": request.max_failures, "time_budget_s": request.time_budget_s},
            [dict_from_struct(s) for s in request.enqueue_trials])
        return sweep_pb2.UpdateSweepResponse(sweep=self._sweep(view))

    def StopSweep(self, request, context):
        return sweep_pb2.StopSweepResponse(sweep=self._sweep(self.sweeps.stop(request.sweep_id)))

    def CancelSweep(self, request, context):
        return sweep_pb2.CancelSweepResponse(sweep=self._sweep(self.sweeps.cancel(request.sweep_id)))

    def CompareRuns(self, request, context):
        result = self.sweeps.compare(request.sweep_id, list(request.job_ids), request.metric)
        return sweep_pb2.CompareRunsResponse(
            runs=[compared_run_out(r) for r in result["runs"]], metric=result["metric"],
            direction=DIRECTION_ENUMS[result["direction"]],
            varying_parameters=result["varying_parameters"])


def compared_run_out(r: Mapping[str, Any]) -> sweep_pb2.ComparedRun:
    out = sweep_pb2.ComparedRun(
        job_id=r["job_id"], display_name=r["display_name"], architecture=r["architecture"], dataset=r["dataset"],
        state=convert.state(r["state"]), hyper_parameters=struct_from_dict(r["hyper_parameters"]),
        epochs=[convert.epoch_metrics(e, r["class_names"]) for e in r["epochs"]], trial_number=r["trial_number"],
        trial_state=TRIAL_STATES.get(r["trial_state"], sweep_pb2.TRIAL_STATE_UNSPECIFIED))
    if r["objective"] is not None:
        out.objective = float(r["objective"])
    return out

