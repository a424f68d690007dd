"""`quakestack up` as a user runs it: starts everything, stops everything on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from quakestack.client import channel, health_status
from quakestack.config import load_settings, settings_env
from quakestack.stack import with_free_ports
from tests.conftest import REPO_ROOT


def _start_up(tmp_path):
    """`quakestack up` as a user starts it (its own session), on free ports and a fresh storage directory."""
    settings = with_free_ports(load_settings({})).replace(storage_dir=str(tmp_path / "s3"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
    env.update({k: v for k, v in settings_env(settings).items() if k != "QUAKESTACK_S3_ENDPOINT"})
    proc = subprocess.Popen([sys.executable, "-m", "quakestack.cli", "up"], env=env, cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    return settings, proc


def test_up_starts_and_stops_everything(tmp_path) -> None:
    settings, proc = _start_up(tmp_path)
    lines = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "Ctrl-C stops everything" in line or not line:
            break
    output = "".join(lines)
    assert "quakestack is up" in output, output
    assert "embedded SeaweedFS" in output
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 5  # weed + data + trainer + inference + gateway
    with channel(settings.trainer_addr) as ch:
        assert health_status(ch, "quakestack.v1.ModelRegistryService") == "SERVING"
    time.sleep(6)  # weed's maintenance worker retries its admin connection every few seconds
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: SIGINT to the whole process group
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "quakestack: stopped cleanly (gateway, inference, trainer, data)" in rest, rest
    log_dir = next(line.split()[-1] for line in lines if line.strip().startswith("logs"))
    assert "admin server failed" not in (Path(log_dir) / "s3.log").read_text()  # SeaweedFS noise, silenced
    time.sleep(0.5)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert (tmp_path / "s3" / "credentials.json").stat().st_mode & 0o077 == 0


def test_a_sigkilled_up_leaves_no_process(tmp_path, dataset_root) -> None:
    """`up` killed with SIGKILL while a training job runs: its storage, services and gateway die with it, and
    the job's worker leaves within a heartbeat, putting its job back in the queue (no retry spent)."""
    from contextlib import closing

    from quakestack.embedded.seaweed import Credentials
    from quakestack.metadata.database import Database
    from quakestack.metadata.jobs import JobStore
    from quakestack.storage import ObjectStore
    from quakestack.v1 import trainer_pb2_grpc
    from tests.datasets import publish_synthetic_dataset
    from tests.trainer.conftest import create_job, wait_for_job

    settings, proc = _start_up(tmp_path)
    lines = []
    while not any("Ctrl-C stops everything" in line for line in lines):
        lines.append(proc.stdout.readline())
        assert lines[-1] or proc.poll() is None, "".join(lines)
    endpoint = next(line.split()[2] for line in lines if line.strip().startswith("object storage"))
    keys = Credentials.load_or_create(tmp_path / "s3" / "credentials.json")
    store = ObjectStore(endpoint, keys.access_key, keys.secret_key, settings.s3_bucket)
    with closing(Database.from_settings(settings)) as db:
        publish_synthetic_dataset(store, db, "syn", dataset_root, n_events=600, n_noise=40, seed=1)
    with channel(settings.trainer_addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        job = create_job(stub, "syn", epochs=40)
        wait_for_job(stub, job.job_id, lambda j: j.epochs_done >= 1)
    family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    workers = [p for p in psutil.process_iter(["cmdline"]) if "quakestack.jobs.worker" in " ".join(
        p.info["cmdline"] or []) and job.job_id in " ".join(p.info["cmdline"] or [])]
    assert len(family) >= 6 and workers, (family, workers)  # up, weed, the services, the gateway; the worker
    proc.kill()
    proc.wait(10)
    _, alive = psutil.wait_procs(family[1:] + workers, timeout=15)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], [p.cmdline()[:4] for p in alive]
    with closing(Database.from_settings(settings)) as db:
        view = JobStore(db).get(job.job_id)
    assert view.state.value == "QUEUED" and view.status["retries"] == 0, view.status
