"""The README's main job, `quakestack demo`, runs every step to the end and prints the figures the README
states (within the tolerance the README gives)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from quakestack.cli.demo import DEMO_MARKER, fresh_workdir, run_demo
from tests.conftest import fresh_settings

README = Path(__file__).resolve().parents[1] / "README.md"
FIGURES = (re.compile(r"\[demo\] magnitude model: RMSE (?P<rmse>[\d.]+), R² (?P<r2>[\d.]+)"),
           re.compile(r"\[demo\] annotation: (?P<detected>\d+)/(?P<events>\d+) known events detected, "
                      r"(?P<unmatched>\d+) unmatched detections"),
           re.compile(r"\[demo\] catalog: (?P<found>\d+)/(?P<known>\d+) known events found, precision "
                      r"(?P<precision>[\d.]+), recall (?P<recall>[\d.]+), magnitude RMSE (?P<network_rmse>[\d.]+)"))


def figures(text: str) -> dict[str, float]:
    """The demo's closing figures from its output, or from the README's copy of it ({} if missing)."""
    found = [pattern.search(text) for pattern in FIGURES]
    return {k: float(v) for m in found if m for k, v in m.groupdict().items()}


@pytest.mark.timeout(900)  # ~2 min on 2 cores; kept in the default run: it is the README's main job
def test_demo_runs_end_to_end_and_prints_the_readme_figures(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    results: dict = {}
    code = run_demo(fresh_settings(tmp_path), tmp_path / "demo", quick=False, results=results)
    out = capsys.readouterr().out
    assert code == 0, out[-4000:]
    plots = [Path(p) for p in results["plots"]]
    assert any(p.name == "true_vs_predicted.png" for p in plots)
    assert all(p.read_bytes()[:4] == b"\x89PNG" and p.parent == tmp_path / "demo" / "plots" for p in plots)
    for step in ("ingesting STEAD", "training a magnitude model", "evaluating", "ConvNetQuake detector",
                 "registering both", "annotating", "known events", "building a catalog", "against the network"):
        assert step in out, step
    assert out.splitlines()[-1].startswith("[demo] OK")

    stated, printed, metrics = figures(README.read_text()), figures(out), results["metrics"]
    assert len(stated) == 10, "the README no longer states what the demo prints"
    assert len(printed) == 10 and printed["rmse"] == round(metrics["rmse"], 3), out[-2000:]
    assert abs(metrics["rmse"] - stated["rmse"]) <= 0.05, (metrics, stated)
    assert abs(metrics["r2"] - stated["r2"]) <= 0.05, (metrics, stated)
    assert results["events"] == stated["events"] and abs(results["detected"] - stated["detected"]) <= 1, results
    assert abs(results["false_detections"] - stated["unmatched"]) <= 1, results
    catalog = results["catalog"]
    assert catalog["reference"] == stated["known"] and abs(catalog["matched"] - stated["found"]) <= 1, catalog
    assert abs(catalog["precision"] - stated["precision"]) <= 0.1 and abs(catalog["recall"] - stated["recall"]) <= 0.1
    assert abs(catalog["magnitude_rmse"] - stated["network_rmse"]) <= 0.1, (catalog, stated)
    assert (tmp_path / "demo" / "plots" / "event_map.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_demo_magnitude_model_converges_at_1_and_2_threads(tmp_path: Path) -> None:
    """The demo's magnitude training (its data, splits and hyper-parameters, in-process) at 1 and at 2 torch
    threads: other floating-point sums, the same figures within the README's tolerance. It once stopped
    mid-descent, where such noise alone moved the test RMSE by 0.2 between machines of one kind."""
    stated = figures(README.read_text())
    runs = {}
    for threads in (1, 2):
        done = subprocess.run([sys.executable, "-m", "tests.demo_magnitude", str(threads), str(tmp_path)],
                              cwd=README.parent, capture_output=True, text=True, timeout=500)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[threads] = json.loads(done.stdout.strip().splitlines()[-1])
    for figure in ("rmse", "r2"):
        assert abs(runs[1][figure] - runs[2][figure]) <= 0.05, runs
        assert all(abs(run[figure] - stated[figure]) <= 0.05 for run in runs.values()), (runs, stated)


def test_a_second_demo_run_starts_fresh_and_keeps_the_first_once(tmp_path: Path) -> None:
    """Running the README's main command twice worked once: the second run found its dataset already there."""
    workdir = tmp_path / "demo"
    assert fresh_workdir(workdir) is None and (workdir / DEMO_MARKER).exists()
    (workdir / "metadata.db").write_text("first run")
    assert fresh_workdir(workdir) == tmp_path / "demo.previous"
    assert sorted(p.name for p in workdir.iterdir()) == [DEMO_MARKER]
    assert (tmp_path / "demo.previous" / "metadata.db").read_text() == "first run"
    (workdir / "metadata.db").write_text("second run")
    fresh_workdir(workdir)
    assert (tmp_path / "demo.previous" / "metadata.db").read_text() == "second run"


def test_the_demo_refuses_a_directory_it_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "thesis.tex").write_text("years of work")
    assert run_demo(fresh_settings(tmp_path / "unused"), tmp_path) == 2
    assert "not written by the demo" in capsys.readouterr().out
    assert (tmp_path / "thesis.tex").read_text() == "years of work" and not (tmp_path / DEMO_MARKER).exists()
    assert not (tmp_path.parent / (tmp_path.name + ".previous")).exists()
