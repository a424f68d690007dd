"""The deployment files fail closed: compose and Kubernetes require the token secret, and each service
gets its own least-privilege S3 identity whose policy comes from the table the embedded SeaweedFS uses.
The metadata database likewise: compose requires its password, Kubernetes reads its URL from the Secret
quakestack-database (never a literal), and only the processes that keep metadata get it or reach it."""

from __future__ import annotations

import json
import os

import pytest
from deploy_helpers import COMPOSE_FILES, DEPLOY, OVERLAYS, REPO_ROOT, need, pod_specs, run, templates

from quakestack.embedded.seaweed import SERVICE_WRITE_PREFIXES
from quakestack.storage_policies import K8S_INIT, POLICY_DIR, k8s_minio_init, policy, render

SERVICES = tuple(SERVICE_WRITE_PREFIXES)
REGENERATE = "stale: run python -m quakestack.storage_policies"


def test_policy_files_are_generated_from_the_table() -> None:
    for service in SERVICES:
        assert (POLICY_DIR / f"{service}.json").read_text() == render(service), REGENERATE
    assert K8S_INIT.read_text() == k8s_minio_init(), REGENERATE


def _writable(service: str) -> set[str]:
    statements = policy(service)["Statement"]
    return {r for s in statements if "s3:DeleteObject" in s["Action"] for r in s["Resource"]}


def test_inference_policy_cannot_write_or_delete_datasets() -> None:
    assert not any("/datasets/" in r or r == "arn:aws:s3:::quakestack/*" for r in _writable("inference"))
    assert "arn:aws:s3:::quakestack/inference-logs/*" in _writable("inference")
    assert "arn:aws:s3:::quakestack/datasets/*" in _writable("data")
    assert not any("datasets" in r for r in _writable("trainer"))


@pytest.mark.parametrize("variant", sorted(COMPOSE_FILES))
def test_compose_refuses_to_start_without_tokens(variant, env_file, tmp_path) -> None:
    lines = [line for line in env_file.read_text().splitlines() if not line.startswith("API_TOKENS=")]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    args = [need("docker-compose"), "--env-file", str(tmp_path / ".env")]
    for name in COMPOSE_FILES[variant]:
        args += ["-f", name]
    result = run([*args, "config", "-q"], env={k: v for k, v in os.environ.items() if k != "API_TOKENS"})
    assert result.returncode != 0 and "API_TOKENS" in result.stderr


def test_compose_gives_each_service_tokens_and_its_own_s3_identity(compose_configs) -> None:
    for variant, config in compose_configs.items():
        keys = {}
        for name, service in config["services"].items():
            env = service.get("environment") or {}
            if name.removesuffix("-cpu") in (*SERVICES, "gateway") and "profiles" not in service:
                assert env.get("QUAKESTACK_API_TOKENS"), f"{variant}: {name} runs without tokens"
            if name.removesuffix("-cpu") in SERVICES and "profiles" not in service:
                keys[name.removesuffix("-cpu")] = env["QUAKESTACK_S3_ACCESS_KEY"]
            if name.startswith("gateway"):
                assert "QUAKESTACK_S3_ACCESS_KEY" not in env
        assert set(keys) == set(SERVICES) and len(set(keys.values())) == len(SERVICES), (variant, keys)
        root = config["services"]["minio"]["environment"]["MINIO_ROOT_USER"]
        assert root not in keys.values()
        init = config["services"]["minio-init"]
        assert any("deploy/minio" in (v if isinstance(v, str) else v["source"]) for v in init["volumes"])


