"""A set-up step that fails says which step it was and shows the tool's own error (npm's output was once
silenced: `scripts/setup.sh` exited 1 without a word when npm could not reach its registry)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.setup.test_setup_system_python import _copy_tracked

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_a_failing_npm_step_is_named_with_its_error(tmp_path: Path) -> None:
    """npm offline with an empty cache (as with no registry in reach): the chart library cannot be installed."""
    repo = tmp_path / "repo"
    _copy_tracked(repo)
    venv = tmp_path / "env"  # sees this interpreter's packages (torch is there), installs quakestack into itself
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CONDA_PREFIX")}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
               npm_config_offline="true", npm_config_cache=str(tmp_path / "empty-npm-cache"))
    done = subprocess.run(["scripts/setup.sh"], cwd=repo, env=env, capture_output=True, text=True, timeout=500)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "setup: FAILED: the web console's chart library (npm ci in gateway/console)" in done.stderr, done.stderr
    assert "ENOTCACHED" in done.stderr or "offline" in done.stderr, done.stderr  # npm's own words
    assert "setup: quakestack (pip install -e .)" in done.stdout  # the steps before it ran and were named
