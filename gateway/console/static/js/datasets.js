// Datasets: the list, and one dataset's manifest summary with its magnitude histogram.

import * as api from "./api.js";
import { histogram, waveform } from "./charts.js";
import { el, fmt, table, when } from "./ui.js";

export async function datasetsPage(page) {
  const { datasets = [] } = await api.listAll("/v1/datasets", "datasets");
  const rows = datasets.map((d) => [
    el("a", { href: `#/datasets/${encodeURIComponent(d.name)}` }, d.name),
    (d.splits || []).map((s) => `${s.split} ${s.windows || 0}`).join(" · "),
    Number(d.windowSamples || 0), Number(d.samplingRateHz || 0), d.componentOrder || "",
    `${(Number(d.sizeBytes || 0) / 1e6).toFixed(1)} MB`, when(d.createTime)]);
  page.replaceChildren(el("section", {},
    el("h2", {}, "Datasets"),
    datasets.length ? table(["name", "windows per split", "samples", "Hz", "components", "size", "created"], rows,
      { "data-testid": "datasets-table" })
      : el("p", { class: "muted" }, "No datasets yet: ingest one with `quakestack data ingest` or POST /v1/datasets.")));
}

export async function datasetPage(page, name) {
  const { dataset, manifest = {} } = await api.get(`/v1/datasets/${encodeURIComponent(name)}:describe`);
  const splits = manifest.splits || {};
  const categories = [...new Set(Object.values(splits).flatMap((s) => Object.keys(s.categories || {})))].sort();
  const splitRows = Object.entries(splits).map(([split, s]) => [split, Number(s.windows ?? s.count ?? 0),
    ...categories.map((c) => Number(s.categories?.[c] || 0))]);
  const sources = (manifest.source || []).map((s) => (typeof s === "string" ? s : Object.entries(s)
    .filter(([, v]) => v !== null && v !== "").map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`).join(" · ")));
  const chart = el("div", { class: "chart", "data-testid": "magnitude-histogram" });
  const samples = el("div", { "data-testid": "dataset-samples" });
  page.replaceChildren(
    el("section", {},
      el("h2", {}, `Dataset ${dataset.name}`),
      el("dl", { class: "kv" },
        el("dt", {}, "description"), el("dd", {}, manifest.description || dataset.description || "—"),
        el("dt", {}, "window"), el("dd", {}, `${fmt(manifest.window_length_s)} s · ${manifest.window_length_samples} samples `
          + `@ ${fmt(manifest.sampling_rate)} Hz · ${manifest.component_order} · ${manifest.dtype}`),
        el("dt", {}, "normalisation"), el("dd", {}, manifest.normalization || "none"),
        el("dt", {}, "counts"), el("dd", {}, Object.entries(manifest.counts || {}).map(([k, v]) => `${k} ${v}`).join(" · ")),
        el("dt", {}, "created"), el("dd", {}, manifest.created_at || ""),
        el("dt", {}, "manifest sha256"), el("dd", {}, dataset.manifestSha256 || "")),
      el("h3", {}, "Windows per split and class"),
      table(["split", "windows", ...categories], splitRows, { "data-testid": "split-table" }),
      el("h3", {}, "Magnitude histogram"), chart,
      el("h3", {}, "Example windows"), samples,
      el("h3", {}, "Source"), el("pre", { class: "muted" }, sources.join("\n")),
      el("details", {}, el("summary", {}, "Parameters"),
        el("pre", { class: "muted" }, JSON.stringify(manifest.parameters || {}, null, 1)))));
  const hist = manifest.magnitude_histogram;
  if (hist?.counts?.length) histogram(chart, "windows per magnitude bin", hist.bin_edges, hist.counts);
  await drawSamples(samples, name);
}

const PHASE_COLORS = { P: "#0969da", S: "#1a7f37" };

/** A few stored windows (GET /v1/datasets/{name}:sample), each component drawn with its P and S marks. */
async function drawSamples(container, name) {
  const { waveforms, labels = [], split } = await api.get(`/v1/datasets/${encodeURIComponent(name)}:sample?count=3`);
  const [n, channels, length] = waveforms.shape.map(Number);
  const bytes = Uint8Array.from(atob(waveforms.data), (c) => c.charCodeAt(0));
  const data = new Float32Array(bytes.buffer);
  const rate = Number(waveforms.samplingRateHz);
  const xs = Array.from({ length }, (_, i) => i / rate);
  for (let w = 0; w < n; w++) {
    const label = labels[w] || {};
    const lines = [["P", label.pArrivalSample], ["S", label.sArrivalSample]]
      .filter(([, sample]) => sample !== undefined).map(([phase, sample]) => [sample / rate, PHASE_COLORS[phase], phase]);
    const magnitude = label.magnitude !== undefined ? ` · ${label.magnitudeType || "M"} ${fmt(label.magnitude)}` : "";
    container.append(el("h4", {}, `${split} · ${label.traceName} · ${label.category || ""}${magnitude}`));
    for (let c = 0; c < channels; c++) {
      const start = (w * channels + c) * length;
      const box = el("div", { class: "trace", "data-window": String(w), "data-phases": lines.map((l) => l[2]).join("") });
      container.append(box);
      waveform(box, `${label.station || ""} ${waveforms.componentOrder[c] || c}`,
        [xs, Array.from(data.subarray(start, start + length))], { lines, time: false }, `sample-${w}`);
    }
  }
}
