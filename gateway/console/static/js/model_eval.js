// Models → compare: several registered versions evaluated on one dataset split, one table; for pickers the
// benchmark tasks of Münchmeyer et al. (2022) (detection, phase identification, onset residuals in seconds).

import * as api from "./api.js";
import { act, el, errorSlot, metricMap, table, writeButton } from "./ui.js";

const PICKER_COLUMNS = ["detection_auc", "detection_mcc", "phase_mcc", "onset_mae_s", "p_onset_mae_s",
  "s_onset_mae_s", "p_onset_within_0_1s", "s_onset_within_0_1s"];

/** The comparison section: pick versions and a dataset, evaluate each (EvaluateModel), show the table and plots. */
export function evaluationSection(models) {
  const versions = models.flatMap((m) => (m.versions || []).map((v) => ({ model: m.name, version: v })));
  if (!versions.length) return null;
  const error = errorSlot("compare-error");
  const dataset = el("input", { placeholder: "dataset (default: each version's own)", "data-testid": "compare-dataset" });
  const split = el("select", { "data-testid": "compare-split" },
    ["test", "val", "train"].map((s) => el("option", { value: s }, s)));
  const boxes = versions.map(({ model, version }) => el("input", { type: "checkbox",
    "data-testid": `compare-${model}-${version.version}`, value: `${model}@${version.version}` }));
  const results = el("div", { "data-testid": "compare-results" });

  async function compare() {
    const chosen = versions.filter((_, i) => boxes[i].checked);
    if (!chosen.length) throw new Error("tick the versions to compare");
    const rows = [];
    const plots = [];
    for (const { model, version } of chosen) {
      const answer = await api.post("/v1/evaluations", { registeredModel: { name: model, version: String(version.version) },
        dataset: dataset.value.trim(), split: split.value });
      rows.push({ ref: `${model}@${version.version}`, windows: Number(answer.windows || 0), metrics: metricMap(answer.metrics) });
      plots.push(...await images(`${model}@${version.version}`, version, answer.artifactKeys || []));
    }
    const picker = rows.some((r) => "detection_auc" in r.metrics);
    const columns = picker ? PICKER_COLUMNS
      : [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))].sort().slice(0, 8);
    results.replaceChildren(
      table(["version", "windows", ...columns], rows.map((r) => [r.ref, r.windows,
        ...columns.map((c) => (c in r.metrics ? r.metrics[c] : ""))]), { "data-testid": "compare-table" }),
      ...plots);
  }

  return el("section", { "data-testid": "model-compare" }, el("h2", {}, "Compare versions on a dataset"),
    el("p", { class: "muted" }, "Pickers are scored with the benchmark tasks of Münchmeyer et al. (2022): ",
      "event detection (ROC AUC, MCC), phase identification (MCC), onset residuals in seconds."),
    el("div", { class: "actions" }, versions.map(({ model, version }, i) => el("label", {}, boxes[i],
      ` ${model}@${version.version} (${version.architecture})`))),
    el("div", { class: "actions" }, dataset, split,
      writeButton("Evaluate and compare", (event) => act(event.target, error, compare),
        { "data-testid": "compare-run" })),
    error, results);
}

/** A version's plots: downloadable through its training job; an imported version's are only listed. */
async function images(ref, version, keys) {
  const jobId = version.source?.jobId;
  if (!jobId) return keys.length ? [el("p", { class: "muted" }, `${ref}: plots stored at ${keys.join(", ")}`)] : [];
  return Promise.all(keys.map(async (key) => {
    const relative = key.slice(key.indexOf("/eval/") + 1);
    const blob = await api.downloadBlob(`/v1/training-jobs/${encodeURIComponent(jobId)}/artifacts/${relative}`,
      "image/png");
    return el("figure", {}, el("img", { class: "plot", alt: `${ref} ${relative}`, src: URL.createObjectURL(blob) }),
      el("figcaption", {}, `${ref}: ${relative.split("/").pop()}`));
  }));
}