def _env_ref(container: dict, name: str) -> dict:
    (entry,) = [e for e in container.get("env", []) if e["name"] == name]
    return entry["valueFrom"]["secretKeyRef"]


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_overlays_require_the_token_secret_and_per_service_keys(rendered_overlays, overlay) -> None:
    _path, docs = rendered_overlays[overlay]
    seen = set()
    for owner, spec in pod_specs(docs):
        for container in spec["containers"]:
            if not container["image"].startswith("quakestack/"):
                continue
            service = owner.split("/")[-1]
            seen.add(service)
            ref = _env_ref(container, "QUAKESTACK_API_TOKENS")
            assert ref["name"] == "quakestack-api-tokens" and not ref.get("optional"), owner
            if service in SERVICES:
                assert _env_ref(container, "QUAKESTACK_S3_ACCESS_KEY")["key"] == f"{service}-access-key"
                assert _env_ref(container, "QUAKESTACK_S3_SECRET_KEY")["key"] == f"{service}-secret-key"
    assert seen == {*SERVICES, "gateway"}
    if overlay == "cpu":
        jobs = [d for d in docs if d["kind"] == "Job" and d["metadata"]["name"] == "minio-init"]
        assert jobs, "the cpu overlay creates the services' MinIO users"


def test_training_templates_use_the_trainer_identity() -> None:
    for name, docs in templates().items():
        for _owner, spec in pod_specs(docs):
            for container in spec["containers"]:
                if any(e["name"] == "QUAKESTACK_S3_ACCESS_KEY" for e in container.get("env", [])):
                    assert _env_ref(container, "QUAKESTACK_S3_ACCESS_KEY")["key"] == "trainer-access-key", name


def test_policies_are_valid_json_documents() -> None:
    for service in SERVICES:
        doc = json.loads((POLICY_DIR / f"{service}.json").read_text())
        assert doc["Version"] == "2012-10-17"
    assert (DEPLOY / "minio" / "init.sh").exists() and (REPO_ROOT / "docker-compose.yml").exists()


# -- the metadata database -------------------------------------------------------------------

DATABASE_SECRET = {"name": "quakestack-database", "key": "url"}


def _env_example() -> dict[str, str]:
    return dict(line.split("=", 1) for line in (REPO_ROOT / ".env.example").read_text().splitlines()
                if line.strip() and not line.startswith("#"))


