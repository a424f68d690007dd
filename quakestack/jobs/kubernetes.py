"""The kubernetes executor: one batch/v1 Job per attempt of a training job, on the GPU node pool.

A 1-node job is a plain Job; a multi-node DDP job is an Indexed Job (completions = parallelism =
nodes) plus a headless Service for the rendezvous, launched with torchrun's static rendezvous and
the environment Kubeflow Trainer v2's torch runtime injects (PET_NNODES, PET_NPROC_PER_NODE,
PET_NODE_RANK from the completion index, PET_MASTER_ADDR/PET_MASTER_PORT), so the same entry point
also runs under a Kubeflow TrainJob. Annotation and dataset jobs are an Indexed Job of `workers` plain
worker pods (quakestack.jobs.fanout: index from the completion index). The pods report only through the metadata
store (the scheduler watches their heartbeats); cancel deletes the Job with background propagation.
Manifests are built with the official client's models, so what is submitted is what the API server
validates.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from quakestack.config import Settings
from quakestack.jobs.executor import Handle
from quakestack.jobs.spec import JobRecord
from quakestack.jobs.torchrun import RENDEZVOUS_PORT, container_command, nodes_of, torchrun_variables, worker_command

COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
# every job pod reports to the metadata database; its URL (with the password) comes from a Secret, never a value
DATABASE_URL_ENV = k8s.V1EnvVar(name="QUAKESTACK_DATABASE_URL", value_from=k8s.V1EnvVarSource(
    secret_key_ref=k8s.V1SecretKeySelector(name="quakestack-database", key="url")))
LABEL_JOB = "quakestack.io/job-id"


def job_name(job_id: str, attempt: int) -> str:
    return f"qs-train-{job_id.lower()}-a{attempt}"[:63]


def torchrun_env(nodes: int, per_node: int, master: str) -> list[k8s.V1EnvVar]:
    """The PET_* variables of quakestack.jobs.torchrun; a multi-node pod's rank is its completion index."""
    values = torchrun_variables(nodes, per_node, master, RENDEZVOUS_PORT, node_rank=None)
    env = [k8s.V1EnvVar(name=name, value=value) for name, value in values.items()]
    env.insert(2, k8s.V1EnvVar(name="PET_NODE_RANK", value_from=k8s.V1EnvVarSource(
        field_ref=k8s.V1ObjectFieldSelector(field_path=COMPLETION_INDEX))) if nodes > 1
               else k8s.V1EnvVar(name="PET_NODE_RANK", value="0"))
    return env


def pod_gpus(settings: Settings, spec: dict[str, Any]) -> bool:
    """Whether a job's pods go to the GPU pool: the pool has GPUs and the job did not ask for the CPU."""
    return settings.jobs_k8s_gpus_per_node > 0 and spec.get("device", "auto") != "cpu"


def tolerations(text: str) -> list[k8s.V1Toleration]:
    """`key[=value]:effect[,...]` (QUAKESTACK_JOBS_K8S_TOLERATIONS) as pod tolerations."""
    out = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key_value, _, effect = item.rpartition(":")
        key, has_value, value = key_value.partition("=")
        out.append(k8s.V1Toleration(key=key, operator="Equal" if has_value else "Exists",
                                    value=value if has_value else None, effect=effect))
    return out


