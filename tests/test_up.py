"""`quakestack up` as a user runs it: starts everything, stops everything on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from quakestack.client import channel, health_status
from quakestack.config import load_settings, settings_env
from quakestack.stack import with_free_ports
from tests.conftest import REPO_ROOT


def test_up_starts_and_stops_everything(tmp_path) -> None:
    settings = with_free_ports(load_settings({})).replace(storage_dir=str(tmp_path / "s3"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
    env.update({k: v for k, v in settings_env(settings).items() if k != "QUAKESTACK_S3_ENDPOINT"})
    proc = subprocess.Popen([sys.executable, "-m", "quakestack.cli", "up"], env=env, cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "Ctrl-C stops everything" in line or not line:
            break
    output = "".join(lines)
    assert "quakestack is up" in output, output
    assert "embedded SeaweedFS" in output
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 5  # weed + data + trainer + inference + gateway
    with channel(settings.trainer_addr) as ch:
        assert health_status(ch, "quakestack.v1.ModelRegistryService") == "SERVING"
    time.sleep(6)  # weed's maintenance worker retries its admin connection every few seconds
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: SIGINT to the whole process group
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "quakestack: stopped cleanly (gateway, inference, trainer, data)" in rest, rest
    log_dir = next(line.split()[-1] for line in lines if line.strip().startswith("logs"))
    assert "admin server failed" not in (Path(log_dir) / "s3.log").read_text()  # SeaweedFS noise, silenced
    time.sleep(0.5)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert (tmp_path / "s3" / "credentials.json").stat().st_mode & 0o077 == 0
