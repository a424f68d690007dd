"""Job lists on the command line: the filters every List*Jobs RPC takes, and one page by default.

A list prints the newest `--limit` jobs (one RPC) and says when more match; `--all` follows every page.
The filters are applied by the server, on indexed columns, so a filtered list costs the same after a
year of jobs as on the first day.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from quakestack.cli.common import CliError, Ctx
from quakestack.pagination import MAX_PAGE_SIZE
from quakestack.protoconv import datetime_from_iso
from quakestack.v1 import common_pb2

DEFAULT_LIMIT = 50
STATES = [n.removeprefix("JOB_STATE_").lower() for n in common_pb2.JobState.keys()  # noqa: SIM118
          if not n.endswith("UNSPECIFIED")]


def add_job_filters(parser: argparse.ArgumentParser, *, dataset: bool = False, architecture: bool = False) -> None:
    parser.add_argument("--state", default="", choices=["", *STATES], metavar="STATE",
                        help=f"only jobs in this state ({', '.join(STATES)})")
    if dataset:
        parser.add_argument("--dataset", default="", help="only jobs of this dataset")
    if architecture:
        parser.add_argument("--arch", default="", help="only jobs of this architecture")
    parser.add_argument("--owner", default="", help="only jobs created with this token id (as GET /v1/whoami names it)")
    parser.add_argument("--since", default="", help="only jobs created at or after this UTC time (2026-12-01, "
                        "2026-12-01T06:00:00Z)")
    parser.add_argument("--until", default="", help="only jobs created before this UTC time")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help=f"newest jobs shown (default "
                        f"{DEFAULT_LIMIT}, at most {MAX_PAGE_SIZE})")
    parser.add_argument("--all", action="store_true", help="every matching job (follows all pages)")


def job_list_request(request: Message, args: argparse.Namespace) -> Message:
    """Fill a List*JobsRequest from the parsed filters (the server checks them again)."""
    if getattr(args, "state", ""):
        request.state = common_pb2.JobState.Value(f"JOB_STATE_{args.state.upper()}")
    for field, attr in (("dataset", "dataset"), ("architecture", "arch"), ("owner", "owner")):
        if getattr(args, attr, ""):
            setattr(request, field, getattr(args, attr))
    for field, attr in (("created_after", "since"), ("created_before", "until")):
        text = getattr(args, attr, "")
        if text:
            try:
                getattr(request, field).FromDatetime(datetime_from_iso(text))
            except ValueError:
                raise CliError(f"INVALID_ARGUMENT: --{attr} {text!r} is not an ISO 8601 date or time") from None
    if not 1 <= args.limit <= MAX_PAGE_SIZE:
        raise CliError(f"INVALID_ARGUMENT: --limit must be in [1, {MAX_PAGE_SIZE}], got {args.limit}")
    request.page_size = MAX_PAGE_SIZE if args.all else args.limit
    return request


def list_pages(ctx: Ctx, call: Callable[..., Any], request: Message, args: argparse.Namespace) -> list[Any]:
    """One page (or every page with --all) of jobs; a note when more match than were shown."""
    jobs: list[Any] = []
    while True:
        response = call(request, timeout=30)
        jobs += list(response.jobs)
        if not response.next_page_token:
            return jobs
        if not args.all:
            ctx.note(f"the newest {len(jobs)} shown; more match (--all, or narrow with --state/--since)")
            return jobs
        request.page_token = response.next_page_token