def build_manifests(settings: Settings, job_id: str, attempt: int, spec: dict[str, Any],
                    gpu: bool | None = None) -> list[Any]:
    """The Service (multi-node only) and the Job for one attempt, as client model objects.

    gpu None: as configured (pod_gpus); the pool's node selector and tolerations apply either way."""
    name = job_name(job_id, attempt)
    gpu = pod_gpus(settings, spec) if gpu is None else gpu
    nodes, per_node = nodes_of(spec, gpu)
    labels = {"app.kubernetes.io/part-of": "quakestack", "app.kubernetes.io/component": "training-worker",
              LABEL_JOB: job_id, "quakestack.io/storage-client": "true", "quakestack.io/database-client": "true"}
    master = f"{name}-0.{name}" if nodes > 1 else "127.0.0.1"
    limits = {"cpu": settings.jobs_k8s_cpu, "memory": settings.jobs_k8s_memory}
    if gpu:
        limits["nvidia.com/gpu"] = str(per_node)
    selector = dict(part.split("=", 1) for part in settings.jobs_k8s_node_selector.split(",") if "=" in part)
    container = k8s.V1Container(
        name="worker", image=settings.jobs_k8s_image, image_pull_policy="IfNotPresent",
        command=container_command(job_id, attempt),
        env=[*torchrun_env(nodes, per_node, master),
             k8s.V1EnvVar(name="QUAKESTACK_S3_ACCESS_KEY", value_from=k8s.V1EnvVarSource(
                 secret_key_ref=k8s.V1SecretKeySelector(name="quakestack-s3", key="access-key"))),
             k8s.V1EnvVar(name="QUAKESTACK_S3_SECRET_KEY", value_from=k8s.V1EnvVarSource(
                 secret_key_ref=k8s.V1SecretKeySelector(name="quakestack-s3", key="secret-key"))),
             DATABASE_URL_ENV],
        env_from=[k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name="quakestack-config"))],
        ports=[k8s.V1ContainerPort(name="rendezvous", container_port=RENDEZVOUS_PORT, protocol="TCP")],
        resources=k8s.V1ResourceRequirements(requests=dict(limits), limits=dict(limits)),
        security_context=k8s.V1SecurityContext(allow_privilege_escalation=False, read_only_root_filesystem=True,
                                               capabilities=k8s.V1Capabilities(drop=["ALL"])),
        volume_mounts=[k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
                       k8s.V1VolumeMount(name="cache", mount_path="/var/cache/quakestack"),
                       k8s.V1VolumeMount(name="shm", mount_path="/dev/shm")])
    pod = k8s.V1PodSpec(
        containers=[container], restart_policy="Never", service_account_name=settings.jobs_k8s_service_account,
        automount_service_account_token=False, enable_service_links=False,
        subdomain=name if nodes > 1 else None, node_selector=selector or None,
        tolerations=tolerations(settings.jobs_k8s_tolerations) or None,
        security_context=k8s.V1PodSecurityContext(run_as_non_root=True, run_as_user=10001, run_as_group=10001,
                                                  fs_group=10001,
                                                  seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault")),
        volumes=[k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="2Gi")),
                 k8s.V1Volume(name="cache", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="50Gi")),
                 k8s.V1Volume(name="shm", empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory", size_limit="8Gi"))])
    job = k8s.V1Job(
        api_version="batch/v1", kind="Job",
        metadata=k8s.V1ObjectMeta(name=name, namespace=settings.jobs_k8s_namespace, labels=labels),
        spec=k8s.V1JobSpec(
            completions=nodes, parallelism=nodes, completion_mode="Indexed" if nodes > 1 else "NonIndexed",
            backoff_limit=0,  # retries are the runtime's (a new attempt, visible in the history)
            ttl_seconds_after_finished=86400,
            template=k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=labels), spec=pod)))
    out: list[Any] = []
    if nodes > 1:
        out.append(k8s.V1Service(
            api_version="v1", kind="Service",
            metadata=k8s.V1ObjectMeta(name=name, namespace=settings.jobs_k8s_namespace, labels=labels),
            spec=k8s.V1ServiceSpec(cluster_ip="None", publish_not_ready_addresses=True,
                                   selector={LABEL_JOB: job_id},
                                   ports=[k8s.V1ServicePort(name="rendezvous", port=RENDEZVOUS_PORT,
                                                            target_port=RENDEZVOUS_PORT, protocol="TCP")])))
    out.append(job)
    return out


FANOUT_KINDS = {"annotation": "annot", "dataset": "data"}  # kinds split over workers (quakestack.jobs.fanout)
FANOUT_IDENTITY = {"annotation": "data", "dataset": "data"}  # whose S3 keys (quakestack-s3 secret) its pods use


def fanout_job_name(kind: str, job_id: str, attempt: int) -> str:
    return f"qs-{FANOUT_KINDS[kind]}-{job_id.lower()}-a{attempt}"[:63]


