"""Helpers and fixtures for the deployment checks: rendered compose files and Kubernetes overlays.

Each external tool (docker-compose, kubectl, kubernetes-validate, promtool) is installed by
`scripts/setup.sh --dev`; a test that needs one skips with the tool's name only when it is absent.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("cpu", "gpu")
COMPOSE_FILES = {"gpu": ("docker-compose.yml",), "cpu": ("docker-compose.yml", "docker-compose.cpu.yml")}


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (scripts/setup.sh --dev installs it)")
    return path


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, **kwargs)


@pytest.fixture(scope="session")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """.env.example as the .env docker-compose interpolates from (placeholders only)."""
    path = tmp_path_factory.mktemp("compose") / ".env"
    shutil.copy(REPO_ROOT / ".env.example", path)
    return path


def compose_config(variant: str, env_file: Path) -> dict:
    """`docker-compose config` of the GPU default or the cpu override, interpolated and merged."""
    tool = need("docker-compose")
    args = [tool, "--env-file", str(env_file)]
    for name in COMPOSE_FILES[variant]:
        args += ["-f", name]
    result = run([*args, "config"])
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="session")
def compose_configs(env_file: Path) -> dict[str, dict]:
    return {variant: compose_config(variant, env_file) for variant in COMPOSE_FILES}


@pytest.fixture(scope="session")
def rendered_overlays(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[dict]]]:
    """`kubectl kustomize` of every overlay: the file it wrote and its documents."""
    kubectl = need("kubectl")
    out = tmp_path_factory.mktemp("kustomize")
    rendered = {}
    for overlay in OVERLAYS:
        result = run([kubectl, "kustomize", str(K8S / "overlays" / overlay)])
        assert result.returncode == 0, f"kustomize {overlay}: {result.stderr}"
        path = out / f"{overlay}.yaml"
        path.write_text(result.stdout)
        rendered[overlay] = (path, [d for d in yaml.safe_load_all(result.stdout) if d])
    return rendered


def templates() -> dict[str, list[dict]]:
    """deploy/k8s/templates/*.yaml (Secret examples, training Job, PyTorchJob): not in overlays."""
    return {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d]
            for p in sorted((K8S / "templates").glob("*.yaml"))}


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    """(owner name, pod spec) of every workload, PyTorchJob replica templates included."""
    specs = []
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind in {"Deployment", "StatefulSet", "Job", "DaemonSet"}:
            specs.append((f"{kind}/{name}", doc["spec"]["template"]["spec"]))
        elif kind == "PyTorchJob":
            for role, replica in doc["spec"]["pytorchReplicaSpecs"].items():
                specs.append((f"{kind}/{name}/{role}", replica["template"]["spec"]))
    return specs
