"""Configuration: defaults, validation with one clear line naming the variable, secrets hidden."""

from __future__ import annotations

import subprocess
import sys

import pytest

from quakestack.config import SETTINGS, ConfigError, load_settings, settings_table_markdown
from tests.conftest import REPO_ROOT


def test_defaults_load() -> None:
    settings = load_settings({})
    assert settings.data_grpc_port == 50051
    assert settings.s3_bucket == "quakestack"
    assert settings.device == "auto"


@pytest.mark.parametrize(("name", "value", "fragment"), [
    ("QUAKESTACK_DATA_GRPC_PORT", "seventy", "QUAKESTACK_DATA_GRPC_PORT='seventy'"),
    ("QUAKESTACK_DATA_GRPC_PORT", "70000", "TCP port"),
    ("QUAKESTACK_DEVICE", "tpu", "auto, cpu, cuda"),
    ("QUAKESTACK_S3_BUCKET", "Bad_Bucket", "S3 bucket name"),
    ("QUAKESTACK_LOG_LEVEL", "loud", "debug, info"),
    ("QUAKESTACK_NOT_A_SETTING", "1", "unknown setting"),
])
def test_invalid_values_name_the_variable(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings({name: value})
    assert name in str(excinfo.value)
    assert fragment in str(excinfo.value)


def test_secrets_never_echoed() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings({"QUAKESTACK_S3_ENDPOINT": "127.0.0.1:1", "QUAKESTACK_S3_SECRET_KEY": "hunter2"})
    assert "hunter2" not in str(excinfo.value)
    settings = load_settings({"QUAKESTACK_S3_ENDPOINT": "h:1", "QUAKESTACK_S3_ACCESS_KEY": "AKIDSECRET",
                              "QUAKESTACK_S3_SECRET_KEY": "hunter2"})
    assert "hunter2" not in repr(settings) and "AKIDSECRET" not in repr(settings)


@pytest.mark.parametrize("module", ["services.data", "services.trainer", "services.inference", "gateway"])
def test_process_exits_with_one_clear_line(module: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "QUAKESTACK_GRACE_S": "-3"}
    result = subprocess.run([sys.executable, "-m", module], env=env, cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "QUAKESTACK_GRACE_S" in lines[0] and "configuration error" in lines[0]


def test_readme_lists_every_setting() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.env}`" in readme, f"{setting.env} missing from README"
    assert settings_table_markdown().splitlines()[2] in readme
