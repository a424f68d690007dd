"""The web console in headless Chromium against the real stack, behind a gateway with tokens.

Start a training job from the generated form (client-side range check, the server's INVALID_ARGUMENT
next to its field), watch epochs arrive on the live curve, stop, reload, resume, finish; a read-only
token sees no write button and the API refuses its write anyway; annotate an uploaded miniSEED file.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import obspy
import pytest
import torch
from playwright.sync_api import sync_playwright

from quakestack.data.synthetic import write_continuous
from quakestack.jobs.spec import JobRecord, new_job_id
from quakestack.metadata.datasets import DatasetCatalog
from quakestack.metadata.jobs import JobStore
from quakestack.model_store import ModelStore
from quakestack.models.zoo import build_model
from quakestack.protoconv import iso_from_seconds
from quakestack.stack import Stack
from quakestack.training.jobs import build_spec
from tests.console.browser import console_page, launch, screenshot
from tests.datasets import publish_synthetic_dataset
from tests.gateway.helpers import GatewayProcess, http
from tests.helpers import wait_for
from tests.inference.detector import HPARAMS, p_arrivals, train_detector
from tests.inference.helpers import TINY_MAGNITUDE, register

RW, RO, ADMIN = "console-rw-5ecret-1", "console-ro-5ecret-2", "console-admin-5ecret-3"
DATASET = "console-small"
EPOCHS = 40  # ~0.2 s each on 2 cores: the job still runs when the page has drawn two epochs and Stop is clicked
FAST_HP = {"n_samples": "3000", "learning_rate": "0.01", "batch_size": "32", "epochs": str(EPOCHS)}


@pytest.fixture(scope="module")
def gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    state = tmp_path_factory.mktemp("console-gateway")
    tokens = f"{RW},{RO}:ro,{ADMIN}:admin"
    with GatewayProcess(stack.settings, state / "gateway.log", QUAKESTACK_API_TOKENS=tokens) as process:
        yield process


@pytest.fixture(scope="module")
def dataset(store, metadata, tmp_path_factory) -> str:
    publish_synthetic_dataset(store, metadata, DATASET, tmp_path_factory.mktemp("console-data"), n_events=120,
                              n_noise=12, seed=3, length_s=60.0)
    return DATASET


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


def sign_in(page, token: str, role: str) -> None:
    if not page.url.endswith("/console/"):
        page.goto("/console/")
    page.wait_for_selector("#token-dialog[open]")
    page.fill("#token-input", token)
    page.click("#token-submit")
    page.wait_for_function("r => document.body.dataset.role === r", arg=role)


def wait_points(page, at_least: int, exactly: bool = False, timeout_s: float = 30) -> None:
    """Until the live loss curve holds `at_least` (or exactly that many) epochs."""
    page.wait_for_function("([n, exact]) => { const c = document.querySelector('[data-testid=loss-chart]');"
                           " const p = c ? +c.dataset.points : 0; return exact ? p === n : p >= n; }",
                           arg=[at_least, exactly], timeout=timeout_s * 1000)


def wait_state(page, state: str, timeout_s: float = 60) -> None:
    page.wait_for_function("s => document.querySelector('[data-testid=job-state]')?.textContent === s", arg=state,
                           timeout=timeout_s * 1000)


def job_state(stack: Stack, job_id: str) -> dict:
    reply = http("GET", f"{stack.endpoints().gateway}/v1/training-jobs/{job_id}")
    assert reply.status == 200, reply.body
    return reply.json()["job"]


def test_train_from_the_form_watch_stop_resume_finish(stack: Stack, gateway: GatewayProcess, dataset: str,
                                                      browser) -> None:
    with console_page(browser, gateway.url) as (page, log):
        sign_in(page, RW, "readwrite")
        assert "readwrite" in page.inner_text("[data-testid=who]")
        page.goto("/console/#/datasets")
        page.click(f"a[href='#/datasets/{DATASET}']")
        page.wait_for_selector("[data-testid=magnitude-histogram] canvas")
        assert "train" in page.inner_text("[data-testid=split-table]")
        # example windows of the dataset, each component drawn, with P and S marked where the labels have them
        page.wait_for_selector("[data-testid=dataset-samples] .trace canvas")
        sampled = http("GET", f"{gateway.url}/v1/datasets/{DATASET}:sample?count=3",
                       headers={"Authorization": f"Bearer {RW}"}).json()
        traces = page.locator("[data-testid=dataset-samples] .trace")
        assert traces.count() == 3 * len(sampled["labels"]) == 9
        for w, label in enumerate(sampled["labels"]):
            phases = traces.nth(3 * w).get_attribute("data-phases")
            assert phases == ("P" if "pArrivalSample" in label else "") + ("S" if "sArrivalSample" in label else "")
        screenshot(page, "dataset")

        page.goto("/console/#/training")
        form = page.wait_for_selector("[data-testid=training-form]")
        page.select_option("#f-dataset", DATASET)
        page.select_option("#f-architecture", "convnetquake_ingv")
        page.wait_for_selector("#hp-n_layers")
        # every hyper-parameter of ListArchitectures has its field, with its default
        catalog = http("GET", gateway.url + "/v1/architectures", headers={"Authorization": f"Bearer {RW}"}).json()
        arch = next(a for a in catalog["architectures"] if a["name"] == "convnetquake_ingv")
        for hp in arch["hyperParameters"] + catalog["trainingHyperParameters"]:
            assert page.is_visible(f"#hp-{hp['name']}"), hp["name"]
        assert page.input_value("#hp-channels") == "32"

        def jobs_on_dataset() -> int:
            listed = http("GET", f"{stack.endpoints().gateway}/v1/training-jobs?pageSize=100000").json()
            return sum(1 for j in listed.get("jobs", []) if j["dataset"] == DATASET)

        jobs_before = jobs_on_dataset()
        page.fill("#hp-epochs", "0")  # out of range: refused in the page, nothing reaches the server
        page.click("[data-testid=start-training]")
        epochs_spec = next(h for h in catalog["trainingHyperParameters"] if h["name"] == "epochs")
        assert f"epochs must be in [1, {epochs_spec['maximum']:g}], got 0" in page.inner_text("[data-error-for=epochs]")
        assert page.locator("[data-field=epochs].invalid").count() == 1
        assert jobs_on_dataset() == jobs_before

        for name, value in FAST_HP.items():
            if name == "n_samples":
                page.select_option(f"#hp-{name}", value)
            else:
                page.fill(f"#hp-{name}", value)
        assert page.inner_text("[data-error-for=epochs]") == ""
        page.fill("#f-device", "tpu")  # only the server knows devices: its INVALID_ARGUMENT lands next to the field
        log.expect(400, "/v1/training-jobs")
        page.click("[data-testid=start-training]")
        page.wait_for_function("() => document.querySelector('[data-error-for=device]').textContent.length > 0")
        assert "INVALID_ARGUMENT" in page.inner_text("[data-error-for=device]")
        assert "tpu" in page.inner_text("[data-error-for=device]")
        screenshot(page, "training-form")

        page.fill("#f-device", "cpu")
        page.fill("#f-display_name", "console test")
        page.click("[data-testid=start-training]")
        page.wait_for_url("**/console/#/training/jobs/*")
        job_id = page.url.rsplit("/", 1)[-1]
        del form

        # at least two epochs arrive on the live curve while the job still runs
        wait_points(page, 2, timeout_s=120)
        job = job_state(stack, job_id)
        assert job["state"] == "JOB_STATE_RUNNING" and job.get("epochsDone", 0) < EPOCHS, job
        assert page.locator("[data-testid=loss-chart] canvas").count() == 1
        screenshot(page, "training-live")
        page.fill("[data-testid=epochs-input]", str(EPOCHS + 4))  # change the epoch count while it runs
        page.click("[data-testid=update-epochs]")
        assert wait_for(lambda: job_state(stack, job_id)["epochs"] == EPOCHS + 4, 10)
        page.click("[data-testid=stop-job]")
        wait_state(page, "STOPPED")
        stopped = job_state(stack, job_id)
        assert stopped["state"] == "JOB_STATE_STOPPED" and stopped.get("epochsDone", 0) < EPOCHS, stopped
        assert page.inner_text("[data-testid=epochs-done]").endswith(f"/ {EPOCHS + 4}")
        done = int(stopped.get("epochsDone", 0))
        wait_points(page, done, exactly=True)

        page.reload()  # the curve survives a reload: the stream replays the history first
        wait_points(page, done, exactly=True)
        assert page.inner_text("[data-testid=job-state]") == "STOPPED"
        assert page.locator("[data-testid=epochs] tbody tr").count() == done

        page.click("[data-testid=resume-job]")
        wait_state(page, "SUCCEEDED", timeout_s=120)
        wait_points(page, EPOCHS + 4, exactly=True)
        assert page.locator("[data-testid=epochs] tbody tr").count() == EPOCHS + 4
        assert job_state(stack, job_id)["state"] == "JOB_STATE_SUCCEEDED"
        page.wait_for_selector("[data-testid=download-1]")
        page.screenshot(path=str(screenshot(page, "training-done").with_name("console.png")))  # the README's image

        with page.expect_download() as download:  # a checkpoint through the page loads as a plain state_dict
            page.click("[data-testid=download-1]")
        state = torch.load(download.value.path(), weights_only=True)
        assert state and all(isinstance(v, torch.Tensor) for v in state.values())
        page.click("[data-testid=evaluate]")
        page.wait_for_selector("[data-testid=evaluation] img.plot", timeout=60_000)
        assert "rmse" in page.inner_text("[data-testid=evaluation]")
        page.wait_for_function("() => [...document.querySelectorAll('[data-testid=evaluation] img')]"
                               ".every(i => i.complete && i.naturalWidth > 0)")
        screenshot(page, "evaluation")

        page.fill("[data-testid=epochs-input]", str(EPOCHS + 200))  # resume with more epochs, then cancel it
        page.click("[data-testid=resume-job]")
        wait_points(page, EPOCHS + 5, timeout_s=60)
        page.click("[data-testid=cancel-job]")
        wait_state(page, "CANCELLED")
        cancelled = job_state(stack, job_id)
        assert cancelled["state"] == "JOB_STATE_CANCELLED" and cancelled["epochs"] == EPOCHS + 200, cancelled
        assert cancelled["epochsDone"] < EPOCHS + 200

        page.fill("[data-testid=register-name]", "console-mag")
        page.click("[data-testid=register-model]")
        page.wait_for_selector("text=registered console-mag version 1")
        page.goto("/console/#/models")
        page.wait_for_selector("[data-testid=model-console-mag]")
        page.fill("[data-testid=alias-name-console-mag]", "staging")
        page.click("[data-testid=set-alias-console-mag]")
        page.wait_for_selector("[data-testid=model-console-mag] >> text=staging → 1")
        screenshot(page, "models")
        page.check("[data-testid=compare-console-mag-1]")  # evaluate versions side by side on a dataset split
        page.click("[data-testid=compare-run]")
        page.wait_for_selector("[data-testid=compare-table] >> text=console-mag@1", timeout=60_000)
        assert "rmse" in page.inner_text("[data-testid=compare-table]")


def test_read_only_token_sees_no_write_buttons_and_the_api_refuses(stack: Stack, gateway: GatewayProcess,
                                                                   dataset: str, browser) -> None:
    with console_page(browser, gateway.url) as (page, log):
        page.goto("/console/")
        page.wait_for_selector("#token-dialog[open]")
        log.expect(401, "/v1/whoami")
        page.fill("#token-input", "not-a-token")  # a wrong token: the dialog says why and asks again
        page.click("#token-submit")
        page.wait_for_function("() => document.getElementById('token-error').textContent.includes('invalid')")
        assert "UNAUTHENTICATED" in page.inner_text("#token-error")
        sign_in(page, RO, "readonly")
        assert "readonly" in page.inner_text("[data-testid=who]")
        jobs = http("GET", gateway.url + "/v1/training-jobs", headers={"Authorization": f"Bearer {RO}"}).json()
        for view in ("#/training", "#/models", "#/annotate", "#/catalogs", "#/datasets"):
            page.goto(f"/console/{view}")
            page.wait_for_selector("main section")
            assert page.locator("button.write").count() == 0, view
            assert page.locator("[data-testid=training-form]").count() == 0
        if jobs.get("jobs"):
            page.goto(f"/console/#/training/jobs/{jobs['jobs'][0]['jobId']}")
            page.wait_for_selector("[data-testid=job-state]")
            assert page.locator("button.write").count() == 0
            assert page.locator("[data-testid=job-controls]").count() == 0
            assert "null" not in page.inner_text("main")
        screenshot(page, "read-only")
        # the page shows no button, and the API refuses the write anyway, from the page's own origin
        log.expect(403, "/v1/training-jobs")
        refused = page.evaluate("""async ([token, dataset]) => {
            const r = await fetch('/v1/training-jobs', {method: 'POST', headers: {
                'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'},
                body: JSON.stringify({dataset, architecture: 'convnetquake_ingv'})});
            return {status: r.status, body: await r.json()};
        }""", [RO, dataset])
        assert refused["status"] == 403 and refused["body"]["code"] == "PERMISSION_DENIED", refused


@pytest.fixture(scope="module")
def detector_model(store, metadata, tmp_path_factory) -> str:
    """A ConvNetQuake detector trained in-process on synthetic continuous data, registered as 'console-detector'."""
    weights = train_detector(str(tmp_path_factory.mktemp("console-detector")))
    model, _, _ = build_model("convnetquake", HPARAMS)
    model.load_state_dict(torch.load(io.BytesIO(weights), weights_only=True))
    registry = ModelStore(store, metadata)
    register(registry, "console-detector", "convnetquake", HPARAMS, model=model)
    register(registry, "console-onset-mag", "convnetquake_ingv", TINY_MAGNITUDE, p_offset_s=2.0)
    return "console-detector"


@pytest.mark.flaky(reruns=2, reruns_delay=2)  # timing-sensitive on 2 shared cores; seen once in a full run
def test_annotate_an_uploaded_miniseed_file(stack: Stack, gateway: GatewayProcess, detector_model: str, browser,
                                            tmp_path: Path) -> None:
    paths, _, truth = write_continuous(str(tmp_path / "day"), seed=7, duration_s=900, n_events=3)
    mseed = Path(paths[0])
    with console_page(browser, gateway.url) as (page, log):  # loading is the admin's (the API's roles)
        sign_in(page, RW, "readwrite")
        page.goto("/console/#/models")
        page.wait_for_selector(f"[data-testid=model-{detector_model}]")
        assert page.locator(f"[data-testid=load-{detector_model}-1]").count() == 0
    with console_page(browser, gateway.url) as (page, log):
        sign_in(page, ADMIN, "admin")
        page.goto("/console/#/models")
        page.fill(f"[data-testid=load-device-{detector_model}]", "cpu")
        page.click(f"[data-testid=load-{detector_model}-1]")  # load it into the inference service from the page
        page.wait_for_selector(f"[data-testid=loaded-table] >> text={detector_model}", timeout=60_000)
        row = page.locator("[data-testid=loaded-table] tr", has_text=detector_model).inner_text()
        assert "cpu" in row, row  # what is resident on which device
        page.click("[data-testid=load-console-onset-mag-1]")
        page.wait_for_selector("[data-testid=unload-console-onset-mag]", timeout=60_000)
        page.goto("/console/#/annotate")
        page.wait_for_selector("[data-testid=annotate-run]")
        page.set_input_files("[data-testid=annotate-file]", str(mseed))
        page.select_option("[data-testid=annotate-model]", detector_model)
        page.select_option("[data-testid=annotate-magnitude]", "console-onset-mag")
        page.click("[data-testid=annotate-run]")
        page.wait_for_selector("[data-testid=detections] tbody tr", timeout=120_000)
        listed = page.locator("[data-testid=detections] tbody tr").count()
        status = page.inner_text("[data-testid=annotate-status]")
        assert f"{listed} detections" in status
        station = page.locator("[data-testid=annotate-inputs] tbody tr").inner_text()  # the gate's verdict
        assert station.split("\t")[:3] == [obspy.read(str(mseed))[0].id.rsplit(".", 1)[0], "used", "ZNE"], station
        assert page.input_value("[data-testid=annotate-max-upsampling]") == "2.5"  # the defaults, shown
        assert page.input_value("[data-testid=annotate-missing-components]") == "refuse"
        magnitudes = page.locator("[data-testid=detections] tbody tr td:nth-child(6)").all_inner_texts()
        assert len(magnitudes) == listed and all(float(m) == float(m) for m in magnitudes), magnitudes
        # the file's three components, read in the page, drawn with the detections on them
        page.wait_for_selector("[data-testid=waveforms] .trace canvas")
        drawn = {t.get_attribute("data-id"): int(t.get_attribute("data-samples"))
                 for t in page.query_selector_all("[data-testid=waveforms] .trace")}
        assert drawn == {tr.id: tr.stats.npts for tr in obspy.read(str(mseed))}, drawn
        assert len(drawn) == 3
        screenshot(page, "annotate")
        # the same file through the API directly: the page listed exactly what the service found
        headers = {"Authorization": f"Bearer {RW}"}
        uploaded = http("POST", gateway.url + f"/v1/uploads?filename={mseed.name}", mseed.read_bytes(),
                        {**headers, "Content-Type": "application/octet-stream"}).json()
        answer = http("POST", gateway.url + f"/v1/loaded-models/{detector_model}:annotate-file",
                      json.dumps({"file": {"objectKey": uploaded["objectKey"]}, "threshold": 0.5,
                                  "magnitudeModel": "console-onset-mag"}).encode(),
                      {**headers, "Content-Type": "application/json"}).json()
        detections = answer.get("detections", [])
        assert listed == len(detections) >= 1, answer
        expected = [d["magnitude"] for d in sorted(detections, key=lambda d: d["startTime"])]
        assert np.allclose([float(m) for m in magnitudes], expected, rtol=5e-3, atol=1e-3), (magnitudes, expected)
        arrivals = p_arrivals(truth)  # and what it found are the file's real events
        peaks = [(d["station"], datetime.fromisoformat(d["peakTime"].replace("Z", "+00:00")).timestamp())
                 for d in detections]
        assert any(abs(peak - p) < 10 for station, peak in peaks for p in arrivals.get(station, [])), (peaks, arrivals)
        page.goto("/console/#/models")
        for name in (detector_model, "console-onset-mag"):
            page.click(f"[data-testid=unload-{name}]")
            page.wait_for_selector(f"[data-testid=unload-{name}]", state="detached")
        assert detector_model not in [m["name"] for m in http("GET", gateway.url + "/v1/loaded-models",
                                                              headers=headers).json().get("models", [])]


def test_whoami_without_tokens_is_anonymous(stack: Stack) -> None:
    reply = http("GET", stack.endpoints().gateway + "/v1/whoami")
    assert (reply.status, reply.json()) == (200, {"id": "anonymous", "role": "anonymous", "authEnabled": False})


def test_whoami_with_tokens(gateway: GatewayProcess) -> None:
    assert http("GET", gateway.url + "/v1/whoami").json() == {"id": "anonymous", "role": "anonymous",
                                                               "authEnabled": True}
    assert http("GET", gateway.url + "/v1/whoami", headers={"Authorization": "Bearer nope"}).status == 401
    ro = http("GET", gateway.url + "/v1/whoami", headers={"Authorization": f"Bearer {RO}"}).json()
    rw = http("GET", gateway.url + "/v1/whoami", headers={"Authorization": f"Bearer {RW}"}).json()
    assert ro["role"] == "readonly" and rw["role"] == "readwrite" and ro["authEnabled"] is True
    assert ro["id"] != rw["id"] and RO not in json.dumps(ro) and RW not in json.dumps(rw)


def test_console_files_are_served_safely(gateway: GatewayProcess) -> None:
    index = http("GET", gateway.url + "/console/")
    assert index.status == 200 and index.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in index.headers["content-security-policy"]
    assert b"http://" not in index.body and b"https://" not in index.body  # nothing from elsewhere
    assert http("GET", gateway.url + "/console/vendor/uPlot.iife.min.js").status == 200, \
        "uPlot missing: run scripts/setup.sh (npm ci copies it into gateway/console/static/vendor/)"
    assert http("GET", gateway.url + "/console").status in (200, 308)
    for bad in ("/console/../app.py", "/console/%2e%2e/console.py", "/console/.hidden", "/console/js/nope.js"):
        assert http("GET", gateway.url + bad).status == 404, bad
    assert http("POST", gateway.url + "/console/index.html", b"x").status == 405


READ_IN_PAGE = """async (b64) => {
    const { readMiniSeed } = await import('/console/js/mseed.js');
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return readMiniSeed(bytes.buffer).map((t) => {
        const all = t.segments.flatMap((s) => Array.from(s.data));
        return {id: t.id, rate: t.rate, start: t.segments[0].start, data: all};
    });
}"""


@pytest.mark.parametrize("encoding", ["STEIM2", "STEIM1", "INT32", "INT16", "FLOAT32", "FLOAT64"])
def test_page_reads_miniseed_as_obspy_does(gateway: GatewayProcess, browser, encoding: str) -> None:
    """The console's own miniSEED reader (it draws the annotated file) against ObsPy, per encoding."""
    rng = np.random.default_rng(1)
    dtype = {"INT16": np.int16, "FLOAT32": np.float32, "FLOAT64": np.float64}.get(encoding, np.int32)
    scale = 3000 if encoding == "INT16" else 2e6
    stream = obspy.Stream()
    for channel in ("HHZ", "HHN"):
        data = np.cumsum(rng.normal(0, scale / 50, 5000)).clip(-scale, scale).astype(dtype)
        data[100] = dtype(scale)  # a large jump: Steim's 32- and 30-bit differences
        stream += obspy.Trace(data, {"network": "XX", "station": "ST01", "location": "00", "channel": channel,
                                     "sampling_rate": 100.0, "starttime": obspy.UTCDateTime(2024, 3, 1, 12, 0, 0.25)})
    buffer = io.BytesIO()
    stream.write(buffer, format="MSEED", encoding=encoding, reclen=512)
    with console_page(browser, gateway.url) as (page, _log):
        page.goto("/console/")
        page.wait_for_selector("#token-dialog[open]")
        traces = page.evaluate(READ_IN_PAGE, base64.b64encode(buffer.getvalue()).decode())
    expected = obspy.read(io.BytesIO(buffer.getvalue())).merge()
    assert sorted(t["id"] for t in traces) == sorted(tr.id for tr in expected)
    for trace in traces:
        tr = expected.select(id=trace["id"])[0]
        assert trace["rate"] == tr.stats.sampling_rate
        assert abs(trace["start"] - tr.stats.starttime.timestamp) < 1e-4
        np.testing.assert_allclose(trace["data"], tr.data.astype(np.float64), rtol=1e-6)


