"""Readers as plugins: a format added as one module reaches the pipeline, the CLI and the data service.

The toy format (``tests/plugins/toy_format.py``) is registered only through the two plugin routes a
user has, QUAKESTACK_DATA_READERS and the ``quakestack.readers`` entry-point group; no other module
names it. End to end it is ingested by the CLI through a real data service (its own process, started
with the setting) on the real embedded S3, and the published shards open with SeisBench.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

from quakestack.cli import main
from quakestack.client import channel
from quakestack.config import settings_env
from quakestack.data import DatasetSpec, SourceSpec, SplitSpec, WindowSpec, read_shard, readers, run_dataset
from quakestack.stack import Stack, with_free_ports
from quakestack.storage import ObjectStore
from quakestack.v1 import common_pb2, data_pb2, data_pb2_grpc
from tests.conftest import REPO_ROOT, own_sqlite
from tests.plugins.toy_format import write_toy

TOY_MODULE = "tests.plugins.toy_format"
BUILTINS = ["stead", "seisbench", "waveform_catalog"]


@pytest.fixture
def toy_registered(monkeypatch: pytest.MonkeyPatch):
    """The toy format registered the way a user does it: the setting names its module."""
    monkeypatch.setenv("QUAKESTACK_DATA_READERS", TOY_MODULE)
    yield readers.reload()
    monkeypatch.delenv("QUAKESTACK_DATA_READERS")
    readers.reload()


def test_builtin_formats_are_the_registry() -> None:
    assert readers.names()[:3] == BUILTINS
    assert [readers.get_reader(n).command_name for n in BUILTINS] == ["stead", "seisbench", "mseed"]
    with pytest.raises(ValueError, match="unknown source format 'toy'"):
        readers.get_reader("toy")


def test_toy_format_through_the_pipeline(toy_registered, tmp_path: Path) -> None:
    assert readers.names() == [*BUILTINS, "toy"]
    path = write_toy(str(tmp_path / "a.npz"), n=20)
    assert readers.guess(Path(path)).name == "toy"
    spec = DatasetSpec(name="toy", sources=[SourceSpec("toy", [path])], window=WindowSpec(length_s=20.0),
                       split=SplitSpec(1.0, 0.0, 0.0), shard_size=8)
    manifest = run_dataset(spec, str(tmp_path / "out"))
    assert manifest["counts"]["written"] == 20 and manifest["source"][0]["format"] == "toy"
    x, meta = read_shard(str(tmp_path / "out" / manifest["shards"][0]["key"]))
    with np.load(path) as z:
        first = int(meta["trace_source_name"][0].split("#")[1])
        np.testing.assert_array_equal(x[0], z["data"][first][:, :2000])  # P kept where the file has it


def test_entry_point_registers_a_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed package's entry point (a dist-info on sys.path) is found like a setting."""
    dist = tmp_path / "toy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{readers.ENTRY_POINT_GROUP}]\ntoy = {TOY_MODULE}:READER\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert readers.reload()["toy"].summary.startswith("NumPy .npz")
    finally:
        monkeypatch.undo()
        readers.reload()
    assert "toy" not in readers.names()


@pytest.mark.parametrize("value, fragment", [
    ("quakestack.data.windows", "does not define READER"),
    ("no_such_reader_module", "cannot import reader module 'no_such_reader_module'"),
    (f"{TOY_MODULE},{TOY_MODULE}", "source format 'toy' is already registered"),
])
def test_bad_plugins_fail_with_their_name(monkeypatch: pytest.MonkeyPatch, value: str, fragment: str) -> None:
    monkeypatch.setenv("QUAKESTACK_DATA_READERS", value)
    try:
        with pytest.raises(ValueError, match=fragment):
            readers.reload()
    finally:
        monkeypatch.delenv("QUAKESTACK_DATA_READERS")
        readers.reload()


def test_data_service_with_a_broken_plugin_does_not_start(stack: Stack) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
    env.update(settings_env(with_free_ports(stack.settings).replace(data_readers=("no_such_reader_module",))))
    result = subprocess.run([sys.executable, "-m", "services.data"], env=env, cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "cannot start" in lines[0] and "cannot import reader module 'no_such_reader_module'" in lines[0]


def test_toy_format_end_to_end_through_cli_and_data_service(stack: Stack, toy_registered, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    """CLI `data ingest` (format guessed from .npz) -> a data service started with the setting -> shards."""
    sbd = pytest.importorskip("seisbench.data")
    settings = with_free_ports(stack.settings).replace(s3_bucket="toy-plugin", data_readers=(TOY_MODULE,),
                                                       cache_dir=str(tmp_path / "cache"), data_workers=1,
                                                       database_url=own_sqlite(tmp_path))
    own = Stack(settings, state_dir=tmp_path / "own")
    own.log_dir.mkdir(parents=True, exist_ok=True)
    own.start_process("data")
    try:
        own.wait_healthy(60, names=("data",))
        path = write_toy(str(tmp_path / "day.npz"), n=30, seed=2)
        capsys.readouterr()
        code = main(["data", "formats", "--json", "--data", settings.data_addr])
        formats = json.loads(capsys.readouterr().out)
        assert code == 0 and [f["format"] for f in formats] == ["stead", "seisbench", "mseed", "toy"]
        code = main(["data", "ingest", "toyset", path, "--window-s", "20", "--split", "0.5,0.25,0.25",
                     "--shard-size", "10", "--data", settings.data_addr])
        out, err = capsys.readouterr()
        assert code == 0, err + own.log_tail("data")
        assert "dataset 'toyset' published: 30 windows" in out + err
        own_store = ObjectStore.from_settings(settings)
        manifest = own_store.get_json("datasets/toyset/manifest.json")
        assert manifest["source"][0]["format"] == "toy" and manifest["counts"]["written"] == 30
        shard = manifest["shards"][0]
        directory = tmp_path / "download" / shard["key"]
        for name, f in shard["files"].items():
            own_store.get_file(f"datasets/toyset/{f['key']}", directory / name, sha256=f["sha256"])
        ds = sbd.WaveformDataset(str(directory), component_order="ZNE", dimension_order="NCW", sampling_rate=100)
        x, meta = read_shard(str(directory))
        assert len(ds) == shard["count"] == len(meta) > 0
        np.testing.assert_array_equal(ds.get_waveforms(np.arange(len(ds))), x)
        with channel(settings.data_addr) as ch:
            stub = data_pb2_grpc.DataServiceStub(ch)
            bad = data_pb2.CreateDatasetRequest(name="nope", sources=[data_pb2.DataSource(
                format_name="segy", waveforms=common_pb2.Location(object_key="raw/x.npz"))])
            with pytest.raises(grpc.RpcError) as exc:
                stub.CreateDataset(bad, timeout=30)
            assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "'segy' is not a registered source format; registered: stead, seisbench, waveform_catalog, toy" \
                in exc.value.details()
    finally:
        own.stop()


def test_a_service_without_the_plugin_refuses_the_format(stack: Stack) -> None:
    """The session stack was started without the setting: format_name "toy" is INVALID_ARGUMENT there."""
    with channel(stack.settings.data_addr) as ch:
        request = data_pb2.CreateDatasetRequest(name="toy-elsewhere", sources=[data_pb2.DataSource(
            format_name="toy", waveforms=common_pb2.Location(object_key="raw/x.npz"))])
        with pytest.raises(grpc.RpcError) as exc:
            data_pb2_grpc.DataServiceStub(ch).CreateDataset(request, timeout=30)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "'toy' is not a registered" in \
        exc.value.details()
