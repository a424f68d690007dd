"""List RPCs of jobs (training, dataset, annotation): their filters checked once, pages cut by keyset.

A List request's filter fields share their names across the three services (state, dataset,
architecture, owner, created_after, created_before), so one reader serves them all; a page token holds
the (create time, job id) of the page's last job and a fingerprint of the filters it was issued for.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from google.protobuf.message import Message

from quakestack.errors import InvalidArgument
from quakestack.jobs.scheduler import Scheduler
from quakestack.layout import validate_name
from quakestack.metadata.jobs import JobFilter, JobView
from quakestack.pagination import page_request
from quakestack.protoconv import seconds_from_timestamp
from quakestack.v1 import common_pb2

_OWNER = re.compile(r"[A-Za-z0-9._:@+=\-]{1,128}")


def job_filter(request: Message) -> JobFilter:
    """The request's filters, each refused with INVALID_ARGUMENT naming the field when it cannot match."""
    fields = request.DESCRIPTOR.fields_by_name
    values: dict[str, Any] = {}
    if "state" in fields and request.state:
        if request.state not in common_pb2.JobState.values():
            valid = [n for n in common_pb2.JobState.keys() if not n.endswith("UNSPECIFIED")]  # noqa: SIM118
            raise InvalidArgument(f"state {request.state} is not a JobState; valid: {', '.join(valid)}")
        values["state"] = common_pb2.JobState.Name(request.state).removeprefix("JOB_STATE_")
    if "dataset" in fields and request.dataset:
        values["dataset"] = validate_name(request.dataset, "dataset filter")
    if "architecture" in fields and request.architecture:
        from quakestack.models.zoo import list_architectures

        known = sorted(a.name for a in list_architectures())
        if request.architecture not in known:
            raise InvalidArgument(f"architecture filter {request.architecture!r} is no architecture; valid: "
                                  f"{', '.join(known)}")
        values["architecture"] = request.architecture
    if "owner" in fields and request.owner:
        if not _OWNER.fullmatch(request.owner):
            raise InvalidArgument(f"owner filter {request.owner[:40]!r} is no token id")
        values["owner"] = request.owner
    for name in ("created_after", "created_before"):
        if name in fields and request.HasField(name):
            values[name] = seconds_from_timestamp(getattr(request, name))
    after, before = values.get("created_after"), values.get("created_before")
    if after is not None and before is not None and after >= before:
        raise InvalidArgument("created_after must lie before created_before")
    return JobFilter(**values)


def list_jobs(scheduler: Scheduler, rpc: str, request: Message) -> tuple[list[JobView], str]:
    """One page of a kind's jobs, newest first, and the next page's token."""
    where = job_filter(request)
    page = page_request(rpc, request.page_size, request.page_token, dataclasses.asdict(where))
    if page.after is not None and (len(page.after) != 2 or not isinstance(page.after[0], (int, float))
                                   or not isinstance(page.after[1], str)):
        raise InvalidArgument(f"page_token is not a token {rpc} issued; start again without one")
    views, more = scheduler.page(where, page.after, page.size)  # type: ignore[arg-type]
    return views, page.token_after((views[-1].created_s, views[-1].job_id)) if more and views else ""