def test_without_tokens_the_console_asks_for_none(stack: Stack, dataset: str, browser) -> None:
    """Auth off (the embedded stack on loopback): no token dialog, and the write controls are there."""
    with console_page(browser, stack.endpoints().gateway) as (page, _log):
        page.goto("/console/#/training")
        page.wait_for_selector("[data-testid=training-form]")
        assert page.inner_text("[data-testid=who]") == "no authentication (local)"
        assert not page.is_visible("#token-dialog") and not page.is_visible("#change-token")
        page.goto("/console/#/datasets")
        page.wait_for_selector(f"a[href='#/datasets/{dataset}']")


def test_a_page_that_loads_late_never_replaces_the_one_navigated_to(stack: Stack, dataset: str, browser) -> None:
    """The datasets list (the start page) is held back until the user has gone to Models and it has drawn:
    the late answer must not draw the datasets page over it (the router's race CI once hit)."""
    held: list = []
    with console_page(browser, stack.endpoints().gateway) as (page, _log):
        page.route("**/v1/datasets?*", lambda route: held.append(route))
        page.goto("/console/")
        page.wait_for_function("() => document.body.dataset.role !== undefined")
        assert wait_for(lambda: page.evaluate("1") and bool(held), 10, 0.05), "the start page asked for no list"
        page.goto("/console/#/models")
        page.wait_for_selector("h2:has-text('Registered models')")
        drawn = page.inner_text("#page")
        for route in held:
            route.continue_()
        page.wait_for_timeout(1000)  # the datasets answer arrives and its (superseded) page draws
        assert page.inner_text("#page") == drawn and location_hash(page) == "#/models"
        assert page.locator(f"a[href='#/datasets/{dataset}']").count() == 0


