"""The metadata store seen from outside: a service refuses to start on a database it cannot use (one line,
exit 1, no password), lists page by keyset with filters through gRPC, REST and the CLI, and bad page tokens
and filter values are INVALID_ARGUMENT / 400 naming what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import timestamp_pb2

from quakestack.cli import main as cli_main
from quakestack.client import channel
from quakestack.config import settings_env
from quakestack.embedded.seaweed import free_ports
from quakestack.jobs.spec import JobRecord, new_job_id
from quakestack.metadata.database import Database, sqlite_url
from quakestack.metadata.jobs import JobStore
from quakestack.protoconv import iso_from_seconds
from quakestack.stack import Stack, with_free_ports
from quakestack.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, trainer_pb2, trainer_pb2_grpc
from tests.conftest import REPO_ROOT, own_sqlite
from tests.gateway.helpers import http

PASSWORD = "s3cret-Pa55word"


def _start_alone(settings, service: str = "trainer", timeout_s: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
    env.update(settings_env(settings))
    return subprocess.run([sys.executable, "-m", f"services.{service}"], env=env, capture_output=True, text=True,
                          timeout=timeout_s, cwd=REPO_ROOT)


def test_an_unreachable_database_stops_the_service_with_one_line(stack, tmp_path) -> None:
    (port,) = free_ports(1)  # nothing listens there
    url = f"postgresql://quakestack:{PASSWORD}@127.0.0.1:{port}/quakestack"
    result = _start_alone(with_free_ports(stack.settings).replace(database_url=url, database_timeout_s=2.0))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert lines[-1].startswith("quakestack trainer: cannot start: metadata database"), lines
    assert f"127.0.0.1:{port}" in lines[-1] and "unreachable" in lines[-1]
    assert PASSWORD not in result.stderr + result.stdout, "the password is never shown"


def test_a_database_written_by_a_newer_build_is_refused(stack, tmp_path) -> None:
    url = own_sqlite(tmp_path)
    with closing(Database(url)) as db:
        db.upgrade()
        with db.write() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0042_next_year'"))
    result = _start_alone(with_free_ports(stack.settings).replace(database_url=url))
    assert result.returncode == 1
    assert "0042_next_year" in result.stderr and "newer than this build knows" in result.stderr, result.stderr
    with closing(Database(url)) as db:
        assert db.revision() == "0042_next_year", "nothing was changed in a database the build does not know"


def test_a_database_url_of_another_kind_is_a_configuration_error(stack) -> None:
    result = _start_alone(with_free_ports(stack.settings).replace(database_url="mysql://u:p@h/d"))
    assert result.returncode == 2 and "QUAKESTACK_DATABASE_URL" in result.stderr
    assert "p@h" not in result.stderr, "a URL with a password is shown as ***"


# -- lists: keyset pages with filters, through gRPC, REST and the CLI -----------------------------------
@pytest.fixture(scope="module")
def listed(stack, tmp_path_factory) -> dict:
    """A trainer of its own (its own database) holding 25 finished jobs of two datasets, a minute apart, and
    a gateway in front of it."""
    state = tmp_path_factory.mktemp("lists")
    settings = with_free_ports(stack.settings).replace(database_url=sqlite_url(state / "metadata.db"))
    with closing(Database(settings.database_url)) as db:
        db.upgrade()
        jobs = JobStore(db)
        base = float(int(time.time()) - 3600)
        rows, ids = [], []
        for i in range(25):
            end = "FAILED" if i % 5 == 0 else "SUCCEEDED"
            record = JobRecord(kind="training", version=1, job_id=new_job_id(),
                               create_time=iso_from_seconds(base + 60 * i),
                               spec={"dataset": "lists-a" if i % 2 else "lists-b", "architecture": "phasenet",
                                     "owner": "anonymous", "epochs": 1, "class_names": []})
            rows.append((record, {"epochs": 1}, [{"type": "state", "state": "QUEUED"},
                                                 {"type": "state", "state": "RUNNING"},
                                                 {"type": "state", "state": end, "message": end.lower()}]))
            ids.append(record.job_id)
        jobs.create_many(rows)
    own = Stack(settings, state_dir=state)
    own.log_dir.mkdir(parents=True, exist_ok=True)
    own.start_process("trainer")
    own.start_process("gateway")
    try:
        own.wait_healthy(90, names=("trainer", "gateway"))
        yield {"settings": settings, "ids": ids, "base": base, "gateway": own.endpoints().gateway}
    finally:
        own.stop()


def _ts(seconds: float) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromSeconds(int(seconds))
    return out


def test_pages_follow_the_filters_newest_first_each_job_once(listed) -> None:
    ids, base = listed["ids"], listed["base"]
    with channel(listed["settings"].trainer_addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)

        def walk(**filters) -> list[str]:
            seen, token = [], ""
            while True:
                reply = stub.ListTrainingJobs(trainer_pb2.ListTrainingJobsRequest(page_size=4, page_token=token,
                                                                                 **filters), timeout=10)
                seen += [j.job_id for j in reply.jobs]
                token = reply.next_page_token
                if not token:
                    return seen

        assert walk() == list(reversed(ids))
        assert walk(dataset="lists-a") == [ids[i] for i in reversed(range(25)) if i % 2]
        assert walk(state=common_pb2.JOB_STATE_FAILED) == [ids[i] for i in (20, 15, 10, 5, 0)]
        assert walk(architecture="phasenet", owner="anonymous") == list(reversed(ids))
        assert walk(architecture="convnetquake") == []
        window = walk(created_after=_ts(base + 600), created_before=_ts(base + 900))
        assert window == [ids[i] for i in (14, 13, 12, 11, 10)]


def test_bad_tokens_and_filter_values_are_invalid_argument_naming_the_field(listed) -> None:
    with channel(listed["settings"].trainer_addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        first = stub.ListTrainingJobs(trainer_pb2.ListTrainingJobsRequest(page_size=2), timeout=10)
        foreign = stub.ListTrainingJobs(trainer_pb2.ListTrainingJobsRequest(
            page_size=2, state=common_pb2.JOB_STATE_SUCCEEDED), timeout=10).next_page_token
        cases = [
            (dict(page_token="not-a-token"), "page_token"),
            (dict(page_token=first.next_page_token[:-4] + "AAAA"), "page_token"),
            (dict(page_token=foreign), "other parameters"),  # issued for another filter
            (dict(architecture="no_such_arch"), "architecture filter 'no_such_arch' is no architecture"),
            (dict(dataset="../etc"), "dataset filter"),
            (dict(owner="a b"), "owner filter"),
            (dict(state=99), "state 99 is not a JobState"),
            (dict(created_after=_ts(2000), created_before=_ts(1000)), "created_after must lie before"),
            (dict(page_size=-1), "page_size"),
        ]
        for fields, expected in cases:
            with pytest.raises(grpc.RpcError) as exc:
                stub.ListTrainingJobs(trainer_pb2.ListTrainingJobsRequest(**fields), timeout=10)
            assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (fields, exc.value.details())
            assert expected in exc.value.details(), (fields, exc.value.details())
    api = listed["gateway"]
    for query, expected in (("architecture=nope", "no architecture"), ("state=JOB_STATE_BOGUS", "JOB_STATE"),
                            ("createdAfter=yesterday", "createdAfter"), ("pageToken=%21%21", "page_token")):
        reply = http("GET", f"{api}/v1/training-jobs?{query}")
        assert reply.status == 400 and expected in reply.json()["message"], (query, reply.json())
    reply = http("GET", f"{api}/v1/training-jobs?dataset=lists-b&state=JOB_STATE_FAILED&pageSize=2")
    assert reply.status == 200
    body = reply.json()
    assert [j["jobId"] for j in body["jobs"]] == [listed["ids"][20], listed["ids"][10]] and body["nextPageToken"]
    more = http("GET", f"{api}/v1/training-jobs?dataset=lists-b&state=JOB_STATE_FAILED&pageSize=2"
                       f"&pageToken={body['nextPageToken']}").json()
    assert [j["jobId"] for j in more["jobs"]] == [listed["ids"][0]] and not more.get("nextPageToken")


def test_the_cli_lists_one_filtered_page_and_says_when_more_match(listed, capsys) -> None:
    addr = listed["settings"].trainer_addr
    code = cli_main(["train", "ls", "--trainer", addr, "--dataset", "lists-a", "--limit", "3", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    import json

    shown = json.loads(out)
    assert [j["jobId"] for j in shown] == [listed["ids"][i] for i in (23, 21, 19)]
    assert "the newest 3 shown; more match" in err
    code = cli_main(["train", "ls", "--trainer", addr, "--state", "failed", "--since",
                     iso_from_seconds(listed["base"] + 600), "--all", "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and [j["jobId"] for j in json.loads(out)] == [listed["ids"][i] for i in (20, 15, 10)], err
    code = cli_main(["train", "ls", "--trainer", addr, "--arch", "nope"])
    _, err = capsys.readouterr()
    assert code == 1 and "INVALID_ARGUMENT" in err and "no architecture" in err


def test_annotation_and_dataset_job_lists_take_their_filters(stack, data_channel) -> None:
    catalogs = catalog_pb2_grpc.CatalogServiceStub(data_channel)
    reply = catalogs.ListAnnotationJobs(catalog_pb2.ListAnnotationJobsRequest(
        owner=f"nobody-{uuid.uuid4().hex[:6]}"), timeout=10)
    assert list(reply.jobs) == [] and not reply.next_page_token
    with pytest.raises(grpc.RpcError) as exc:
        catalogs.ListAnnotationJobs(catalog_pb2.ListAnnotationJobsRequest(state=42), timeout=10)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "state 42" in exc.value.details()
    api = stack.endpoints().gateway
    reply = http("GET", f"{api}/v1/dataset-jobs?dataset=../x")
    assert reply.status == 400 and "dataset filter" in reply.json()["message"]


def test_no_sqlite_file_outside_the_state_directory(stack) -> None:
    """The embedded default: one file beside the storage directory, nowhere else."""
    assert (Path(stack.settings.storage_dir).parent / "metadata.db").exists()
