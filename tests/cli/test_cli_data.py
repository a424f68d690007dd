"""`quakestack data ...` on the real stack: uploads with progress, ingestion watched to its end, errors."""

from __future__ import annotations

from pathlib import Path

from quakestack.data.synthetic import write_stead
from quakestack.stack import Stack


def test_ingest_uploaded_stead_then_list_describe_delete(cli, cli_json, tmp_path: Path) -> None:
    write_stead(str(tmp_path / "stead"), n_events=40, n_noise=4, seed=5)
    code, out, err = cli("data", "ingest", "cli-stead", str(tmp_path / "stead"), "--format", "stead",
                         "--split", "0.7,0.15,0.15", "--shard-size", "16", "--seed", "2")
    assert code == 0, err
    assert "upload chunk1.hdf5 [" in err and "100%" in err  # the upload's progress bar
    assert "ingest [" in err and "windows" in err  # the job's progress bar
    assert "dataset 'cli-stead' published: 44 windows" in out

    listed = cli_json("data", "ls")
    listed = listed if isinstance(listed, list) else [listed]
    assert "cli-stead" in {d["name"] for d in listed}
    described = cli_json("data", "describe", "cli-stead")
    assert int(described["dataset"]["windowSamples"]) == 6000
    assert sum(int(s["windows"]) for s in described["dataset"]["splits"]) == 44
    assert described["manifest"]["shards"]

    code, out, _ = cli("data", "describe", "cli-stead")
    assert code == 0 and "split" in out and "earthquake=" in out
    deleted = cli_json("data", "rm", "cli-stead")
    assert deleted["name"] == "cli-stead" and int(deleted["objectsDeleted"]) > 0
    code, out, err = cli("data", "describe", "cli-stead")
    assert code == 1 and out == ""
    assert err.startswith("error: NOT_FOUND: ") and len(err.strip().splitlines()) == 1


def test_ingest_local_no_wait_then_watch_json(cli, cli_json, stack: Stack) -> None:
    allowed = Path(stack.settings.data_allowed_dirs[0])
    write_stead(str(allowed / "cli-local"), n_events=20, n_noise=2, seed=6)
    job = cli_json("data", "ingest", "cli-local", str(allowed / "cli-local"), "--local", "--no-wait")
    assert job["dataset"] == "cli-local" and job["state"] in {"JOB_STATE_QUEUED", "JOB_STATE_RUNNING"}
    events = cli_json("data", "watch", job["jobId"])
    events = events if isinstance(events, list) else [events]
    assert events[-1]["state"] == "JOB_STATE_SUCCEEDED" and int(events[-1]["progress"]["windowsWritten"]) == 22


def test_errors_are_one_line_and_exit_1(cli, tmp_path: Path) -> None:
    code, _, err = cli("data", "describe", "no-such-dataset")
    assert code == 1 and err.strip().startswith("error: NOT_FOUND:")
    code, _, err = cli("data", "ingest", "x", str(tmp_path / "missing"), "--format", "stead")
    assert code == 1 and "no such file" in err
    code, _, err = cli("data", "ingest", "bad name!", str(tmp_path), "--local")
    assert code == 1 and err.startswith("error: INVALID_ARGUMENT:")
