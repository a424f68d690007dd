// Annotate: upload a miniSEED file, pick a loaded detector (and optionally a magnitude model), and see the
// detections and picks the inference service finds, per station on a time axis and as a table.

import * as api from "./api.js";
import { waveform } from "./charts.js";
import { envelope, readMiniSeed } from "./mseed.js";
import { act, el, errorSlot, fmt, session, table, when } from "./ui.js";

export async function annotatePage(page) {
  const { models: loaded = [] } = await api.listAll("/v1/loaded-models", "models");
  if (!session.canWrite) {
    // AnnotateFile is a POST (and uploads are writes): a read-only token cannot annotate.
    page.replaceChildren(el("section", {}, el("h2", {}, "Annotate"),
      el("p", { class: "muted" }, "Annotating uploads a file: this token is read-only.")));
    return;
  }
  const task = (m) => String(m.task || "").replace("TASK_", "");
  const annotators = loaded.filter((m) => task(m) !== "MAGNITUDE");
  const magnitudes = loaded.filter((m) => task(m) === "MAGNITUDE");
  const file = el("input", { type: "file", accept: ".mseed,.miniseed,.ms,.sac", "data-testid": "annotate-file" });
  const model = el("select", { "data-testid": "annotate-model" },
    annotators.map((m) => el("option", { value: m.name }, `${m.name} v${m.version} (${task(m).toLowerCase()})`)));
  const magnitude = el("select", { "data-testid": "annotate-magnitude" }, el("option", { value: "" }, "none"),
    magnitudes.map((m) => el("option", { value: m.name }, `${m.name} v${m.version}`)));
  const threshold = el("input", { type: "number", min: "0", max: "1", step: "0.05", value: "0.5",
    "data-testid": "annotate-threshold" });
  // the data-quality gate's settings, defaults shown (InputPolicy): what may be done to a station's data
  const maxUpsampling = el("input", { type: "number", min: "1", step: "0.5", value: "2.5",
    "data-testid": "annotate-max-upsampling", title: "refuse a station upsampled by more than this factor" });
  const missing = el("select", { "data-testid": "annotate-missing-components" },
    el("option", { value: "refuse" }, "refuse"), el("option", { value: "zeros" }, "zeros (channel-dropout models)"));
  const slot = errorSlot("annotate-error");
  const status = el("p", { class: "muted", "data-testid": "annotate-status" });
  const results = el("div", { "data-testid": "annotate-results" });
  const traces = el("div", { "data-testid": "waveforms" });
  const run = el("button", { type: "button", class: "write", "data-testid": "annotate-run" }, "Upload and annotate");
  run.addEventListener("click", () => act(run, slot, async () => {
    const chosen = file.files[0];
    if (!chosen) throw new Error("choose a miniSEED file first");
    const t = Number(threshold.value);
    if (!(t >= 0 && t <= 1)) throw new Error("threshold must be in [0, 1]");
    if (!model.value) throw new Error("load a detector, classifier or picker first (Models page)");
    status.textContent = `uploading ${chosen.name} (${(chosen.size / 1e6).toFixed(2)} MB)…`;
    const uploaded = await api.upload(chosen);
    status.textContent = `annotating ${uploaded.objectKey} with ${model.value}…`;
    const answer = await api.post(`/v1/loaded-models/${encodeURIComponent(model.value)}:annotate-file`, {
      file: { objectKey: uploaded.objectKey }, threshold: t, magnitudeModel: magnitude.value || undefined,
      inputPolicy: { maxUpsampling: Number(maxUpsampling.value), missingComponents: missing.value } });
    status.textContent = `${chosen.name}: ${(answer.detections || []).length} detections, `
      + `${(answer.picks || []).length} picks`;
    show(results, answer);
    await drawTraces(traces, chosen, answer);
  }));
  page.replaceChildren(el("section", {}, el("h2", {}, "Annotate a miniSEED file"),
    el("div", { class: "actions" }, file, el("label", {}, "model ", model), el("label", {}, "magnitude ", magnitude),
      el("label", {}, "threshold ", threshold), el("label", {}, "max upsampling ", maxUpsampling),
      el("label", {}, "missing components ", missing), run), slot, status, traces, results));
}

function show(container, answer) {
  const detections = [...(answer.detections || [])].sort((a, b) => Date.parse(a.startTime) - Date.parse(b.startTime));
  const picks = answer.picks || [];
  const inputs = answer.inputs || [];
  container.replaceChildren(...[
    el("h3", {}, "Input, per station"),
    table(["station", "outcome", "components", "resampled from Hz", "gap-filled samples", "why refused"],
      inputs.map((s) => [s.station, s.outcome, s.components || "", s.resampledFromHz ? Number(s.resampledFromHz) : "",
        Number(s.gapFilledSamples || 0), s.refused || ""]), { "data-testid": "annotate-inputs" }),
    el("h3", {}, "Detections"),
    table(["station", "start", "end", "peak", "probability", "magnitude", "class"], detections.map((d) => [
      d.station, when(d.startTime), when(d.endTime), when(d.peakTime), d.probability ?? 0,
      d.magnitude !== undefined ? fmt(d.magnitude, 3) : "", d.classLabel || ""]), { "data-testid": "detections" }),
    picks.length ? el("h3", {}, "Picks") : null,
    picks.length ? table(["station", "phase", "time", "probability"], picks.map((p) => [p.station, p.phase,
      when(p.time), p.probability ?? 0]), { "data-testid": "picks" }) : null].filter(Boolean));
}

const MAX_STATIONS = 4;
const PHASE_COLORS = { P: "#1f6feb", S: "#1a7f37" };

/** The file's three components per station (read here, in the page), with detections and picks drawn on them. */
async function drawTraces(container, file, answer) {
  container.replaceChildren();
  let parsed;
  try {
    parsed = readMiniSeed(await file.arrayBuffer());
  } catch (err) {
    container.append(el("p", { class: "muted" }, `waveforms not drawn: ${err.message}`));
    return;
  }
  const stations = new Map();
  for (const trace of parsed) {
    const station = trace.id.split(".").slice(0, 3).join(".");
    if (!stations.has(station)) stations.set(station, []);
    stations.get(station).push(trace);
  }
  const time = (t) => Date.parse(t) / 1000;
  for (const [station, list] of [...stations].slice(0, MAX_STATIONS)) {
    const marks = {
      spans: (answer.detections || []).filter((d) => d.station === station).map((d) => [time(d.startTime),
        time(d.endTime), d.magnitude !== undefined ? `M ${d.magnitude.toFixed(1)}` : `p ${d.probability.toFixed(2)}`]),
      lines: (answer.picks || []).filter((p) => p.station === station).map((p) => [time(p.time),
        PHASE_COLORS[p.phase] || "#8250df", p.phase]),
    };
    container.append(el("h3", {}, station));
    for (const trace of list.sort((a, b) => b.id.localeCompare(a.id))) { // Z, N, E
      const box = el("div", { class: "trace", "data-id": trace.id,
        "data-samples": String(trace.segments.reduce((n, s) => n + s.data.length, 0)) });
      container.append(box);
      waveform(box, trace.id, envelope(trace), marks, `annotate-${station}`);
    }
  }
  if (stations.size > MAX_STATIONS) {
    container.append(el("p", { class: "muted" }, `${stations.size - MAX_STATIONS} more stations not drawn`));
  }
}
