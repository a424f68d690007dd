"""`quakestack catalog ...` against the session stack: a refused build is one error line; build --no-wait
(the inventory uploaded from a local file), list and cancel; (slow) build to the end with progress, get the
catalog files and evaluate against a local reference file with its plots."""

from __future__ import annotations

import io
from pathlib import Path

import obspy
import pytest
from obspy import UTCDateTime

from quakestack.storage import ObjectStore
from tests.catalog.annotation_helpers import magnitude_weights, picker_weights, publish_archive, register
from tests.catalog.conftest import network  # noqa: F401 - the synthetic network fixture


@pytest.fixture(scope="module")
def published(store: ObjectStore, metadata, network) -> tuple[dict, object]:  # noqa: F811
    archive = publish_archive(store, network, "archives/cli-catalog")
    register(store, metadata, "cli-picker-untrained", picker_weights(0))
    register(store, metadata, "cli-magnitude", magnitude_weights())
    return archive, network


def _build_args(archive: dict, net, picker: str, *extra: str) -> list[str]:
    return ["catalog", "build", "--sds-prefix", archive["sds_prefix"], "--inventory", net.inventory_path,
            "--channel", "HH?", "--start", str(UTCDateTime(archive["start"])), "--end",
            str(UTCDateTime(archive["end"])), "--picker", picker, *extra]


def test_catalog_build_refused_no_wait_list_and_cancel(cli, cli_json, published) -> None:
    archive, net = published
    code, _, err = cli(*_build_args(archive, net, "cli-magnitude"))
    assert code == 1 and "INVALID_ARGUMENT" in err and "cannot pick or detect" in err, err
    code, _, err = cli(*_build_args(archive, net, "cli-picker-untrained", "--start", "yesterday-ish"))
    assert code == 1 and "not a time" in err, err
    # a picker by alias, written as `models export` takes it (NAME@ALIAS; NAME:VERSION as before)
    code, _, err = cli("models", "alias", "cli-picker-untrained", "field", "1")
    assert code == 0, err
    job = cli_json(*_build_args(archive, net, "cli-picker-untrained@field", "--no-wait", "--param", "min_picks=8"))
    assert job["progress"]["stationDaysTotal"] == "15" and job["picker"] == "cli-picker-untrained:1"
    listed = cli_json("catalog", "list")
    assert job["jobId"] in {j["jobId"] for j in listed}
    cancelled = cli_json("catalog", "cancel", job["jobId"])
    assert cancelled["jobId"] == job["jobId"]
    code, _, err = cli("catalog", "watch", job["jobId"])
    assert code == 1 and "CANCELLED" in err, err
    code, _, err = cli("catalog", "get", job["jobId"])
    assert code == 1 and "FAILED_PRECONDITION" in err, err


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_catalog_build_get_and_evaluate(cli, store, metadata, published, tmp_path: Path) -> None:
    archive, net = published
    register(store, metadata, "cli-picker", picker_weights(8))
    code, out, err = cli(*_build_args(archive, net, "cli-picker", "--magnitude-model", "cli-magnitude",
                                      "--workers", "2"))
    assert code == 0, err
    assert "SUCCEEDED" in out and "events" in out, out
    job_id = out.split()[2].rstrip(":")
    quakeml = tmp_path / "catalog.xml"
    assert cli("catalog", "get", job_id, "-o", str(quakeml))[0] == 0
    catalog = obspy.read_events(str(quakeml))
    assert len(catalog) > 0 and all(e.origins and e.picks for e in catalog)
    for fmt, head in (("csv", b"event_id,origin_time"), ("picks-csv", b"event_id,station"),
                      ("all-picks-csv", b"event_id,station")):
        path = tmp_path / f"{fmt}.csv"
        assert cli("catalog", "get", job_id, "--format", fmt, "-o", str(path))[0] == 0
        assert path.read_bytes().startswith(head)
    associated = (tmp_path / "picks-csv.csv").read_text().count("\n")
    every = (tmp_path / "all-picks-csv.csv").read_text().count("\n")
    assert every >= associated  # the raw picks of every station-day, associated or not
    code, out, err = cli("catalog", "evaluate", job_id, "--reference", net.catalog_path,
                         "--out", str(tmp_path / "eval"))
    assert code == 0, err
    assert "recall" in out and "precision" in out
    pngs = sorted(p.name for p in (tmp_path / "eval").iterdir())
    assert pngs == ["event_map.png", "magnitudes.png"]
    assert (tmp_path / "eval" / "event_map.png").read_bytes().startswith(b"\x89PNG")
    assert obspy.read_events(io.BytesIO(quakeml.read_bytes()))[0].origins


def test_catalog_build_help_states_every_association_default() -> None:
    """min_picks=6 turned a 4-station network into 0 events, and no help text said it existed."""
    import subprocess
    import sys

    from quakestack.catalog.associate import ASSOCIATION_PARAMETERS

    text = " ".join(subprocess.run([sys.executable, "-m", "quakestack", "catalog", "build", "--help"],
                                   capture_output=True, text=True, check=True).stdout.split())
    for parameter in ASSOCIATION_PARAMETERS:
        assert f"{parameter.name}={parameter.default}" in text, parameter.name
    assert "min_picks=6" in text and "min_s_picks=2" in text


def test_archive_upload_puts_an_sds_tree_in_the_bucket_resumably_for_catalog_build(cli, cli_json, store, published,
                                                                                  tmp_path: Path) -> None:
    """The README's `catalog build --sds-prefix` once assumed a bucket filled by other tools."""
    import shutil

    _, net = published
    tree = tmp_path / "sds"
    shutil.copytree(net.sds_root, tree)
    (tree / "README.txt").write_text("notes beside the archive")
    local = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*.D.*") if p.is_file())
    code, out, err = cli("archive", "upload", str(tree), "--prefix", "archives/cli-upload/sds")
    assert code == 0, err
    assert f"{len(local)} files" in out and f"{len(local)} uploaded, 0 already stored" in out, out
    assert "8 stations, 24 channels, 2 days (2024.061 to 2024.062), 0 gaps" in out, out
    assert "skipped README.txt: not at YEAR/NET/STA/CHAN.TYPE/<file> (SDS)" in err, err
    stored = {o.key: o for o in store.list("archives/cli-upload/sds/")}
    assert sorted(stored) == [f"archives/cli-upload/sds/{r}" for r in local]
    first = local[0]
    assert store.stat(f"archives/cli-upload/sds/{first}").sha256 == __import__("hashlib").sha256(
        (tree / first).read_bytes()).hexdigest()
    again = cli_json("archive", "upload", str(tree), "--prefix", "archives/cli-upload/sds")  # resumes: nothing sent
    assert again["uploaded"] == 0 and again["already_stored"] == len(local)
    (tree / first).write_bytes((tree / first).read_bytes()[:-512])  # other bytes under a stored name
    code, _, err = cli("archive", "upload", str(tree), "--prefix", "archives/cli-upload/sds")
    assert code == 1 and "ALREADY_EXISTS" in err and "already holds other bytes" in err, err
    code, _, err = cli("archive", "upload", str(tree), "--prefix", "raw/elsewhere")
    assert code == 1 and "must lie under archives/" in err, err
    job = cli_json("catalog", "build", "--sds-prefix", "archives/cli-upload/sds", "--inventory", net.inventory_path,
                   "--channel", "HH?", "--start", str(net.start), "--end", str(net.end), "--picker",
                   "cli-picker-untrained", "--no-wait")
    assert int(job["progress"]["stationDaysTotal"]) >= 15
    assert cli_json("catalog", "cancel", job["jobId"])["jobId"] == job["jobId"]
