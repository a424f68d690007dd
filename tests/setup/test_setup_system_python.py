"""The README's set-up works on a stock Debian/Ubuntu system Python (PEP 668) and in an existing venv.

The working tree's tracked files are copied (uncommitted changes included) and `scripts/setup.sh`
runs there with `python3` resolving to `/usr/bin/python3`, exactly as a new user's shell would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def _externally_managed(python: Path) -> bool:
    probe = ("import sysconfig, pathlib; "
             "print((pathlib.Path(sysconfig.get_path('stdlib')) / 'EXTERNALLY-MANAGED').exists())")
    return subprocess.run([str(python), "-c", probe], capture_output=True, text=True).stdout.strip() == "True"


pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not SYSTEM_PYTHON.exists() or not _externally_managed(SYSTEM_PYTHON),
                       reason="no externally managed /usr/bin/python3 on this machine"),
]


def _copy_tracked(dest: Path) -> None:
    listing = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listing, cwd=REPO_ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _shell_env(bin_dir: Path) -> dict[str, str]:
    """A login-like environment whose `python3` is the one in bin_dir (no venv of ours leaking in)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHOME")}
    ours = Path(sys.prefix) / "bin"
    path = [p for p in env.get("PATH", "").split(os.pathsep) if ".pyenv" not in p and Path(p) != ours]
    env["PATH"] = os.pathsep.join([str(bin_dir), *path])
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=800)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_setup_makes_a_project_venv_on_an_externally_managed_python(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _copy_tracked(repo)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(SYSTEM_PYTHON)
    env = _shell_env(bin_dir)
    out = _run(["scripts/setup.sh"], repo, env)
    assert str(repo / ".venv") in out
    version = _run(["scripts/python", "-c", "import sys, torch, quakestack; print(sys.prefix, torch.__version__)"],
                   repo, env)
    prefix, torch_version = version.split()
    assert prefix == str(repo / ".venv") and torch_version.startswith("2.13.0"), version
    assert "QUAKESTACK_S3_ENDPOINT" in _run(["scripts/python", "-m", "quakestack", "config"], repo, env)


def test_setup_installs_into_an_active_virtualenv(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _copy_tracked(repo)
    venv = tmp_path / "env"
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], check=True)
    env = _shell_env(venv / "bin")
    env["VIRTUAL_ENV"] = str(venv)
    _run(["scripts/setup.sh"], repo, env)
    assert not (repo / ".venv").exists()
    prefix = _run(["scripts/python", "-c", "import sys, quakestack; print(sys.prefix)"], repo, env)
    assert prefix.strip() == str(venv)
