"""The deployment files fail closed: compose and Kubernetes require the token secret, and each service
gets its own least-privilege S3 identity whose policy comes from the table the embedded SeaweedFS uses."""

from __future__ import annotations

import json
import os

import pytest
from deploy_helpers import COMPOSE_FILES, DEPLOY, REPO_ROOT, need, pod_specs, run, templates

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
