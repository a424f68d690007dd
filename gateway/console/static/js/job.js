// One training job: live loss and metric curves over SSE (the stream replays the history first, so a
// reload draws the same curve), the epoch table, control buttons, checkpoints, evaluation, registering.

import * as api from "./api.js";
import { lineChart } from "./charts.js";
import {
  act, describe, el, errorSlot, fmt, metricMap, saveBlob, stateBadge, stateName, table, when, writeButton,
} from "./ui.js";

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "STOPPED"]);
const ACTIVE = new Set(["QUEUED", "RUNNING", "STOPPING"]);

export async function jobPage(page, jobId) {
  const base = `/v1/training-jobs/${encodeURIComponent(jobId)}`;
  let { job } = await api.get(base);
  const epochs = new Map(); // epoch number -> EpochMetrics (a replayed history overwrites, never duplicates)
  let metricNames = null;
  let controller = null;
  let closed = false;

  const summary = el("dl", { class: "kv", "data-testid": "job-summary" });
  const log = el("ul", { class: "muted", "data-testid": "state-log" });
  const lossBox = el("div", { class: "chart", "data-testid": "loss-chart", "data-points": "0" });
  const metricBox = el("div", { class: "chart", "data-testid": "metric-chart", "data-points": "0" });
  const epochTable = el("div", { "data-testid": "epoch-table" });
  const controlsError = errorSlot("controls-error");
  const streamError = errorSlot("stream-error");
  const epochsInput = el("input", { type: "number", min: "1", step: "1", value: String(job.epochs || 1),
    "data-testid": "epochs-input", style: "width:6rem" });
  const control = (label, testid, action) => writeButton(label, (event) => act(event.target, controlsError,
    async () => { job = (await action()).job || job; showJob(); follow(); }), { "data-testid": testid });
  const buttons = {
    update: control("Change epochs", "update-epochs", () => api.patch(base, { epochs: Number(epochsInput.value) })),
    stop: control("Stop", "stop-job", () => api.post(`${base}:stop`)),
    resume: control("Resume", "resume-job", () => api.post(`${base}:resume`,
      Number(epochsInput.value) > (job.epochs || 0) ? { epochs: Number(epochsInput.value) } : {})),
    cancel: control("Cancel", "cancel-job", () => api.post(`${base}:cancel`)),
  };
  const checkpoints = el("div", { "data-testid": "checkpoints" });
  const evaluation = el("div", { "data-testid": "evaluation" });
  const evalError = errorSlot("evaluation-error");
  const registerName = el("input", { placeholder: "model name", "data-testid": "register-name" });
  const registerError = errorSlot("register-error");
  const registerButton = writeButton("Register best epoch", (event) => act(event.target, registerError, async () => {
    const { modelVersion } = await api.post("/v1/models", { name: registerName.value.trim(), source: { jobId } });
    registerError.replaceChildren(el("span", { class: "ok" },
      `registered ${modelVersion.name} version ${modelVersion.version}`));
  }), { "data-testid": "register-model" });
  const evalButton = writeButton("Evaluate on the test split", (event) => act(event.target, evalError, () => evaluate()),
    { "data-testid": "evaluate" });

  page.replaceChildren(
    el("section", {}, el("h2", {}, `Training job ${job.displayName || jobId}`), summary,
      buttons.update ? el("div", { class: "actions", "data-testid": "job-controls" },
        el("label", {}, "epochs ", epochsInput), buttons.update, buttons.stop, buttons.resume, buttons.cancel) : null,
      controlsError, log),
    el("section", {}, el("h2", {}, "Curves"), el("div", { class: "charts" }, lossBox, metricBox), streamError,
      el("h3", {}, "Epochs"), epochTable),
    el("section", {}, el("h2", {}, "Checkpoints"), checkpoints),
    ...(evalButton ? [el("section", {}, el("h2", {}, "Evaluation and registry"),
      el("div", { class: "actions" }, evalButton, registerName, registerButton),
      evalError, registerError, evaluation)] : []));

  const loss = lineChart(lossBox, "loss", "epoch", ["train loss", "validation loss"]);
  let metricChart = null;

  function showJob() {
    const state = stateName(job.state);
    summary.replaceChildren(
      el("dt", {}, "state"), el("dd", {}, stateBadge(job.state)),
      el("dt", {}, "job id"), el("dd", {}, job.jobId),
      el("dt", {}, "architecture"), el("dd", {}, job.architecture),
      el("dt", {}, "dataset"), el("dd", {}, job.dataset),
      el("dt", {}, "device"), el("dd", {}, job.device || ""),
      el("dt", {}, "epochs"), el("dd", { "data-testid": "epochs-done" }, `${job.epochsDone || 0} / ${job.epochs || 0}`),
      el("dt", {}, "best epoch"), el("dd", {}, String(job.bestEpoch || "")),
      el("dt", {}, "hyper-parameters"), el("dd", { class: "wrap" }, Object.entries(job.hyperParameters || {})
        .sort().map(([k, v]) => `${k}=${v}`).join("  ")),
      ...(job.error ? [el("dt", {}, "error"), el("dd", { class: "error" }, job.error)] : []));
    if (buttons.stop) {
      buttons.stop.disabled = !["QUEUED", "RUNNING"].includes(state);
      buttons.cancel.disabled = !ACTIVE.has(state);
      buttons.resume.disabled = !["STOPPED", "FAILED", "CANCELLED", "SUCCEEDED"].includes(state);
      buttons.update.disabled = !ACTIVE.has(state);
    }
    if (evalButton) evalButton.disabled = !(job.epochsDone > 0);
  }

  function drawEpochs() {
    const rows = [...epochs.values()].sort((a, b) => a.epoch - b.epoch);
    const x = rows.map((r) => r.epoch);
    loss.update(x, [rows.map((r) => r.trainLoss ?? null), rows.map((r) => r.valLoss ?? null)]);
    lossBox.dataset.points = String(rows.length);
    if (!metricNames && rows.length) {
      metricNames = Object.keys(metricMap(rows[0].metrics));
      const curves = metricNames.filter((n) => n !== "n"); // the window count is a column, not a curve
      if (curves.length) metricChart = { names: curves, chart: lineChart(metricBox, "validation metrics", "epoch", curves) };
    }
    if (metricChart) {
      metricChart.chart.update(x, metricChart.names.map((n) => rows.map((r) => metricMap(r.metrics)[n] ?? null)));
      metricBox.dataset.points = String(rows.length);
    }
    epochTable.replaceChildren(table(["epoch", "train loss", "val loss", ...(metricNames || []), "lr", "samples/s",
      "elapsed s", "ETA s"], rows.map((r) => [r.epoch, r.trainLoss ?? 0, r.valLoss ?? 0,
      ...(metricNames || []).map((n) => metricMap(r.metrics)[n] ?? ""), r.learningRate ?? 0, r.samplesPerS ?? 0,
      r.elapsedS ?? 0, r.etaS ?? 0]), { "data-testid": "epochs" }));
  }

  async function refresh() {
    ({ job } = await api.get(base));
    showJob();
    await listCheckpoints();
  }

  function follow() {
    if (controller || closed) return; // one stream at a time; it ends by itself on a terminal state
    controller = new AbortController();
    const mine = controller;
    streamError.show(null);
    api.stream(`${base}:progress`, (message) => {
      if (message.epoch) {
        epochs.set(message.epoch.epoch, message.epoch);
        drawEpochs();
        job.epochsDone = Math.max(job.epochsDone || 0, message.epoch.epoch);
        showJob();
      } else if (message.stateChange) {
        const change = message.stateChange;
        log.append(el("li", {}, `${when(change.time)} ${stateName(change.state)} ${change.message || ""}`));
        refresh().catch((err) => controlsError.show(err));
      }
    }, mine.signal).then(() => refresh()).catch((err) => {
      if (err.name !== "AbortError") streamError.show(err);
    }).finally(() => {
      if (controller === mine) controller = null;
      if (!closed && ACTIVE.has(stateName(job.state))) setTimeout(follow, 1000); // resumed meanwhile
    });
    log.replaceChildren();
  }

  async function listCheckpoints() {
    const { checkpoints: list = [] } = await api.listAll(`${base}/checkpoints`, "checkpoints");
    const slot = errorSlot("checkpoint-error");
    checkpoints.replaceChildren(table(["epoch", "val loss", "size", "saved", ""], list.map((c) => [c.epoch,
      c.valLoss ?? 0, `${(Number(c.sizeBytes || 0) / 1e6).toFixed(2)} MB`, when(c.createTime),
      el("button", { type: "button", class: "secondary", "data-testid": `download-${c.epoch}`,
        onclick: (event) => act(event.target, slot, async () => saveBlob(
          await api.downloadBlob(`${base}/checkpoints/${c.epoch}:download`), `${jobId}-epoch-${c.epoch}.pt`)) },
      "download state_dict")])), slot);
  }

  async function evaluate() {
    const result = await api.post("/v1/evaluations", { checkpoint: { jobId }, dataset: job.dataset, split: "test" });
    const images = await Promise.all((result.artifactKeys || []).map(async (key) => {
      const relative = key.slice(key.indexOf("/eval/") + 1);
      const blob = await api.downloadBlob(`${base}/artifacts/${relative}`, "image/png");
      return el("img", { class: "plot", alt: relative, src: URL.createObjectURL(blob) });
    }));
    evaluation.replaceChildren(
      el("p", {}, `${result.windows} test windows · ${(result.metrics || []).filter((m) => m.value !== undefined)
        .map((m) => `${m.name} ${fmt(m.value)}`).join(" · ")}`), ...images);
  }

  showJob();
  await listCheckpoints();
  follow();
  return () => { closed = true; controller?.abort(); };
}

export { TERMINAL, describe };
