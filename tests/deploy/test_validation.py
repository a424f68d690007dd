"""The deployment files pass their own tools, and the dashboards query metrics that exist.

docker-compose (v1, Debian's) `config -q`, `kubectl kustomize` + `kubernetes-validate --strict`,
`promtool check config/rules`; the Grafana dashboard and the alert rules against the live
/metrics of a real stack (tests/conftest.py's `stack`); the image health check against it too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from deploy_helpers import COMPOSE_FILES, DEPLOY, K8S, OVERLAYS, REPO_ROOT, need, run, templates

# -- docker-compose ---------------------------------------------------------------------------

@pytest.mark.parametrize("variant", sorted(COMPOSE_FILES))
def test_compose_config_is_valid(variant, env_file):
    args = [need("docker-compose"), "--env-file", str(env_file)]
    for name in COMPOSE_FILES[variant]:
        args += ["-f", name]
    result = run([*args, "config", "-q"])
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_credentials(tmp_path):
    """No default credentials: without a .env the ${VAR:?} interpolation stops compose."""
    (tmp_path / ".env").write_text("")
    result = run([need("docker-compose"), "--env-file", str(tmp_path / ".env"), "-f", "docker-compose.yml",
                  "config", "-q"], env={k: v for k, v in os.environ.items() if not k.startswith("MINIO_")})
    assert result.returncode != 0 and "MINIO_ROOT_USER" in result.stderr


def gpu_devices(service: dict) -> list[dict]:
    return ((service.get("deploy") or {}).get("resources") or {}).get("reservations", {}).get("devices", [])


def test_compose_gpu_reservations(compose_configs):
    gpu = compose_configs["gpu"]["services"]
    for name in ("trainer", "inference"):
        (device,) = gpu_devices(gpu[name])
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"], name
    for name in ("data", "gateway", "minio", "postgres", "prometheus", "grafana"):
        assert not gpu_devices(gpu[name]), name
    # cpu override: whatever is started by default reserves no GPU; trainer/inference have CPU
    # twins answering on the same DNS names
    cpu = compose_configs["cpu"]["services"]
    active = {n: s for n, s in cpu.items() if not s.get("profiles")}
    assert not [n for n, s in active.items() if gpu_devices(s)]
    for name in ("trainer", "inference"):
        assert "gpu" in cpu[name]["profiles"]
        assert name in active[f"{name}-cpu"]["networks"]["default"]["aliases"]
        assert active[f"{name}-cpu"]["environment"]["QUAKESTACK_DEVICE"] == "cpu"


def test_compose_images_are_pinned(compose_configs):
    for config in compose_configs.values():
        for name, service in config["services"].items():
            image = service["image"]
            tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
            assert tag and tag != "latest", f"{name}: {image}"


# -- Kubernetes -------------------------------------------------------------------------------

def k8s_version() -> str:
    """1.30.0 when the installed kubernetes-validate knows it, else its newest."""
    try:
        from kubernetes_validate.utils import all_versions, latest_version
    except ImportError:
        pytest.skip("kubernetes-validate is not installed (the dev extra installs it)")
    return "1.30.0" if "1.30.0" in all_versions() else latest_version()


def validate(path: Path) -> subprocess.CompletedProcess:
    tool = need("kubernetes-validate")
    return run([tool, "--strict", "--quiet", "-k", k8s_version(), str(path)])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_kubernetes_validate_strict(rendered_overlays, overlay):
    path, docs = rendered_overlays[overlay]
    assert not [d["kind"] for d in docs if "." in d["apiVersion"].split("/")[0]
                and not d["apiVersion"].split("/")[0].endswith(".k8s.io")], "no CRDs in overlays"
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def kustomize(tmp_path: Path, resources: list[Path], components: list[Path] = ()) -> tuple[Path, list[dict]]:
    """`kubectl kustomize` of a throw-away kustomization (kustomize wants relative paths)."""
    kubectl = need("kubectl")
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(
        {"resources": [os.path.relpath(r, tmp_path) for r in resources],
         "components": [os.path.relpath(c, tmp_path) for c in components]}))
    result = run([kubectl, "kustomize", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    path = tmp_path / "rendered.yaml"
    path.write_text(result.stdout)
    return path, [d for d in yaml.safe_load_all(result.stdout) if d]


def test_base_renders_postgres_as_a_statefulset_with_a_volume_claim(tmp_path):
    path, docs = kustomize(tmp_path, [K8S / "base"])
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    assert sts["metadata"]["name"] == "postgres" and sts["spec"]["volumeClaimTemplates"]
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_external_database_component_replaces_the_statefulset(rendered_overlays, tmp_path, overlay):
    """components/external-database on either overlay: no postgres objects left, the clients may reach
    TCP 5432 outside the cluster, every pod still reads the URL from the Secret; strict-valid."""
    path, docs = kustomize(tmp_path, [K8S / "overlays" / overlay], [K8S / "components" / "external-database"])
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert not [n for n in names if "postgres" in n[1]], names
    _path, full = rendered_overlays[overlay]
    assert {(d["kind"], d["metadata"]["name"]) for d in full} - names == {
        ("StatefulSet", "postgres"), ("Service", "postgres"), ("NetworkPolicy", "postgres-ingress")}
    (policy,) = [d["spec"] for d in docs if d["kind"] == "NetworkPolicy"
                 and d["metadata"]["name"] == "database-clients-egress"]
    assert policy["podSelector"] == {"matchLabels": {"quakestack.io/database-client": "true"}}
    assert [p["port"] for rule in policy["egress"] for p in rule["ports"]] == [5432]
    assert all("ipBlock" in peer for rule in policy["egress"] for peer in rule["to"])
    for d in docs:
        if d["kind"] == "Deployment" and d["metadata"]["name"] in ("data", "trainer", "inference"):
            (container,) = d["spec"]["template"]["spec"]["containers"]
            (entry,) = [e for e in container["env"] if e["name"] == "QUAKESTACK_DATABASE_URL"]
            assert entry["valueFrom"]["secretKeyRef"] == {"name": "quakestack-database", "key": "url"}
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


# What a Secret's value looks like where the setting checks its form.
SECRET_STAND_INS = {"QUAKESTACK_DATABASE_URL": "postgresql://quakestack:from-the-secret@postgres:5432/quakestack"}


def _deployment_settings(docs: list[dict], name: str):
    """A Deployment's settings as its pod would load them (the ConfigMap, then its own env; secrets mounted)."""
    from quakestack.config import load_settings

    (deployment,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    config = next(d["data"] for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "quakestack-config")
    env = {**config, **{e["name"]: e["value"] for e in container["env"] if "value" in e}}
    secrets = {e["name"]: SECRET_STAND_INS.get(e["name"], "from-the-secret")  # mounted in the pod
               for e in container["env"] if "valueFrom" in e}
    return load_settings({**env, **secrets})


def test_gpu_overlay_data_service_fans_dataset_jobs_out_as_indexed_jobs(rendered_overlays, tmp_path):
    """The data service of the gpu overlay submits Indexed Jobs (its account may, and has a token), and the
    dataset Job built from its own settings passes the strict validator with CPU pods off the GPU pool."""
    from quakestack.jobs.kubernetes import as_dicts, build_fanout_manifests

    _path, docs = rendered_overlays["gpu"]
    settings = _deployment_settings(docs, "data")
    assert settings.jobs_executor == "kubernetes"
    (data,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "data"]
    pod = data["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "quakestack-data" and pod["automountServiceAccountToken"] is True
    bound = [b for b in docs if b["kind"] == "RoleBinding" and b["roleRef"]["name"] == "quakestack-job-executor"]
    assert any(s["name"] == "quakestack-data" for b in bound for s in b["subjects"])
    (job,) = as_dicts(build_fanout_manifests(settings, "0123456789abcdef", 2, "dataset",
                                             {"workers": 4, "dataset": "stead-2026", "sources": []}))
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 4
    spec = job["spec"]["template"]["spec"]
    assert "nodeSelector" not in spec and "nvidia.com/gpu" not in spec["containers"][0]["resources"]["limits"]
    path = tmp_path / "dataset-job.yaml"
    path.write_text(yaml.safe_dump_all([job]))
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("nodes", [1, 2])
def test_gpu_overlay_job_pods_pass_kubernetes_validate_strict(rendered_overlays, tmp_path, nodes):
    """The Jobs the trainer of the gpu overlay submits, built from its own settings (the overlay's env on
    the defaults), request the GPUs, select and tolerate the pool, and pass the strict validator."""
    from quakestack.jobs.kubernetes import as_dicts, build_manifests

    _path, docs = rendered_overlays["gpu"]
    settings = _deployment_settings(docs, "trainer")
    assert settings.jobs_executor == "kubernetes"
    spec = {"training_hyper_parameters": {"num_gpus": 1, "num_nodes": nodes, "ddp_processes": 1}, "device": "auto"}
    manifests = as_dicts(build_manifests(settings, "0123456789abcdef", 1, spec))
    pod = manifests[-1]["spec"]["template"]["spec"]
    (worker,) = pod["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == worker["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    cpu_job = as_dicts(build_manifests(settings, "0123456789abcdef", 1, {**spec, "device": "cpu"}))[-1]
    assert "nvidia.com/gpu" not in cpu_job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    path = tmp_path / "jobs.yaml"
    path.write_text(yaml.safe_dump_all(manifests))
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("bad", ["nvidia.com/gpu", "nvidia.com/gpu:Never", ":NoSchedule"])
def test_a_malformed_toleration_setting_is_refused_by_name(bad):
    from quakestack.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="QUAKESTACK_JOBS_K8S_TOLERATIONS"):
        load_settings({"QUAKESTACK_JOBS_K8S_TOLERATIONS": bad})


def test_kubernetes_validate_strict_catches_typos(tmp_path):
    """The check above would notice a misspelt field (guards against a silently lax validator)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndataa: {}\n")
    assert validate(bad).returncode != 0


def test_templates_validate(tmp_path):
    """Native kinds through kubernetes-validate; PyTorchJob (a Kubeflow CRD, not in the schema)
    through its required fields."""
    crds = []
    for name, docs in templates().items():
        native = [d for d in docs if d["apiVersion"] != "kubeflow.org/v1"]
        crds += [d for d in docs if d["apiVersion"] == "kubeflow.org/v1"]
        if native:
            path = tmp_path / name
            path.write_text(yaml.safe_dump_all(native))
            result = validate(path)
            assert result.returncode == 0, result.stdout + result.stderr
        for doc in docs:
            if doc["kind"] == "Secret":
                assert all(v.startswith("CHANGE_ME") for v in doc["stringData"].values()), name
    (job,) = crds
    assert job["kind"] == "PyTorchJob" and job["metadata"]["name"]
    specs = job["spec"]["pytorchReplicaSpecs"]
    assert set(specs) == {"Master", "Worker"} and specs["Master"]["replicas"] == 1
    nnodes = sum(s["replicas"] for s in specs.values())
    for role, spec in specs.items():
        assert spec["restartPolicy"] in {"OnFailure", "Never", "Always", "ExitCode"}
        (container,) = spec["template"]["spec"]["containers"]
        assert container["name"] == "pytorch", "the training operator finds the container by this name"
        command = container["command"]
        assert command[0] == "torchrun" and f"--nnodes={nnodes}" in command, role
        assert command[command.index("-m") + 1] == "quakestack.jobs.worker"
        assert command[-4:] == ["--job-id", "$(JOB_ID)", "--attempt", "$(ATTEMPT)"]
        assert container["resources"]["limits"]["nvidia.com/gpu"]


def test_training_job_template_runs_torchrun_on_every_index():
    docs = templates()["training-job.yaml"]
    (job,) = [d for d in docs if d["kind"] == "Job"]
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["NNODES"] == str(job["spec"]["completions"])
    command = container["command"]
    assert command[0] == "torchrun" and "--node-rank=$(JOB_COMPLETION_INDEX)" in command
    assert command[command.index("-m") + 1:] == ["quakestack.jobs.worker", "--job-id", "$(JOB_ID)", "--attempt",
                                                 "$(ATTEMPT)"]
    (service,) = [d for d in docs if d["kind"] == "Service"]
    assert pod["subdomain"] == service["metadata"]["name"] and service["spec"]["clusterIP"] == "None"


# -- Prometheus -------------------------------------------------------------------------------

def test_promtool_check_config_and_rules(tmp_path):
    promtool = need("promtool")
    for cmd in (["check", "config", "--syntax-only", str(DEPLOY / "prometheus" / "prometheus.yml")],
                ["check", "rules", *map(str, sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")))]):
        result = run([promtool, *cmd])
        assert result.returncode == 0, result.stdout + result.stderr
    # the Kubernetes scrape configuration (a ConfigMap) is a Prometheus config too
    doc = yaml.safe_load((K8S / "base" / "prometheus-scrape-config.yaml").read_text())
    path = tmp_path / "prometheus.yml"
    path.write_text(doc["data"]["prometheus.yml"])
    result = run([promtool, "check", "config", str(path)])
    if result.returncode != 0 and "field kubernetes_sd_configs not found" in result.stdout + result.stderr:
        # Debian builds Prometheus without Kubernetes service discovery. Check the discovery
        # block by hand and everything else (relabelling, intervals) with promtool.
        config = yaml.safe_load(path.read_text())
        for job in config["scrape_configs"]:
            (sd,) = job.pop("kubernetes_sd_configs")
            assert sd["role"] == "pod" and sd["namespaces"]["names"] == ["quakestack"]
            job["static_configs"] = [{"targets": ["placeholder:9101"]}]
        path.write_text(yaml.safe_dump(config))
        result = run([promtool, "check", "config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


# -- Grafana and alert rules against live /metrics -------------------------------------------

PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values",
    "group", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
    "offset", "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile", "clamp_min",
    "clamp_max", "abs", "label_values", "label_replace", "vector", "scalar", "time", "absent", "sort",
    "sort_desc", "round", "ceil", "floor", "ln", "log2", "log10", "exp", "sqrt", "avg_over_time",
    "max_over_time", "min_over_time", "sum_over_time", "count_over_time", "changes", "resets", "le", "inf",
    "nan", "e", "s", "m", "h", "d",
}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers outside label matchers, groupings,
    strings and Grafana variables, that are not functions or keywords."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)              # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)                      # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\$\w+|\[[^\]]*\]", "", expr)               # $vars, [ranges]
    expr = re.sub(r"\b\d[\w.]*", "", expr)                     # numbers, 1e-9
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    # label_values(metric, label): the label is not a metric
    return {n for n in names if n not in PROMQL_WORDS} - set(re.findall(r"label_values\(\s*\w+\s*,\s*(\w+)", expr))


def test_metric_name_extraction():
    assert metric_names('histogram_quantile(0.95, sum by (le, model) (rate(quakestack_inference_compute_seconds_bucket'
                        '{model=~"$model"}[$__rate_interval])))') == {"quakestack_inference_compute_seconds_bucket"}
    assert metric_names("label_values(quakestack_training_epochs_total, architecture)") == {
        "quakestack_training_epochs_total"}


def dashboard_exprs() -> list[str]:
    exprs = []
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        dash = json.loads(path.read_text())
        panels = list(dash["panels"])
        for panel in list(panels):
            panels += panel.get("panels", [])
        exprs += [t["expr"] for p in panels for t in p.get("targets", [])]
        exprs += [v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
                  for v in dash.get("templating", {}).get("list", []) if v.get("type") == "query"]
    return exprs


def test_dashboard_is_provisioned_with_its_datasource():
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uids = {d["uid"] for d in datasources["datasources"]}
    dash = json.loads((DEPLOY / "grafana/dashboards/quakestack.json").read_text())
    used = {p["datasource"]["uid"] for p in dash["panels"] if "datasource" in p}
    assert used and used <= uids
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for topic in ("jobs by kind and state", "training throughput", "execution time", "batch size", "ingestion rate",
                  "rpc latency"):
        assert topic in titles, topic
    names = set().union(*(metric_names(e) for e in dashboard_exprs()))
    for required in ("quakestack_jobs", "quakestack_training_samples_per_second_bucket",
                     "quakestack_inference_compute_seconds_bucket",
                     "grpc_server_handling_seconds_bucket", "quakestack_inference_batch_size_sum",
                     "quakestack_windows_written_total"):
        assert required in names


def live_metrics(stack) -> list[str]:
    texts = []
    endpoints = stack.endpoints()
    for url in [*endpoints.metrics.values(), endpoints.gateway + "/metrics"]:
        with urllib.request.urlopen(url, timeout=10) as response:
            texts.append(response.read().decode())
    return texts


def live_families(stack) -> set[str]:
    families = set()
    for text in live_metrics(stack):
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                families.add(line.split()[2])
            elif line and not line.startswith("#"):
                families.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return families


def exists(name: str, families: set[str]) -> bool:
    """A query name exists when it, or its family without a sample suffix, is exported."""
    candidates = {name}
    for suffix in ("_bucket", "_sum", "_count", "_total", "_created"):
        if name.endswith(suffix):
            candidates.add(name.removesuffix(suffix))
    if name.endswith("_total"):
        candidates.add(name)  # counters: TYPE line without, samples with _total
    return bool(candidates & families)


def test_dashboard_and_alert_metrics_exist_in_live_metrics(stack):
    families = live_families(stack)
    assert "grpc_server_handling_seconds" in families and "quakestack_jobs" in families
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "quakestack.yml").read_text())
    exprs = dashboard_exprs() + [r["expr"] for g in rules["groups"] for r in g["rules"]]
    missing = sorted({n for e in exprs for n in metric_names(e)} - {"up"} - {
        n for e in exprs for n in metric_names(e) if exists(n, families)})
    assert not missing, f"queried but not exported by any process: {missing}"


def test_no_metric_is_labelled_by_job_dataset_or_request(stack):
    """Series per job, dataset or request would grow with history on every replica: labels stay bounded."""
    for text in live_metrics(stack):
        for label in ("job_id", "dataset", "request_id", "upload_id"):
            assert f'{label}="' not in text, next(line for line in text.splitlines() if f'{label}="' in line)


@pytest.mark.parametrize("service", ["data", "trainer", "inference", "gateway"])
def test_image_healthcheck_script_against_live_stack(stack, service):
    """deploy/docker/healthcheck.py, the images' HEALTHCHECK, passes against a healthy process."""
    from quakestack.config import settings_env

    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
    env.update(settings_env(stack.settings))
    env["PYTHONPATH"] = str(REPO_ROOT)  # this checkout's quakestack, not whichever one is installed
    result = subprocess.run([sys.executable, str(DEPLOY / "docker" / "healthcheck.py"), service], env=env,
                            capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_healthcheck_fails_when_nothing_listens():
    from quakestack.embedded.seaweed import free_ports

    (port,) = free_ports(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
    env["QUAKESTACK_DATA_GRPC_PORT"] = str(port)
    result = subprocess.run([sys.executable, str(DEPLOY / "docker" / "healthcheck.py"), "data"], env=env,
                            capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert result.returncode == 1, result.stdout + result.stderr


def test_dockerfile_pins_bases_and_runs_non_root():
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.M))
    for key in ("PYTHON_IMAGE", "CUDA_IMAGE", "NODE_IMAGE"):
        assert re.search(r":\d+\.\d+\.\d+", args[key]), f"{key} pinned to a full version: {args[key]}"
    assert args["CUDA_IMAGE"].startswith("nvidia/cuda:") and "runtime" in args["CUDA_IMAGE"]
    assert args["TORCH_VERSION"] == "2.13.0"
    stages = dict(re.findall(r"^FROM (\S+) AS (\S+)$", text, flags=re.M)[i][::-1]
                  for i in range(len(re.findall(r"^FROM ", text, flags=re.M))))
    for target in ("data", "gateway", "trainer", "inference", "trainer-cpu", "inference-cpu"):
        base = stages[target]
        assert base in ("cpu-runtime", "gpu-runtime"), target
    assert stages["trainer"] == stages["inference"] == "gpu-runtime"
    assert stages["data"] == stages["gateway"] == "cpu-runtime"
    for runtime in ("cpu-runtime", "gpu-runtime"):
        body = text.split(f"AS {runtime}\n", 1)[1].split("\nFROM ", 1)[0]
        assert "USER 10001:10001" in body, runtime
    assert text.count("HEALTHCHECK ") == 6
