"""One source of truth: quakestack/config.py (SETTINGS) and the services' definitions.

Every QUAKESTACK_* name that docker-compose or a Kubernetes manifest sets must be a setting of
the table (a process exits on an unknown one), and every port that compose exposes, Prometheus
scrapes, or a Service, container or probe names must be the port the code listens on by default.
"""

from __future__ import annotations

import importlib
import re

import pytest
import yaml
from deploy_helpers import COMPOSE_FILES, DEPLOY, REPO_ROOT, pod_specs, templates

from quakestack.config import SETTINGS, SETTINGS_BY_ENV

DEFAULTS = {s.name: s.default for s in SETTINGS}
SERVICES = ("data", "trainer", "inference")
GRPC_PORT = {s: int(DEFAULTS[f"{s}_grpc_port"]) for s in SERVICES}
METRICS_PORT = {s: int(DEFAULTS[f"{s}_metrics_port"]) for s in SERVICES}
GATEWAY_PORT = int(DEFAULTS["gateway_port"])
# The scrape port of each process (the gateway serves /metrics on its own port).
SCRAPE_PORT = {**METRICS_PORT, "gateway": GATEWAY_PORT}


def definition(service: str):
    return importlib.import_module(f"services.{service}.servicer").DEFINITION


def quakestack_names(names) -> set[str]:
    return {n for n in names if n.startswith("QUAKESTACK_")}


def assert_known(names, where: str) -> None:
    unknown = sorted(quakestack_names(names) - set(SETTINGS_BY_ENV))
    assert not unknown, f"{where} sets QUAKESTACK_* names that quakestack/config.py does not know: {unknown}"


def test_service_definitions_match_the_table():
    for service in SERVICES:
        d = definition(service)
        assert d.grpc_port_setting == f"{service}_grpc_port"
        assert d.metrics_port_setting == f"{service}_metrics_port"
        assert d.health_names, service


# -- compose ---------------------------------------------------------------------------------

def raw_compose(name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / name).read_text())


def compose_service_kind(name: str) -> str | None:
    """compose service name -> quakestack process (trainer-cpu is the trainer too)."""
    base = name.removesuffix("-cpu")
    return base if base in (*SERVICES, "gateway") else None


@pytest.mark.parametrize("filename", sorted({f for files in COMPOSE_FILES.values() for f in files}))
def test_compose_sets_only_known_settings_with_default_ports(filename):
    services = raw_compose(filename)["services"]
    for name, service in services.items():
        env = service.get("environment") or {}
        assert isinstance(env, dict), f"{filename}: {name}: write environment as a mapping"
        assert_known(env, f"{filename}: service {name}")
        assert not service.get("env_file"), f"{filename}: {name}: env_file would pass unchecked names"
        kind = compose_service_kind(name)
        if set(service) <= {"profiles"}:
            continue  # docker-compose.cpu.yml only parks the GPU service in a profile
        if kind is None:
            assert not quakestack_names(env), f"{filename}: {name} is not a quakestack process"
            continue
        # explicit ports must be the code's defaults, everything the service exposes must be one
        for key, value in env.items():
            if key.endswith("_PORT"):
                assert str(value) == SETTINGS_BY_ENV[key].default, f"{filename}: {name}: {key}={value}"
        if kind in SERVICES:
            assert {int(p) for p in service.get("expose", [])} == {GRPC_PORT[kind], METRICS_PORT[kind]}, name
            assert env["QUAKESTACK_BIND_HOST"] == "0.0.0.0", name


def test_compose_merged_config_uses_known_settings(compose_configs):
    """The same on `docker-compose config` output: anchors, merges and overrides resolved."""
    for variant, config in compose_configs.items():
        for name, service in config["services"].items():
            assert_known(service.get("environment") or {}, f"compose ({variant}): {name}")
            if compose_service_kind(name) == "gateway":
                env = service["environment"]
                for s in SERVICES:
                    assert env[f"QUAKESTACK_{s.upper()}_ADDR"] == f"{s}:{GRPC_PORT[s]}"
                assert [p["target"] for p in service["ports"]] == [GATEWAY_PORT]