def build_fanout_manifests(settings: Settings, job_id: str, attempt: int, kind: str, spec: dict[str, Any]) -> list[Any]:
    """An Indexed Job of `workers` pods (completions = parallelism), each the job runtime's worker with its
    index from the completion index and the count in JOB_FANOUT_COUNT; pod 0 reports. The pod is
    the training pod's (same security context, volumes, secrets) without torchrun and its rendezvous."""
    from quakestack.jobs.fanout import COUNT_ENV, INDEX_ENV

    workers = max(1, int(spec.get("workers", 1) or 1))
    gpu = str(spec.get("device", "cpu")).startswith("cuda")
    (job,) = build_manifests(settings, job_id, attempt, {"training_hyper_parameters": {}, "device": "cpu"}, gpu=gpu)
    name = fanout_job_name(kind, job_id, attempt)
    component = f"{kind}-worker"
    for labels in (job.metadata.labels, job.spec.template.metadata.labels):
        labels["app.kubernetes.io/component"] = component
    job.metadata.name = name
    (container,) = job.spec.template.spec.containers
    container.command = ["python", *worker_command(job_id, attempt)]
    container.ports = None
    identity = FANOUT_IDENTITY[kind]
    container.env = [k8s.V1EnvVar(name=COUNT_ENV, value=str(workers)),
                     k8s.V1EnvVar(name=INDEX_ENV, value_from=k8s.V1EnvVarSource(
                         field_ref=k8s.V1ObjectFieldSelector(field_path=COMPLETION_INDEX))),
                     *[k8s.V1EnvVar(name=f"QUAKESTACK_S3_{part.upper()}_KEY", value_from=k8s.V1EnvVarSource(
                         secret_key_ref=k8s.V1SecretKeySelector(name="quakestack-s3", key=f"{identity}-{part}-key")))
                       for part in ("access", "secret")],
                     DATABASE_URL_ENV]
    if not gpu:
        job.spec.template.spec.node_selector = None  # CPU pods stay off the GPU node pool
    job.spec.completions = job.spec.parallelism = workers
    job.spec.completion_mode = "Indexed"
    return [job]


def as_dicts(objects: list[Any]) -> list[dict[str, Any]]:
    """Manifests as plain dicts (camelCase, Nones dropped), as `kubectl apply` would send them."""
    return [k8s.ApiClient().sanitize_for_serialization(o) for o in objects]


class KubernetesExecutor:
    name = "kubernetes"

    def __init__(self, settings: Settings):
        from kubernetes import config as k8s_config

        try:
            k8s_config.load_incluster_config()
        except k8s_config.ConfigException:
            k8s_config.load_kube_config()
        self.settings = settings
        self.batch = k8s.BatchV1Api()
        self.core = k8s.CoreV1Api()

    def launch(self, record: JobRecord, attempt: int, env: dict[str, str]) -> Handle:
        job_id, spec = record.job_id, record.spec  # the spec as created, nothing re-resolved
        namespace = self.settings.jobs_k8s_namespace
        objects = (build_fanout_manifests(self.settings, job_id, attempt, record.kind, spec)
                   if record.kind in FANOUT_KINDS else build_manifests(self.settings, job_id, attempt, spec))
        for obj in objects:
            if isinstance(obj, k8s.V1Service):
                self.core.create_namespaced_service(namespace, obj)
            else:
                self.batch.create_namespaced_job(namespace, obj)
        return Handle(job_id, attempt, extra={"name": objects[-1].metadata.name})

    def attach(self, heartbeat: dict[str, Any], record: JobRecord) -> Handle | None:
        attempt, job_id, kind = int(heartbeat["attempt"]), record.job_id, record.kind
        name = fanout_job_name(kind, job_id, attempt) if kind in FANOUT_KINDS else job_name(job_id, attempt)
        return Handle(job_id, attempt, extra={"name": name})

    def alive(self, handle: Handle) -> bool | None:
        try:
            status = self.batch.read_namespaced_job_status(handle.extra["name"],
                                                           self.settings.jobs_k8s_namespace).status
        except k8s.ApiException as exc:
            return False if exc.status == 404 else None
        if status.succeeded or status.failed:
            return False
        return None  # running or pending: the heartbeats decide

    def cancel(self, handle: Handle) -> None:
        namespace, name = self.settings.jobs_k8s_namespace, handle.extra["name"]
        for delete in (lambda: self.batch.delete_namespaced_job(name, namespace, propagation_policy="Background"),
                       lambda: self.core.delete_namespaced_service(name, namespace)):
            try:
                delete()
            except k8s.ApiException as exc:
                if exc.status != 404:
                    raise

    def reap(self, handle: Handle) -> int | None:
        try:
            status = self.batch.read_namespaced_job_status(handle.extra["name"],
                                                           self.settings.jobs_k8s_namespace).status
        except k8s.ApiException:
            return None
        return 0 if status.succeeded else 1