def location_hash(page) -> str:
    return page.evaluate("location.hash")


def finished_job_with_metrics(store, metadata, metrics_by_epoch: list[dict[str, float]]) -> str:
    """A finished training job whose epochs carry these validation metrics, written through the job store the
    services read (as an imported or long-finished job is): the page replays it from the stream."""
    spec = {**build_spec(store, DatasetCatalog(metadata), dataset=DATASET, architecture="convnetquake_ingv",
                         values={"n_samples": 3000, "epochs": len(metrics_by_epoch)}, device="cpu",
                         display_name="nan-metrics", gpu_count=0), "owner": "anonymous"}
    record = JobRecord(kind="training", version=1, job_id=new_job_id(), create_time=iso_from_seconds(time.time()),
                       spec=spec)
    events = [{"type": "state", "state": "QUEUED", "message": "created"},
              {"type": "state", "state": "RUNNING", "message": "worker started", "world_size": 1, "attempt": 1}]
    for epoch, metrics in enumerate(metrics_by_epoch, start=1):
        events.append({"type": "epoch", "epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.2 / epoch,
                       "metrics": metrics, "best_epoch": epoch, "learning_rate": 0.01, "elapsed_s": float(epoch),
                       "samples_per_s": 100.0, "eta_s": 0.0, "attempt": 1})
    events.append({"type": "state", "state": "SUCCEEDED", "message": "done", "attempt": 1})
    JobStore(metadata).create_many([(record, {"epochs": len(metrics_by_epoch), "attempt": 1}, events)])
    return record.job_id