def test_env_example_holds_no_settings_and_only_placeholders():
    """.env is for compose interpolation only; credentials there are placeholders."""
    entries = dict(line.split("=", 1) for line in (REPO_ROOT / ".env.example").read_text().splitlines()
                   if line.strip() and not line.startswith("#"))
    assert not quakestack_names(entries), "QUAKESTACK_* names belong in docker-compose.yml's environment"
    for key in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "POSTGRES_PASSWORD"):
        assert entries[key].startswith("CHANGE_ME"), key


def test_prometheus_scrapes_every_process_on_its_port():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for group in job.get("static_configs", [])
               for t in group["targets"]}
    for process, port in SCRAPE_PORT.items():
        assert f"{process}:{port}" in targets, process


def test_dockerfile_targets_expose_default_ports():
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    stages = dict(re.findall(r"^FROM \S+ AS (\S+)\n(.*?)(?=^FROM |\Z)", text, flags=re.S | re.M))
    for target in (*SERVICES, "gateway", "trainer-cpu", "inference-cpu"):
        kind = target.removesuffix("-cpu")
        expose = {int(p) for p in re.search(r"^EXPOSE (.+)$", stages[target], flags=re.M).group(1).split()}
        assert expose == ({GRPC_PORT[kind], METRICS_PORT[kind]} if kind in SERVICES else {GATEWAY_PORT}), target
        assert f'"/opt/quakestack/healthcheck.py", "{kind}"' in stages[target], target
    assert_known(re.findall(r"\b(QUAKESTACK_[A-Z0-9_]+)=", text), "Dockerfile")


# -- Kubernetes ------------------------------------------------------------------------------

def configmaps(docs) -> dict[str, dict]:
    return {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}


def container_env_names(container: dict, maps: dict[str, dict]) -> set[str]:
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= set(maps[source["configMapRef"]["name"]])
        assert "prefix" not in source
    return names


def quakestack_containers(docs):
    for owner, spec in pod_specs(docs):
        for container in spec["containers"]:
            if container["image"].startswith("quakestack/"):
                yield owner, spec, container


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_overlay_sets_only_known_settings(rendered_overlays, overlay):
    _path, docs = rendered_overlays[overlay]
    maps = configmaps(docs)
    config = maps["quakestack-config"]
    assert all(k.startswith("QUAKESTACK_") for k in config), "quakestack-config: only settings"
    assert_known(config, f"{overlay}: ConfigMap quakestack-config")
    seen = 0
    for owner, spec, container in quakestack_containers(docs):
        seen += 1
        assert_known(container_env_names(container, maps), f"{overlay}: {owner}")
        # service links would add FOO_SERVICE_HOST variables, QUAKESTACK_* for a quakestack-* Service
        assert spec.get("enableServiceLinks") is False, owner
    assert seen >= 4


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_overlay_ports_and_probes_match_the_code(rendered_overlays, overlay):
    _path, docs = rendered_overlays[overlay]
    config = configmaps(docs)["quakestack-config"]
    assert not [k for k in config if k.endswith("_PORT")], "ports stay at the code's defaults"
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for s in SERVICES:
        # the gateway's targets point at the headless Services on the default ports
        assert config[f"QUAKESTACK_{s.upper()}_ADDR"] == f"dns:///{s}:{GRPC_PORT[s]}"
        svc = services[s]["spec"]
        assert svc["clusterIP"] == "None", f"{s}: headless, for client-side round-robin"
        assert {p["name"]: p["port"] for p in svc["ports"]} == {"grpc": GRPC_PORT[s], "metrics": METRICS_PORT[s]}
        pod = deployments[s]["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"services.{s}"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"grpc": GRPC_PORT[s], "metrics": METRICS_PORT[s]}
        health_names = definition(s).health_names
        ready = container["readinessProbe"]["grpc"]
        assert ready == {"port": GRPC_PORT[s], "service": health_names[0]}
        live = container["livenessProbe"]["grpc"]
        assert live["port"] == GRPC_PORT[s] and live["service"] in ("", *health_names)
        assert container["startupProbe"]["tcpSocket"]["port"] in ("grpc", GRPC_PORT[s])
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(METRICS_PORT[s])
    gateway = deployments["gateway"]["spec"]["template"]
    (container,) = gateway["spec"]["containers"]
    assert [p["containerPort"] for p in container["ports"]] == [GATEWAY_PORT]
    assert gateway["metadata"]["annotations"]["prometheus.io/port"] == str(GATEWAY_PORT)
    assert [p["port"] for p in services["gateway"]["spec"]["ports"]] == [GATEWAY_PORT]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    # NetworkPolicies open exactly these ports
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    grpc_ports = {p["port"] for rule in policies["backends-grpc-ingress"]["ingress"] for p in rule["ports"]}
    metric_ports = {p["port"] for rule in policies["metrics-from-prometheus"]["ingress"] for p in rule["ports"]}
    assert grpc_ports == set(GRPC_PORT.values()) and metric_ports == set(METRICS_PORT.values())
    assert [p["port"] for r in policies["gateway-ingress"]["ingress"] for p in r["ports"]] == [GATEWAY_PORT]


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_overlay_pods_are_hardened_and_sized(rendered_overlays, overlay):
    _path, docs = rendered_overlays[overlay]
    for owner, spec in pod_specs(docs):
        assert spec["securityContext"]["runAsNonRoot"] is True, owner
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, owner
            assert sc["capabilities"]["drop"] == ["ALL"], owner
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), owner
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), owner
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, owner
    for owner, _spec, container in quakestack_containers(docs):
        if not owner.endswith("/gateway"):
            env = container_env_names(container, configmaps(docs))
            assert "QUAKESTACK_CACHE_DIR" in env
            assert configmaps(docs)["quakestack-config"]["QUAKESTACK_CACHE_DIR"] in {
                m["mountPath"] for m in container["volumeMounts"]}, owner


