"""A small real sweep through the gateway's REST routes (from the proto annotations), then its page and the
comparison page in headless Chromium: the trials' curves are drawn, one series per trial, and the objective
against the searched hyper-parameter."""

from __future__ import annotations

import json
import time

from quakestack.stack import Stack
from tests.console.browser import console_page, screenshot
from tests.console.test_console import CHART_COLOURS, COLOURED_PIXELS, browser, dataset  # noqa: F401 - fixtures
from tests.gateway.helpers import http

TRIALS = 2


def rest(stack: Stack, method: str, path: str, body: dict | None = None) -> dict:
    reply = http(method, f"{stack.endpoints().gateway}{path}", json.dumps(body).encode() if body else None,
                 {"content-type": "application/json"})
    assert reply.status == 200, (reply.status, reply.body[:500])
    return reply.json()


def test_a_sweep_and_its_comparison_in_the_console(stack: Stack, dataset: str, browser) -> None:  # noqa: F811
    sweep = rest(stack, "POST", "/v1/sweeps", {
        "dataset": dataset, "architecture": "convnetquake_ingv", "device": "cpu", "displayName": "console sweep",
        "hyperParameters": {"n_samples": 3000, "batch_size": 32, "epochs": 2},
        "searchSpace": [{"name": "learning_rate", "type": "SEARCH_PARAMETER_TYPE_FLOAT", "low": 0.001,
                         "high": 0.03, "log": True}],
        "objective": {"metric": "val_loss"}, "sampler": "SWEEP_SAMPLER_RANDOM", "pruner": "SWEEP_PRUNER_NONE",
        "maxTrials": TRIALS, "seed": 5})["sweep"]
    sweep_id = sweep["sweepId"]
    deadline = time.monotonic() + 240
    while sweep["state"] not in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED") and time.monotonic() < deadline:
        time.sleep(1.0)
        sweep = rest(stack, "GET", f"/v1/sweeps/{sweep_id}")["sweep"]
    assert sweep["state"] == "JOB_STATE_SUCCEEDED", sweep
    assert len(sweep["trials"]) == TRIALS and all(len(t["intermediateValues"]) == 2 for t in sweep["trials"])
    listed = rest(stack, "GET", "/v1/sweeps?pageSize=5")["sweeps"]
    assert sweep_id in [s["sweepId"] for s in listed] and not listed[0].get("trials")
    with console_page(browser, stack.endpoints().gateway) as (page, _log):
        page.goto(f"/console/#/sweeps/{sweep_id}")
        page.wait_for_selector("[data-testid=trials-table] tbody tr")
        assert page.locator("[data-testid=trials-table] tbody tr").count() == TRIALS
        page.wait_for_selector("[data-testid=sweep-curves] canvas")
        page.click("[data-testid=compare-trials]")
        page.wait_for_selector("[data-testid=compare-table] tbody tr")
        assert page.locator("[data-testid=compare-table] tbody tr").count() == TRIALS
        labels = page.evaluate("() => [...document.querySelectorAll('[data-testid=compare-curves] .u-series th')]"
                               ".map((th) => th.textContent.trim()).slice(1)")
        assert sorted(labels) == [f"trial {n}" for n in range(TRIALS)], labels
        drawn = page.evaluate(COLOURED_PIXELS, ["[data-testid=compare-curves] canvas", CHART_COLOURS[:TRIALS]])
        assert all(count > 20 for count in drawn), drawn  # every trial's curve is on the canvas
        page.select_option("[data-testid=compare-metric]", "rmse")
        page.wait_for_selector("[data-testid=compare-curves] .u-title:has-text('rmse per epoch')")
        assert page.locator("[data-testid=scatter-learning_rate] canvas").count() == 1
        screenshot(page, "sweep-compare")
