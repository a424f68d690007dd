// The evaluation form of a finished catalog: a reference catalog's object key and the matching tolerances,
// then precision, recall, errors and the server's two plots (event map with the stations, magnitudes).

import * as api from "./api.js";
import { act, el, errorSlot, fmt, table, writeButton } from "./ui.js";

export function evaluationForm(jobId) {
  const base = `/v1/catalogs/${encodeURIComponent(jobId)}`;
  const reference = el("input", { id: "eval-reference", placeholder: "archives/…/truth.xml", size: "40",
    "data-testid": "eval-reference" });
  const timeTolerance = el("input", { id: "eval-time", type: "number", step: "any", min: "0", value: "2",
    "data-testid": "eval-time" });
  const distanceTolerance = el("input", { id: "eval-distance", type: "number", step: "any", min: "0", value: "10",
    "data-testid": "eval-distance" });
  const error = errorSlot("eval-error");
  const result = el("div", { "data-testid": "evaluation" });

  async function evaluate() {
    result.replaceChildren();
    const answer = await api.post(`${base}:evaluate`, { reference: { objectKey: reference.value.trim() },
      timeToleranceS: Number(timeTolerance.value || 0), distanceToleranceKm: Number(distanceTolerance.value || 0) });
    const images = await Promise.all((answer.artifactKeys || []).map(async (key) => {
      const relative = key.slice(key.indexOf("/eval/") + 1);
      const blob = await api.downloadBlob(`${base}/artifacts/${relative}`, "image/png");
      return el("img", { class: "plot", alt: relative.split("/").pop(), src: URL.createObjectURL(blob) });
    }));
    const n = (v) => (Number.isFinite(Number(v || 0)) ? Number(v || 0) : "–"); // NaN: no magnitudes to compare
    result.replaceChildren(table(["predicted", "reference", "matched", "precision", "recall", "origin time error s",
      "epicentral error km", "magnitude bias", "magnitude rmse"], [[n(answer.predictedEvents),
      n(answer.referenceEvents), n(answer.matched), n(answer.precision), n(answer.recall),
      n(answer.medianOriginTimeErrorS), n(answer.medianEpicentralErrorKm), n(answer.magnitudeBias),
      n(answer.magnitudeRmse)]], { "data-testid": "evaluation-figures" }),
    el("p", { class: "muted" }, `evaluation ${answer.evaluationId} · precision ${fmt(n(answer.precision))}` +
      ` · recall ${fmt(n(answer.recall))}`), ...images);
  }

  const run = writeButton("Evaluate", (event) => act(event.target, error, evaluate), { "data-testid": "eval-run" });
  return el("section", { "data-testid": "evaluation-form" }, el("h2", {}, "Evaluate against a reference catalog"),
    el("p", { class: "muted" }, "A QuakeML or CSV catalog in object storage, matched by origin time and distance."),
    run ? el("div", { class: "actions" },
      el("label", {}, "reference object key ", reference),
      el("label", {}, "time tolerance s ", timeTolerance),
      el("label", {}, "distance tolerance km ", distanceTolerance), run)
      : el("p", { class: "muted" }, "Evaluating needs a read-write token."),
    error, result);
}
