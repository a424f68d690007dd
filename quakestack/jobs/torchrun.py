"""What one node of a multi-node job runs: torchrun around the job runtime's worker, configured by PET_*.

The one builder of that command and environment: the kubernetes executor puts it into every pod of
an Indexed Job (PET_NODE_RANK from the completion index, PET_MASTER_ADDR the headless Service's name
of pod 0), the local executor starts it as one launcher process per node on loopback. torchrun reads
PET_<OPTION> as the default of --<option>, which is also how Kubeflow Trainer v2's torch runtime
configures it, so the same entry point runs under a Kubeflow TrainJob.
"""

from __future__ import annotations

from typing import Any

WORKER_MODULE = "quakestack.jobs.worker"
RENDEZVOUS_PORT = 29500


def worker_command(job_id: str, attempt: int) -> list[str]:
    """The worker's arguments after the interpreter (or torchrun)."""
    return ["-m", WORKER_MODULE, "--job-id", job_id, "--attempt", str(attempt)]


def container_command(job_id: str, attempt: int) -> list[str]:
    """What every node runs: torchrun (configured by PET_*) around the job runtime's worker."""
    return ["torchrun", *worker_command(job_id, attempt)]


def nodes_of(spec: dict[str, Any], gpu: bool | None = None) -> tuple[int, int]:
    """(nodes, processes per node): num_nodes x num_gpus on GPU, num_nodes x ddp_processes on CPU.

    gpu: whether the nodes have GPUs (None: unless the spec asks for the CPU). Specs of kinds without
    training hyper-parameters run on one node, one process."""
    hp = spec.get("training_hyper_parameters") or {}
    if gpu is None:
        gpu = spec.get("device", "auto") != "cpu"
    if gpu and spec.get("device", "auto") != "cpu":
        per_node = int(hp.get("num_gpus", 1) or 1)
    else:
        per_node = int(hp.get("ddp_processes", 1) or 1)
    return max(1, int(hp.get("num_nodes", 1) or 1)), max(1, per_node)


def torchrun_variables(nodes: int, per_node: int, master: str, port: int = RENDEZVOUS_PORT,
                       node_rank: int | None = 0) -> dict[str, str]:
    """The PET_* environment of one node (node_rank None: the caller supplies PET_NODE_RANK itself)."""
    env = {"PET_NNODES": str(nodes), "PET_NPROC_PER_NODE": str(per_node), "PET_MASTER_ADDR": master,
           "PET_MASTER_PORT": str(port)}
    if node_rank is not None:
        env["PET_NODE_RANK"] = str(node_rank)
    return env