@pytest.mark.parametrize("variant", sorted(COMPOSE_FILES))
def test_compose_refuses_to_start_without_the_database_password(variant, env_file, tmp_path) -> None:
    lines = [line for line in env_file.read_text().splitlines() if not line.startswith("POSTGRES_PASSWORD=")]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    args = [need("docker-compose"), "--env-file", str(tmp_path / ".env")]
    for name in COMPOSE_FILES[variant]:
        args += ["-f", name]
    result = run([*args, "config", "-q"], env={k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"})
    assert result.returncode != 0 and "POSTGRES_PASSWORD" in result.stderr


def _mounts(service: dict) -> dict[str, str]:
    """target -> source of a compose service's volumes (short or long syntax)."""
    out = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        out[target] = source
    return out


def test_compose_runs_postgres_on_a_volume_with_a_health_check(compose_configs) -> None:
    password = _env_example()["POSTGRES_PASSWORD"]
    for variant, config in compose_configs.items():
        postgres = config["services"]["postgres"]
        image, _, tag = postgres["image"].partition(":")
        assert image == "postgres" and tag.split(".")[0] == "16", f"{variant}: {postgres['image']}"
        assert postgres["restart"] == "unless-stopped"
        env = postgres["environment"]
        assert env["POSTGRES_USER"] == env["POSTGRES_DB"] == "quakestack"
        assert env["POSTGRES_PASSWORD"] == password, "from .env's POSTGRES_PASSWORD"
        test = postgres["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and "pg_isready" in " ".join(test[1:]), test
        source = _mounts(postgres).get("/var/lib/postgresql/data")
        assert source in config["volumes"], f"{variant}: a named volume, not a bind mount or an anonymous one"
        assert not postgres.get("ports"), f"{variant}: postgres stays on the compose network"


def test_compose_gives_the_database_only_to_the_metadata_services(compose_configs) -> None:
    """data, trainer and inference (the cpu twins too) wait for a healthy postgres and get its URL, which
    their settings accept; the gateway (no storage, no database) gets neither."""
    from quakestack.config import load_settings

    password = _env_example()["POSTGRES_PASSWORD"]
    url = f"postgresql://quakestack:{password}@postgres:5432/quakestack"
    for variant, config in compose_configs.items():
        seen = set()
        for name, service in config["services"].items():
            env = service.get("environment") or {}
            kind = name.removesuffix("-cpu")
            if kind in SERVICES:
                assert service["depends_on"]["postgres"]["condition"] == "service_healthy", f"{variant}: {name}"
                assert env["QUAKESTACK_DATABASE_URL"] == url, f"{variant}: {name}"
                assert load_settings(env).database_url == url, f"{variant}: {name}"
                if "profiles" not in service:
                    seen.add(kind)
            else:
                assert not [k for k in env if k.startswith("QUAKESTACK_DATABASE_")], f"{variant}: {name}"
                assert "postgres" not in (service.get("depends_on") or {}), f"{variant}: {name}"
        assert seen == set(SERVICES), variant


def _database_clients(docs) -> dict[str, dict]:
    """owner -> pod template of every workload labelled quakestack.io/database-client."""
    out = {}
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
            template = doc["spec"]["template"]
            if template["metadata"].get("labels", {}).get("quakestack.io/database-client") == "true":
                out[f"{doc['kind']}/{doc['metadata']['name']}"] = template
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_run_postgres_on_a_persistent_volume(rendered_overlays, overlay) -> None:
    _path, docs = rendered_overlays[overlay]
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "postgres"]
    assert sts["spec"]["replicas"] == 1
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 999 and pod["securityContext"]["fsGroup"] == 999
    (container,) = pod["containers"]
    assert container["image"].split(":")[0] == "postgres" and container["image"].split(":")[1].split(".")[0] == "16"
    assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]}[claim["metadata"]["name"]] \
        == "/var/lib/postgresql/data"
    env = {e["name"]: e for e in container["env"]}
    assert env["PGDATA"]["value"].startswith("/var/lib/postgresql/data/"), "a subdirectory: initdb wants it empty"
    assert env["POSTGRES_USER"]["value"] == env["POSTGRES_DB"]["value"] == "quakestack"
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "quakestack-database", "key": "password"}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["exec"]["command"][0] == "pg_isready", probe
    (service,) = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "postgres"]
    assert sts["spec"]["serviceName"] == "postgres"
    assert [p["port"] for p in service["spec"]["ports"]] == [5432]
    assert service["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_give_the_database_url_from_the_secret_to_the_metadata_services(rendered_overlays, overlay) -> None:
    _path, docs = rendered_overlays[overlay]
    seen = set()
    for owner, spec in pod_specs(docs):
        for container in spec["containers"]:
            entries = [e for e in container.get("env", []) if e["name"].startswith("QUAKESTACK_DATABASE_URL")]
            assert all("value" not in e for e in entries), f"{owner}: the database URL is a secret, never a literal"
            if not container["image"].startswith("quakestack/"):
                assert not entries, owner
                continue
            service = owner.split("/")[-1]
            if service in SERVICES:
                ref = _env_ref(container, "QUAKESTACK_DATABASE_URL")
                assert ref == DATABASE_SECRET, f"{owner}: required (not optional), like the tokens"
                seen.add(service)
            else:
                assert not entries, f"{owner} keeps no metadata: no database URL"
    assert seen == set(SERVICES)
    config = next(d["data"] for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "quakestack-config")
    assert not [k for k in config if k.startswith("QUAKESTACK_DATABASE_URL")]
    assert not [d for d in docs if d["kind"] == "Secret"], "Secrets are created out of band"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_let_only_the_database_clients_reach_postgres(rendered_overlays, overlay) -> None:
    _path, docs = rendered_overlays[overlay]
    clients = _database_clients(docs)
    assert set(clients) == {f"Deployment/{s}" for s in SERVICES}, "the gateway and minio-init are no clients"
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    client = {"podSelector": {"matchLabels": {"quakestack.io/database-client": "true"}}}
    server = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "postgres"}}}
    ingress = [p for p in policies.values()
               if p["podSelector"] == server["podSelector"] and "Ingress" in p["policyTypes"]]
    assert [rule for p in ingress for rule in p.get("ingress", [])] == [
        {"from": [client], "ports": [{"protocol": "TCP", "port": 5432}]}]
    egress = [p for p in policies.values()
              if p["podSelector"] == client["podSelector"] and "Egress" in p["policyTypes"]]
    assert [rule for p in egress for rule in p.get("egress", [])] == [
        {"to": [server], "ports": [{"protocol": "TCP", "port": 5432}]}]


