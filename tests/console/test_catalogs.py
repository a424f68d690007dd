"""The console's Catalogs page in headless Chromium: an annotation job run through the real services on a small
synthetic archive, listed with its progress; its events table, map and files match the stored catalog; the
evaluation form shows the server's refusal next to it, then precision, recall and the two plots."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from quakestack.v1 import catalog_pb2_grpc
from tests.catalog.annotation_helpers import (
    annotation_request,
    cancelled_job,
    picker_weights,
    register,
    small_archive,
    state,
    wait_job,
)
from tests.console.browser import console_page, screenshot
from tests.console.test_console import RW, browser, gateway, sign_in  # noqa: F401 - module fixtures reused
from tests.gateway.helpers import http

PICKER = "console-cat-picker"


@pytest.fixture(scope="module")
def small(store, metadata, tmp_path_factory) -> dict:
    """The 10-minute synthetic network and an untrained picker (quick: no training)."""
    return small_archive(store, metadata, tmp_path_factory.mktemp("console-cat"), "archives/console-cat",
                         "console-cat-untrained")


def test_a_cancelled_job_is_listed_without_a_catalog(store, data_channel, gateway, small, browser) -> None:  # noqa: F811
    job_id = cancelled_job(catalog_pb2_grpc.CatalogServiceStub(data_channel), small, "console-cat-untrained")
    with console_page(browser, gateway.url) as (page, _log):
        sign_in(page, RW, "readwrite")
        page.goto("/console/#/catalogs")
        row = page.locator("[data-testid=annotation-jobs] tr", has_text=job_id)
        row.wait_for()
        assert "CANCELLED" in row.inner_text() and "console-cat-untrained" in row.inner_text()
        page.click(f"a[href='#/catalogs/{job_id}']")
        page.wait_for_selector("[data-testid=catalog-job]")
        assert page.inner_text("[data-testid=catalog-job] [data-testid=job-state]") == "CANCELLED"
        assert page.locator("[data-testid=catalog-events]").count() == 0  # no catalog, no evaluation form
        assert page.locator("[data-testid=evaluation-form]").count() == 0
        assert "null" not in page.inner_text("main") and "undefined" not in page.inner_text("main")


@pytest.fixture(scope="module")
def catalog_job(store, metadata, data_channel, small) -> Iterator[dict]:
    """A finished annotation job over the small network, picked by a briefly trained picker (minutes: slow)."""
    archive = small
    register(store, metadata, PICKER, picker_weights(8))
    stub = catalog_pb2_grpc.CatalogServiceStub(data_channel)
    job = stub.CreateAnnotationJob(annotation_request(archive, PICKER), timeout=60).job
    done = wait_job(stub, job.job_id, lambda j: state(j) == "SUCCEEDED", 300)
    yield {"archive": archive, "job": done}


@pytest.mark.slow
def test_catalogs_page_lists_shows_and_evaluates(stack, store, gateway, catalog_job, browser, tmp_path: Path) -> None:  # noqa: F811
    job, archive = catalog_job["job"], catalog_job["archive"]
    job_id = job.job_id
    with console_page(browser, gateway.url) as (page, log):
        sign_in(page, RW, "readwrite")
        page.goto("/console/#/catalogs")
        row = page.locator("[data-testid=annotation-jobs] tr", has_text=job_id)
        row.wait_for()
        text = row.inner_text()
        total = job.progress.station_days_total
        assert "SUCCEEDED" in text and f"{total} / {total}" in text and PICKER in text, text
        assert f"\t{job.progress.picks}\t{job.events}\t" in text, text  # the picks the CLI's list shows
        page.click(f"a[href='#/catalogs/{job_id}']")
        page.wait_for_selector("[data-testid=catalog-job]")
        assert page.inner_text("[data-testid=station-days]") == f"{total} / {total}"
        assert page.inner_text("[data-testid=event-count]") == str(job.events)
        events_csv = store.get_bytes(f"catalogs/{job_id}/events.csv").decode()
        stored = events_csv.strip().splitlines()[1:]
        assert len(stored) == job.events >= 1, (job, events_csv)
        page.wait_for_selector("[data-testid=catalog-events] tbody tr")
        assert page.locator("[data-testid=catalog-events] tbody tr").count() == job.events
        first = page.locator("[data-testid=catalog-events] tbody tr").first.inner_text()
        assert stored[0].split(",")[1] in first, (first, stored[0])
        latitude, longitude = stored[0].split(",")[2:4]  # as stored (5 decimals), once shown as "48"
        assert latitude in first and longitude in first, (first, stored[0])
        assert page.get_attribute("[data-testid=catalog-map]", "data-points") == str(job.events)
        assert page.locator("[data-testid=catalog-map] circle.event").count() == job.events
        for format_name, key in (("events_csv", "events.csv"), ("picks_csv", "picks.csv"),
                                 ("all_picks_csv", "all_picks.csv"), ("quakeml", "catalog.xml")):
            with page.expect_download() as download:
                page.click(f"[data-testid=download-{format_name}]")
            assert Path(download.value.path()).read_bytes() == store.get_bytes(f"catalogs/{job_id}/{key}"), key

        evaluate = f"/v1/catalogs/{job_id}:evaluate"
        log.expect(404, evaluate)  # a reference that does not exist: the server's message next to the form
        page.fill("[data-testid=eval-reference]", "archives/console-cat/no-such.xml")
        page.click("[data-testid=eval-run]")
        page.wait_for_function("() => document.querySelector('[data-testid=eval-error]').textContent.length > 0")
        assert "no-such.xml" in page.inner_text("[data-testid=eval-error]")
        page.fill("[data-testid=eval-reference]", archive["truth_key"])
        page.click("[data-testid=eval-run]")
        page.wait_for_selector("[data-testid=evaluation] img.plot", timeout=60_000)
        assert page.inner_text("[data-testid=eval-error]") == ""
        page.wait_for_function("() => [...document.querySelectorAll('[data-testid=evaluation] img')]"
                               ".every(i => i.complete && i.naturalWidth > 0)")
        assert sorted(page.locator("[data-testid=evaluation] img").evaluate_all("l => l.map(i => i.alt)")) == \
            ["event_map.png", "magnitudes.png"]
        body = json.dumps({"reference": {"objectKey": archive["truth_key"]}}).encode()
        answer = http("POST", gateway.url + evaluate, body,
                      {"Authorization": f"Bearer {RW}", "Content-Type": "application/json"}).json()
        figures = page.locator("[data-testid=evaluation-figures] tbody td").all_inner_texts()
        assert int(figures[2]) == int(answer.get("matched", 0)) and float(figures[4]) == pytest.approx(
            answer.get("recall", 0), abs=1e-3), (figures, answer)
        screenshot(page, "catalog")
