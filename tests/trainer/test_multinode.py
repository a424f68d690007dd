"""What a training pod runs, run here: the kubernetes executor's manifests (1 and 2 nodes) pass
`kubernetes-validate --strict`, and their container command and environment, started as local
processes against the embedded stack, train: two torchrun launchers on loopback (static rendezvous
on 127.0.0.1, gloo) give one job's events and checkpoints, and a model equal to a single-process run
with the same global batch and seed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from quakestack.config import settings_env
from quakestack.embedded.seaweed import free_ports
from quakestack.jobs.kubernetes import as_dicts, build_manifests
from quakestack.jobs.spec import JobRecord, new_job_id
from quakestack.metadata.database import Database
from quakestack.metadata.datasets import DatasetCatalog
from quakestack.metadata.jobs import JobStore
from quakestack.models.checkpoint import load_state
from quakestack.protoconv import utc_now_iso
from quakestack.stack import with_free_ports
from quakestack.storage import ObjectStore
from quakestack.training.jobs import KIND, SPEC_VERSION, build_spec
from tests.conftest import fresh_database
from tests.datasets import publish_synthetic_dataset
from tests.trainer.conftest import stored_events

REPO_ROOT = Path(__file__).resolve().parents[2]


def _submit(store: ObjectStore, db: Database, **hp) -> str:
    """A training job as the trainer would create it, without a scheduler (the test plays the pods)."""
    values = {"n_samples": 3000, "learning_rate": 0.005, "seed": 3, **hp}
    spec = build_spec(store, DatasetCatalog(db), dataset="syn", architecture="convnetquake_ingv", values=values,
                      device="cpu", display_name="", gpu_count=0)
    record = JobRecord(kind=KIND, version=SPEC_VERSION, job_id=new_job_id(), create_time=utc_now_iso(), spec=spec)
    JobStore(db).create(record, {"epochs": spec["epochs"], "attempt": 1},
                        {"type": "state", "state": "QUEUED", "message": "created"})
    return record.job_id


def _pod_processes(settings, db: Database, job_id: str, log_dir: Path) -> list[subprocess.Popen]:
    """One process per completion index, with the Job's command and environment; the headless
    Service's DNS name of pod 0 becomes 127.0.0.1, the Secrets and ConfigMap become our settings."""
    spec = JobStore(db).get(job_id).record.spec
    (job,) = [m for m in as_dicts(build_manifests(settings, job_id, 1, spec, gpu=False)) if m["kind"] == "Job"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[0] == "torchrun"
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    port = str(free_ports(1)[0])
    procs = []
    for index in range(job["spec"]["completions"]):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QUAKESTACK_", "PET_"))}
        env.update(settings_env(settings), OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
        for var in container["env"]:
            if "value" in var:
                env[var["name"]] = var["value"]
        env["PET_NODE_RANK"] = str(index)  # the completion index, as the fieldRef gives it
        env["PET_MASTER_PORT"] = port
        if env["PET_MASTER_ADDR"] != "127.0.0.1":
            env["PET_MASTER_ADDR"] = "127.0.0.1"  # pod 0's DNS name on the headless Service
        out = (log_dir / f"{job_id}-{index}.log").open("ab")
        procs.append(subprocess.Popen([torchrun, *command[1:]], env=env, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=REPO_ROOT, start_new_session=True))
        out.close()
    return procs


def _wait(procs: list[subprocess.Popen], timeout_s: float) -> list[int]:
    try:
        return [p.wait(timeout_s) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, 9)
                p.wait(10)


def _kubernetes_version() -> str:
    from kubernetes_validate.utils import all_versions, latest_version

    return "1.33.0" if "1.33.0" in all_versions() else latest_version()


@pytest.mark.parametrize("nodes", [1, 2])
def test_executor_manifests_pass_kubernetes_validate_strict(stack, tmp_path, nodes) -> None:
    pytest.importorskip("kubernetes_validate")
    spec = {"training_hyper_parameters": {"num_gpus": 1, "num_nodes": nodes, "ddp_processes": 1}, "device": "auto"}
    settings = stack.settings.replace(jobs_k8s_gpus_per_node=1, jobs_k8s_tolerations="nvidia.com/gpu:NoSchedule",
                                      jobs_k8s_node_selector="nvidia.com/gpu.present=true")
    manifests = as_dicts(build_manifests(settings, "0123456789abcdef", 2, spec))
    assert [m["kind"] for m in manifests] == (["Service", "Job"] if nodes > 1 else ["Job"])
    job = manifests[-1]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PET_NNODES"]["value"] == str(nodes) and env["PET_NPROC_PER_NODE"]["value"] == "1"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert job["spec"]["backoffLimit"] == 0
    if nodes > 1:
        assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == nodes
        assert "job-completion-index" in env["PET_NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"]
        assert pod["subdomain"] == manifests[0]["metadata"]["name"] and manifests[0]["spec"]["clusterIP"] == "None"
        assert env["PET_MASTER_ADDR"]["value"] == f"{job['metadata']['name']}-0.{job['metadata']['name']}"
    path = tmp_path / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(manifests))
    result = subprocess.run(["kubernetes-validate", "--strict", "-k", _kubernetes_version(), str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_torchrun_nodes_on_loopback_equal_one_process(stack, dataset_root, tmp_path, postgres_server) -> None:
    """The pods report to PostgreSQL, as a cluster's would: every rank reaches the same metadata store."""
    settings = with_free_ports(stack.settings).replace(s3_bucket="multinode-torchrun", jobs_heartbeat_s=0.5,
                                                       cache_dir=str(tmp_path / "cache"),
                                                       database_url=fresh_database(postgres_server))
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket()
    db = Database.from_settings(settings)
    db.upgrade()
    # events only: the magnitude loss skips noise windows, so ranks' means would weigh samples unequally
    publish_synthetic_dataset(store, db, "syn", dataset_root, n_events=600, n_noise=0, seed=1)
    two = _submit(store, db, epochs=2, batch_size=16, num_nodes=2)
    one = _submit(store, db, epochs=2, batch_size=32)
    assert _wait(_pod_processes(settings, db, two, tmp_path), 400) == [0, 0]
    assert _wait(_pod_processes(settings, db, one, tmp_path), 400) == [0]
    runs = {}
    for job_id, world in ((two, 2), (one, 1)):
        events = stored_events(db, job_id)
        assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2], "one job's events, each epoch once"
        running = [e for e in events if e["type"] == "state" and e["state"] == "RUNNING"]
        assert len(running) == 1 and running[0]["world_size"] == world
        assert events[-1]["state"] == "SUCCEEDED"
        runs[job_id] = load_state(store.get_bytes(f"jobs/{job_id}/checkpoints/epoch-0002.pt"))["model"]
    assert runs[two].keys() == runs[one].keys()
    for name, value in runs[one].items():
        torch.testing.assert_close(runs[two][name], value, rtol=1e-3, atol=1e-4, msg=name)
    db.close()


@pytest.mark.parametrize("kind", ["annotation", "dataset"])
def test_fanout_manifest_is_an_indexed_job_that_passes_kubernetes_validate_strict(tmp_path, kind: str) -> None:
    """Annotation jobs (station-days) and dataset jobs (shards) fan out the same way."""
    pytest.importorskip("kubernetes_validate")
    from quakestack.config import load_settings
    from quakestack.jobs.kubernetes import build_fanout_manifests

    spec = {"workers": 3, "device": "cpu"} if kind == "annotation" else {"workers": 3, "dataset": "x", "sources": []}
    (job,) = as_dicts(build_fanout_manifests(load_settings({}), "0123456789abcdef", 3, kind, spec))
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == f"{kind}-worker"
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 3
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["JOB_FANOUT_COUNT"]["value"] == "3"
    assert "job-completion-index" in env["JOB_FANOUT_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert not any(name.startswith("PET_") for name in env) and container["command"][0] == "python"
    for part in ("ACCESS", "SECRET"):  # the data service's identity: it writes catalogs/ and jobs/
        ref = env[f"QUAKESTACK_S3_{part}_KEY"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "quakestack-s3", "key": f"data-{part.lower()}-key"}
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert "nodeSelector" not in job["spec"]["template"]["spec"], "CPU pods stay off the GPU pool"
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump_all([job]))
    result = subprocess.run(["kubernetes-validate", "--strict", "-k", _kubernetes_version(), str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
