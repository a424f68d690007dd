"""`quakestack sweep ...`: hyper-parameter sweeps (SweepService) and run comparison, as tables.

A searched hyper-parameter is written `NAME=float:LOW:HIGH[:log][:step=S]`, `NAME=int:LOW:HIGH[:log]`
or `NAME=choice:A,B,C`, with `@PARENT=V1|V2` at the end when it is searched only for those values of another
searched parameter. The service checks every range against the architecture's declared bounds.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from quakestack.cli.common import CliError, Ctx, fmt, state_name, table, to_dict
from quakestack.cli.listing import STATES
from quakestack.cli.train import parse_hp
from quakestack.protoconv import struct_from_dict
from quakestack.v1 import common_pb2, sweep_pb2, sweep_pb2_grpc

TYPES = {"float": sweep_pb2.SEARCH_PARAMETER_TYPE_FLOAT, "int": sweep_pb2.SEARCH_PARAMETER_TYPE_INT,
         "choice": sweep_pb2.SEARCH_PARAMETER_TYPE_CATEGORICAL}
SAMPLERS = {"tpe": sweep_pb2.SWEEP_SAMPLER_TPE, "random": sweep_pb2.SWEEP_SAMPLER_RANDOM,
            "grid": sweep_pb2.SWEEP_SAMPLER_GRID}
PRUNERS = {"median": sweep_pb2.SWEEP_PRUNER_MEDIAN, "hyperband": sweep_pb2.SWEEP_PRUNER_HYPERBAND,
           "none": sweep_pb2.SWEEP_PRUNER_NONE}
RECONNECT_S = 120.0


def stub(ctx: Ctx) -> sweep_pb2_grpc.SweepServiceStub:
    return sweep_pb2_grpc.SweepServiceStub(ctx.channel("trainer"))


def _value(text: str) -> struct_pb2.Value:
    try:
        parsed: Any = json.loads(text)
    except json.JSONDecodeError:
        parsed = text
    out = struct_pb2.Value()
    json_format.ParseDict(parsed, out)
    return out


def parse_search(text: str) -> sweep_pb2.SearchParameter:
    """`NAME=float:LOW:HIGH[:log][:step=S][@PARENT=V1|V2]` and its int / choice forms."""
    body, _, condition = text.partition("@")
    name, sep, spec = body.partition("=")
    kind, _, rest = spec.partition(":")
    if not sep or not name or kind not in TYPES:
        raise CliError(f"--search {text!r}: expected NAME=float:LOW:HIGH[:log], NAME=int:LOW:HIGH or "
                       "NAME=choice:A,B,C (optionally @PARENT=V1|V2)")
    out = sweep_pb2.SearchParameter(name=name, type=TYPES[kind])
    if kind == "choice":
        out.choices.extend(_value(c) for c in rest.split(",") if c)
    else:
        parts = rest.split(":")
        try:
            out.low, out.high = float(parts[0]), float(parts[1])
            for extra in parts[2:]:
                if extra == "log":
                    out.log = True
                elif extra.startswith("step="):
                    out.step = float(extra[5:])
                else:
                    raise ValueError(extra)
        except (IndexError, ValueError):
            raise CliError(f"--search {text!r}: LOW and HIGH must be numbers; extras are :log and :step=S") from None
    if condition:
        parent, sep, values = condition.partition("=")
        if not sep or not parent or not values:
            raise CliError(f"--search {text!r}: a condition is @PARENT=V1|V2")
        out.condition.parameter = parent
        out.condition.values.extend(_value(v) for v in values.split("|"))
    return out


def parse_enqueue(items: list[str] | None) -> list[struct_pb2.Struct]:
    return [struct_from_dict(parse_hp(item.split(","))) for item in items or []]


def trial_rows(trials, names: list[str]) -> list[tuple]:
    return [(t.number, sweep_pb2.TrialState.Name(t.state).removeprefix("TRIAL_STATE_").lower(),
             fmt(t.value, 4) if t.HasField("value") else "", len(t.intermediate_values),
             *(_param(t.parameters, n) for n in names), t.job_id, t.message) for t in trials]


def _param(params: struct_pb2.Struct, name: str) -> str:
    if name not in params:
        return "-"
    v = params[name]
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def sweep_line(s: sweep_pb2.Sweep) -> str:
    c = s.trial_counts
    best = (f"; best trial {s.best_trial.number}: {s.objective.metric} {s.best_trial.value:.5g}"
            if s.HasField("best_trial") and s.best_trial.HasField("value") else "")
    return (f"sweep {s.sweep_id}: {state_name(s.state)}, {c.complete} complete, {c.running} running, "
            f"{c.pruned} pruned, {c.failed} failed of {s.max_trials}{best}")


def show_sweep(ctx: Ctx, s: sweep_pb2.Sweep) -> None:
    ctx.emit(to_dict(s))
    ctx.say(sweep_line(s))
    names = [p.name for p in s.search_space]
    if s.trials:
        ctx.say(table(trial_rows(s.trials, names), ("trial", "state", s.objective.metric, "epochs", *names, "job",
                                                    "note")))
    if s.importances:
        ctx.say("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(s.importances.items(),
                                                                              key=lambda kv: -kv[1])))
    if s.HasField("registered"):
        ctx.say(f"registered: {s.registered.name} v{s.registered.version}")
    if s.error or s.message:
        ctx.say(s.error or s.message)


def cmd_start(ctx: Ctx, a: argparse.Namespace) -> Any:
    if not a.search:
        raise CliError("give at least one --search NAME=float:LOW:HIGH (or int / choice)")
    metric, _, way = a.objective.partition(":")
    direction = {"": sweep_pb2.OBJECTIVE_DIRECTION_MINIMIZE, "min": sweep_pb2.OBJECTIVE_DIRECTION_MINIMIZE,
                 "max": sweep_pb2.OBJECTIVE_DIRECTION_MAXIMIZE}.get(way)
    if direction is None:
        raise CliError(f"--objective {a.objective!r}: METRIC, METRIC:min or METRIC:max")
    objective = sweep_pb2.Objective(metric=metric, direction=direction)
    if a.target is not None:
        objective.target = a.target
    model, _, aliases = (a.register or "").partition(":")
    request = sweep_pb2.CreateSweepRequest(
        dataset=a.dataset, architecture=a.architecture, hyper_parameters=struct_from_dict(parse_hp(a.hp)),
        search_space=[parse_search(s) for s in a.search], objective=objective, sampler=SAMPLERS[a.sampler],
        pruner=PRUNERS[a.pruner], parallel_trials=a.parallel, max_trials=a.trials, max_failures=a.max_failures,
        time_budget_s=a.budget_s, enqueued_trials=parse_enqueue(a.enqueue), seed=a.seed,
        pruner_startup_trials=a.pruner_startup, pruner_warmup_epochs=a.pruner_warmup,
        register_best=sweep_pb2.RegisterBest(model_name=model, aliases=[x for x in aliases.split(",") if x]),
        device=a.device, display_name=a.name)
    sweep = stub(ctx).CreateSweep(request, timeout=60).sweep
    ctx.following = (f"sweep {sweep.sweep_id}", f"quakestack sweep watch {sweep.sweep_id}")
    ctx.say(f"sweep {sweep.sweep_id}: {a.architecture} on {a.dataset!r}, {sweep.max_trials} trials, "
            f"{sweep.parallel_trials} at once, {a.sampler} sampler, {a.pruner} pruner")
    if a.no_wait:
        ctx.emit(to_dict(sweep))
        return sweep
    return watch(ctx, sweep.sweep_id)


def get(ctx: Ctx, sweep_id: str) -> sweep_pb2.Sweep:
    return stub(ctx).GetSweep(sweep_pb2.GetSweepRequest(sweep_id=sweep_id), timeout=30).sweep


def watch(ctx: Ctx, sweep_id: str) -> sweep_pb2.Sweep:
    """Follow the sweep (a line per change) to its end, riding out a trainer restart; then the trial table."""
    ctx.following = (f"sweep {sweep_id}", f"quakestack sweep watch {sweep_id}")
    last, lost_since = "", None
    while True:
        try:
            for update in stub(ctx).WatchSweep(sweep_pb2.WatchSweepRequest(sweep_id=sweep_id)):
                lost_since = None
                line = sweep_line(update.sweep)
                if line != last:
                    ctx.note(line)
                    last = line
            break
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or ctx.interrupted:
                raise
            lost_since = lost_since or time.monotonic()
            if time.monotonic() - lost_since > RECONNECT_S:
                raise
            time.sleep(1.0)
    final = get(ctx, sweep_id)
    show_sweep(ctx, final)
    if state_name(final.state) == "FAILED":
        raise CliError(f"sweep {sweep_id} FAILED: {final.error}")
    return final


def cmd_list(ctx: Ctx, a: argparse.Namespace) -> Any:
    request = sweep_pb2.ListSweepsRequest(page_size=a.limit, dataset=a.dataset, architecture=a.arch)
    if a.state:
        request.state = common_pb2.JobState.Value(f"JOB_STATE_{a.state.upper()}")
    response = stub(ctx).ListSweeps(request, timeout=30)
    ctx.emit([to_dict(s) for s in response.sweeps])
    rows = [(s.sweep_id, state_name(s.state), s.architecture, s.dataset, s.objective.metric,
             f"{s.trial_counts.complete}/{s.max_trials}",
             fmt(s.best_trial.value, 4) if s.best_trial.HasField("value") else "", s.display_name)
            for s in response.sweeps]
    ctx.say(table(rows, ("sweep", "state", "architecture", "dataset", "objective", "complete", "best", "name")))
    if response.next_page_token:
        ctx.note(f"the newest {len(rows)} shown; more match (--limit, or narrow with --state)")
    return response


def cmd_update(ctx: Ctx, a: argparse.Namespace) -> Any:
    sweep = stub(ctx).UpdateSweep(sweep_pb2.UpdateSweepRequest(
        sweep_id=a.sweep_id, max_trials=a.trials, parallel_trials=a.parallel, max_failures=a.max_failures,
        time_budget_s=a.budget_s, enqueue_trials=parse_enqueue(a.enqueue)), timeout=30).sweep
    ctx.emit(to_dict(sweep))
    ctx.say(f"sweep {sweep.sweep_id}: {sweep.max_trials} trials, {sweep.parallel_trials} at once, "
            f"{sweep.max_failures} failures allowed" + (f", budget {sweep.time_budget_s:g} s"
                                                         if sweep.time_budget_s else ""))
    return sweep


def cmd_compare(ctx: Ctx, a: argparse.Namespace) -> Any:
    if not a.sweep and not a.jobs:
        raise CliError("give --sweep ID or training job ids to compare")
    result = stub(ctx).CompareRuns(sweep_pb2.CompareRunsRequest(sweep_id=a.sweep, job_ids=a.jobs, metric=a.metric),
                                   timeout=60)
    ctx.emit(to_dict(result))
    names = list(result.varying_parameters)
    way = "max" if result.direction == sweep_pb2.OBJECTIVE_DIRECTION_MAXIMIZE else "min"
    rows = [(i + 1, r.job_id, r.trial_number if r.trial_number >= 0 else "", state_name(r.state),
             fmt(r.objective, 4) if r.HasField("objective") else "", len(r.epochs),
             *(_param(r.hyper_parameters, n) for n in names)) for i, r in enumerate(result.runs)]
    ctx.say(table(rows, ("rank", "job", "trial", "state", f"{result.metric} ({way})", "epochs", *names)))
    return result


def _simple(call: str, request_type):
    def run(ctx: Ctx, a: argparse.Namespace) -> Any:
        response = getattr(stub(ctx), call)(request_type(sweep_id=a.sweep_id), timeout=30)
        ctx.emit(to_dict(response.sweep))
        ctx.say(sweep_line(response.sweep))
        return response.sweep
    return run


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sweep = sub.add_parser("sweep", help="hyper-parameter sweeps (Optuna) and run comparison")
    ssub = sweep.add_subparsers(dest="sweep_command", required=True)
    p = ssub.add_parser("start", parents=[common], help="start a sweep and follow it to its end",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset")
    p.add_argument("architecture")
    p.add_argument("--search", action="append", metavar="SPEC",
                   help="a searched hyper-parameter: NAME=float:LOW:HIGH[:log][:step=S], NAME=int:LOW:HIGH[:log], "
                        "NAME=choice:A,B,C; add @PARENT=V1|V2 to search it only for those values (repeatable)")
    p.add_argument("--hp", action="append", metavar="KEY=VALUE", help="a fixed hyper-parameter of every trial "
                   "(epochs=8, batch_size=32, ...; repeatable)")
    p.add_argument("--objective", default="val_loss", help="METRIC[:min|:max] (default val_loss:min)")
    p.add_argument("--target", type=float, default=None, help="start no more trials once one reaches this value")
    p.add_argument("--sampler", choices=sorted(SAMPLERS), default="tpe", help="default tpe")
    p.add_argument("--pruner", choices=sorted(PRUNERS), default="median", help="default median")
    p.add_argument("--trials", type=int, default=0, help="trials in all (default 10; a grid's size for grid)")
    p.add_argument("--parallel", type=int, default=0, help="trials at once (default 1)")
    p.add_argument("--max-failures", type=int, default=0, help="failed trials that end the sweep (default 3)")
    p.add_argument("--budget-s", type=float, default=0.0, help="no new trial after this many seconds (0: none)")
    p.add_argument("--enqueue", action="append", metavar="K=V,K=V", help="values to try first (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed (default 0)")
    p.add_argument("--pruner-startup", type=int, default=0, help="complete trials before pruning (default 2)")
    p.add_argument("--pruner-warmup", type=int, default=0, help="epochs before a trial may be pruned (default 1)")
    p.add_argument("--register", default="", metavar="NAME[:ALIAS,...]",
                   help="register the best trial as a version of NAME when the sweep ends")
    p.add_argument("--device", default="", help="auto (default), cpu or cuda:N for every trial")
    p.add_argument("--name", default="", help="a label shown in listings")
    p.add_argument("--no-wait", action="store_true", help="answer at once instead of following the sweep")
    p.set_defaults(func=cmd_start)
    for name, what in (("get", "a sweep with its trials (a table)"), ("watch", "follow a sweep to its end")):
        q = ssub.add_parser(name, parents=[common], help=what)
        q.add_argument("sweep_id")
        q.set_defaults(func=(lambda ctx, a: show_sweep(ctx, get(ctx, a.sweep_id))) if name == "get"
                       else (lambda ctx, a: watch(ctx, a.sweep_id)))
    q = ssub.add_parser("list", parents=[common], help="sweeps, newest first")
    q.add_argument("--state", default="", choices=["", *STATES], metavar="STATE", help="only sweeps in this state")
    q.add_argument("--dataset", default="", help="only sweeps of this dataset")
    q.add_argument("--arch", default="", help="only sweeps of this architecture")
    q.add_argument("--limit", type=int, default=50, help="newest sweeps shown (default 50)")
    q.set_defaults(func=cmd_list)
    q = ssub.add_parser("update", parents=[common], help="change a running sweep's limits or enqueue trials")
    q.add_argument("sweep_id")
    q.add_argument("--trials", type=int, default=0, help="new trial limit")
    q.add_argument("--parallel", type=int, default=0, help="new number of trials at once")
    q.add_argument("--max-failures", type=int, default=0, help="new number of failures allowed")
    q.add_argument("--budget-s", type=float, default=0.0, help="new time budget (seconds from the sweep's start)")
    q.add_argument("--enqueue", action="append", metavar="K=V,K=V", help="values to try next (repeatable)")
    q.set_defaults(func=cmd_update)
    for name, call, request, what in (
            ("stop", "StopSweep", sweep_pb2.StopSweepRequest, "start no more trials; let the running ones finish"),
            ("cancel", "CancelSweep", sweep_pb2.CancelSweepRequest, "cancel the sweep and its running trials")):
        q = ssub.add_parser(name, parents=[common], help=what)
        q.add_argument("sweep_id")
        q.set_defaults(func=_simple(call, request))
    q = ssub.add_parser("compare", parents=[common], help="runs side by side: objective, hyper-parameters, epochs")
    q.add_argument("jobs", nargs="*", help="training job ids")
    q.add_argument("--sweep", default="", help="every trial of this sweep")
    q.add_argument("--metric", default="", help="rank by this metric (default: the sweep's objective, else val_loss)")
    q.set_defaults(func=cmd_compare)