@pytest.mark.parametrize("nodes", [1, 2])
def test_executor_job_pods_get_the_database_url_from_the_secret(nodes) -> None:
    """The training Jobs the kubernetes executor submits read the URL from the Secret and carry the
    label that lets them through to postgres."""
    from quakestack.config import load_settings
    from quakestack.jobs.kubernetes import as_dicts, build_manifests

    settings = load_settings({"QUAKESTACK_JOBS_EXECUTOR": "kubernetes"})
    spec = {"training_hyper_parameters": {"num_gpus": 1, "num_nodes": nodes, "ddp_processes": 1}, "device": "auto"}
    job = as_dicts(build_manifests(settings, "0123456789abcdef", 1, spec))[-1]
    template = job["spec"]["template"]
    assert template["metadata"]["labels"]["quakestack.io/database-client"] == "true"
    (container,) = template["spec"]["containers"]
    assert _env_ref(container, "QUAKESTACK_DATABASE_URL") == DATABASE_SECRET
    assert not [e for e in container["env"] if e["name"].startswith("QUAKESTACK_DATABASE") and "value" in e]


def test_executor_fanout_job_pods_get_the_database_url_from_the_secret() -> None:
    from quakestack.config import load_settings
    from quakestack.jobs.kubernetes import as_dicts, build_fanout_manifests

    settings = load_settings({"QUAKESTACK_JOBS_EXECUTOR": "kubernetes"})
    (job,) = as_dicts(build_fanout_manifests(settings, "0123456789abcdef", 1, "dataset",
                                             {"workers": 2, "dataset": "d", "sources": []}))
    template = job["spec"]["template"]
    assert template["metadata"]["labels"]["quakestack.io/database-client"] == "true"
    (container,) = template["spec"]["containers"]
    assert _env_ref(container, "QUAKESTACK_DATABASE_URL") == DATABASE_SECRET


def test_training_templates_get_the_database_url_from_the_secret() -> None:
    for name in ("training-job.yaml", "pytorchjob.yaml"):
        for owner, spec in pod_specs(templates()[name]):
            (container,) = spec["containers"]
            assert _env_ref(container, "QUAKESTACK_DATABASE_URL") == DATABASE_SECRET, f"{name}: {owner}"
        labels = [d["spec"]["template"]["metadata"]["labels"] for d in templates()[name] if d["kind"] == "Job"]
        labels += [r["template"]["metadata"]["labels"] for d in templates()[name] if d["kind"] == "PyTorchJob"
                   for r in d["spec"]["pytorchReplicaSpecs"].values()]
        assert labels and all(x["quakestack.io/database-client"] == "true" for x in labels), name


def test_every_secret_reference_has_a_key_in_the_secret_templates(rendered_overlays) -> None:
    """What the pods read from Secrets is what deploy/k8s/templates/*.secret.example.yaml (and the
    documented `kubectl create secret` commands) define."""
    from quakestack.config import load_settings
    from quakestack.jobs.kubernetes import as_dicts, build_manifests

    defined = {(d["metadata"]["name"], key) for docs in templates().values() for d in docs if d["kind"] == "Secret"
               for key in d["stringData"]}
    assert ("quakestack-database", "url") in defined and ("quakestack-database", "password") in defined
    settings = load_settings({"QUAKESTACK_JOBS_EXECUTOR": "kubernetes"})
    job = as_dicts(build_manifests(settings, "0123456789abcdef", 1, {"training_hyper_parameters": {}}))
    sources = [docs for _path, docs in rendered_overlays.values()] + list(templates().values()) + [job]
    for docs in sources:
        for owner, spec in pod_specs(docs):
            for container in spec["containers"]:
                for entry in container.get("env", []):
                    ref = entry.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        assert (ref["name"], ref["key"]) in defined, f"{owner}: {entry['name']} <- {ref}"

