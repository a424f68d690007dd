"""The README's main job, `quakestack demo`, runs every step to the end (quick sizes, same code path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quakestack.demo import run_demo
from tests.conftest import fresh_settings


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results: dict = {}
    code = run_demo(fresh_settings(tmp_path), tmp_path / "demo", quick=True, results=results)
    out = capsys.readouterr().out
    assert code == 0, out[-4000:]
    assert {"rmse", "r2"} <= set(results["metrics"]), results
    plots = [Path(p) for p in results["plots"]]
    assert any(p.name == "true_vs_predicted.png" for p in plots)
    assert all(p.read_bytes()[:4] == b"\x89PNG" and p.parent == tmp_path / "demo" / "plots" for p in plots)
    assert results["events"] == 3 and "detected" in results
    for step in ("ingesting STEAD", "training a magnitude model", "evaluating", "ConvNetQuake detector",
                 "registering both", "annotating", "known events"):
        assert step in out, step
    assert "every step ran (quick run" in out and "OK" not in out.splitlines()[-1]