def test_gpu_overlay_puts_inference_and_the_training_job_pods_on_the_gpu_pool(rendered_overlays):
    """inference holds a GPU; the trainer holds none (it submits Jobs): its job-pod settings send them there."""
    _path, docs = rendered_overlays["gpu"]
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        spec = d["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        gpu = container["resources"]["limits"].get("nvidia.com/gpu")
        if d["metadata"]["name"] == "inference":
            assert gpu == "1"
            assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        else:
            assert gpu is None and "nvidia.com/gpu" not in container["resources"]["requests"], d["metadata"]["name"]
            assert "tolerations" not in spec and "nodeSelector" not in spec, d["metadata"]["name"]
    (trainer,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "trainer"]
    (container,) = trainer["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["QUAKESTACK_JOBS_EXECUTOR"] == "kubernetes"
    assert env["QUAKESTACK_JOBS_K8S_NODE_SELECTOR"] == "nvidia.com/gpu.present=true"
    assert env["QUAKESTACK_JOBS_K8S_TOLERATIONS"] == "nvidia.com/gpu:NoSchedule"
    assert int(env["QUAKESTACK_JOBS_K8S_GPUS_PER_NODE"]) >= 1
    assert len([e for e in container["env"] if e["name"] == "QUAKESTACK_TRAINER_CPU_SLOTS"]) == 1


def test_cpu_overlay_requests_no_gpu_and_runs_minio(rendered_overlays):
    path, docs = rendered_overlays["cpu"]
    assert "nvidia.com/gpu" not in path.read_text()
    minio = [d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "minio"]
    assert minio and ":" in minio[0]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert not minio[0]["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":latest")
    assert configmaps(docs)["quakestack-config"]["QUAKESTACK_S3_ENDPOINT"] == "minio:9000"


def test_templates_set_only_known_settings():
    for name, docs in templates().items():
        maps = {"quakestack-config": dict.fromkeys(SETTINGS_BY_ENV)}  # ConfigMap of the overlays
        for owner, _spec, container in [
                (o, s, c) for o, s in pod_specs(docs) for c in s["containers"]]:
            assert_known(container_env_names(container, maps), f"{name}: {owner}")
