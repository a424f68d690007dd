"""`quakestack train|models|predict|annotate` on the real stack: a short job from start to a prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quakestack.stack import Stack
from tests.cli.conftest import FAST_HP
from tests.helpers import wait_for


def epochs_done(cli_json, job_id: str) -> int:
    jobs = cli_json("train", "ls", "--all")
    jobs = jobs if isinstance(jobs, list) else [jobs]
    return next(int(j.get("epochsDone", 0)) for j in jobs if j["jobId"] == job_id)


@pytest.fixture
def s3_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """`train eval --out` reads plots from the bucket with the configured S3 settings."""
    s = stack.settings
    for name in ("s3_endpoint", "s3_access_key", "s3_secret_key", "s3_bucket"):
        monkeypatch.setenv(f"QUAKESTACK_{name.upper()}", str(getattr(s, name)))


def test_train_watch_eval_register_load_predict(cli, cli_json, small_dataset, s3_env, tmp_path: Path) -> None:
    code, out, err = cli("train", "start", "--dataset", small_dataset, "--arch", "convnetquake_ingv",
                         "--hp", *FAST_HP, "--epochs", "2")
    assert code == 0, err
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("epoch"))
    assert all(h in lines[header] for h in ("train loss", "val loss", "metrics", "lr", "samples/s", "ETA"))
    rows = [line.split() for line in lines[header + 2:] if line[:1].isdigit()]
    assert [r[0] for r in rows] == ["1", "2"] and all("rmse" in r and "r2" in r for r in rows)
    assert "train [" in err and "epoch 2/2" in err  # the live bar
    job_id = lines[0].split()[2].rstrip(":")
    assert "SUCCEEDED: 2/2 epochs" in out

    jobs = cli_json("train", "ls")
    jobs = jobs if isinstance(jobs, list) else [jobs]
    assert any(j["jobId"] == job_id and j["state"] == "JOB_STATE_SUCCEEDED" for j in jobs)
    events = cli_json("train", "watch", job_id)  # a finished job replays its history as JSON lines
    assert [e["epoch"]["epoch"] for e in events if "epoch" in e] == [1, 2]

    evaluation = cli_json("train", "eval", job_id, "--out", str(tmp_path / "plots"))
    assert {m["name"] for m in evaluation["metrics"]} >= {"rmse", "r2"} and len(evaluation["artifactKeys"]) == 2
    assert all(Path(p).read_bytes()[:4] == b"\x89PNG" for p in evaluation["downloaded"])
    code, out, _ = cli("train", "eval", job_id)
    assert code == 0 and "rmse" in out and "artifact jobs/" in out

    version = cli_json("models", "register", "cli-mag", "--job", job_id, "--alias", "staging")
    assert version["aliases"] == ["staging"] and version["architecture"] == "convnetquake_ingv"
    model = cli_json("models", "alias", "cli-mag", "production", str(version["version"]))
    assert model["aliases"]["production"] == version["version"]
    models = cli_json("models", "ls")
    models = models if isinstance(models, list) else [models]
    assert "cli-mag" in {m["name"] for m in models}
    loaded = cli_json("models", "load", "cli-mag", "--version", "production")
    assert int(loaded["inputSpec"]["nSamples"]) == 3000

    windows = np.random.default_rng(0).normal(0, 100, (3, 3, 3000)).astype(np.float32)
    np.save(tmp_path / "windows.npy", windows)
    predictions = cli_json("predict", "cli-mag", str(tmp_path / "windows.npy"))
    assert len(predictions) == 3 and all(np.isfinite(p["magnitude"]) for p in predictions)
    code, out, _ = cli("predict", "cli-mag", str(tmp_path / "windows.npy"))
    assert code == 0 and "magnitude" in out.splitlines()[0]

    # a magnitude model alone cannot annotate: the service says why, the CLI prints one line
    from quakestack.data.synthetic import write_continuous

    paths, _, _ = write_continuous(str(tmp_path / "cont"), seed=3, duration_s=300, n_events=1)
    code, _, err = cli("annotate", "cli-mag", *paths)
    assert code == 1 and err.strip().splitlines()[-1].startswith("error: INVALID_ARGUMENT:")
    rows = cli_json("predict", "cli-mag", paths[0])  # miniSEED cut into the model's 30 s windows
    assert len(rows) == 10 and {r["station"] for r in rows} == {Path(paths[0]).name.removesuffix(".mseed")}

    assert cli_json("models", "unload", "cli-mag")["unloaded"] is True
    code, _, err = cli("predict", "cli-mag", str(tmp_path / "windows.npy"))
    assert code == 1 and "not loaded" in err


def test_train_job_control(cli, cli_json, small_dataset) -> None:
    job = cli_json("train", "start", "--dataset", small_dataset, "--arch", "convnetquake_ingv", "--hp", *FAST_HP,
                   "--epochs", "30", "--no-wait")
    assert job["state"] in {"JOB_STATE_QUEUED", "JOB_STATE_RUNNING"}
    updated = cli_json("train", "update", job["jobId"], "--epochs", "1")
    assert updated["epochs"] == 1 and updated["hyperParameters"]["epochs"] == 1  # the current count, an integer
    code, out, err = cli("train", "watch", job["jobId"])
    assert code == 0, err
    assert "SUCCEEDED: 1/1 epochs" in out
    # lowered below the epochs done: it ends after the epoch in progress, and says so (never "28/5")
    job = cli_json("train", "start", "--dataset", small_dataset, "--arch", "convnetquake_ingv", "--hp", *FAST_HP,
                   "--epochs", "200", "--no-wait")
    assert wait_for(lambda: epochs_done(cli_json, job["jobId"]) >= 2, 120, 0.5)
    code, out, err = cli("train", "update", job["jobId"], "--epochs", "1")
    assert code == 0, err
    done, target = (int(n) for n in out.split(",")[1].split()[0].split("/"))
    assert target in {done, done + 1} and "it ends after the epoch in progress" in out, out
    code, out, err = cli("train", "watch", job["jobId"])
    assert code == 0 and "SUCCEEDED: " in out
    finished = out.split("SUCCEEDED: ")[1].split()[0].split("/")
    # epochs here take ~0.2 s and the worker reads its control every 0.5 s: a few more may finish first
    assert finished[0] == finished[1] and int(finished[0]) > done
    # `train cancel` is the short form of `train stop --cancel`
    job = cli_json("train", "start", "--dataset", small_dataset, "--arch", "convnetquake_ingv", "--hp", *FAST_HP,
                   "--epochs", "200", "--no-wait")
    code, out, err = cli("train", "cancel", job["jobId"])
    assert code == 0 and f"job {job['jobId']} cancelled" in out, err
    code, out, err = cli("train", "watch", job["jobId"])
    assert code == 1 and "CANCELLED" in err, (out, err)
    code, _, err = cli("train", "start", "--dataset", "no-such-dataset", "--arch", "convnetquake_ingv")
    assert code == 1 and err.startswith("error: NOT_FOUND:")
    code, _, err = cli("train", "start", "--dataset", small_dataset, "--arch", "convnetquake_ingv", "--hp", "oops")
    assert code == 1 and "key=value" in err