def test_a_metric_curve_with_nan_epochs_is_drawn(stack: Stack, store, metadata, dataset: str, browser) -> None:
    """R² is NaN while the validation targets do not vary, and protobuf's JSON sends it as the string "NaN": the
    chart leaves a gap there and still draws every curve (it drew nothing at all when one value was NaN)."""
    nan, inf = float("nan"), float("inf")
    job_id = finished_job_with_metrics(store, metadata, [
        {"rmse": 0.9, "mae": 0.7, "r2": nan}, {"rmse": 0.7, "mae": 0.5, "r2": nan},
        {"rmse": inf, "mae": 0.4, "r2": 0.3}, {"rmse": 0.5, "mae": 0.35, "r2": 0.5},
        {"rmse": 0.4, "mae": 0.3, "r2": 0.6}])
    with console_page(browser, stack.endpoints().gateway) as (page, _log):
        page.goto(f"/console/#/training/jobs/{job_id}")
        page.wait_for_function("() => document.querySelector('[data-testid=metric-chart]')?.dataset.points === '5'")
        names = page.evaluate("() => [...document.querySelectorAll('[data-testid=metric-chart] .u-series th')]"
                              ".map((th) => th.textContent.trim()).slice(1)")
        assert sorted(names) == ["mae", "r2", "rmse"], names
        drawn = page.evaluate(COLOURED_PIXELS, ["[data-testid=metric-chart] canvas", CHART_COLOURS[:len(names)]])
        assert all(count > 20 for count in drawn), dict(zip(names, drawn, strict=True))
        assert "NaN" in page.inner_text("[data-testid=epochs]")  # the table says what the chart leaves out


CHART_COLOURS = [[0x1F, 0x6F, 0xEB], [0xD1, 0x24, 0x2F], [0x1A, 0x7F, 0x37]]  # charts.js COLORS, in series order
COLOURED_PIXELS = """([selector, colours]) => {
  const canvas = document.querySelector(selector);
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  return colours.map(([r, g, b]) => {
    let n = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      if (pixels[i + 3] > 200 && Math.abs(pixels[i] - r) < 12 && Math.abs(pixels[i + 1] - g) < 12
          && Math.abs(pixels[i + 2] - b) < 12) n += 1;
    }
    return n;
  });
}"""
