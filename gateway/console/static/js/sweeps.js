// Sweeps: the list, one sweep (trials, the objective per epoch of every trial, importances, limits changed
// while it runs), and the comparison of any runs (curves overlaid, hyper-parameters against the objective).

import * as api from "./api.js";
import { lineChart, plottable } from "./charts.js";
import { act, el, errorSlot, fmt, session, stateBadge, stateName, table, when, writeButton } from "./ui.js";

const trialState = (s) => String(s || "").replace("TRIAL_STATE_", "").toLowerCase();
const num = (v) => (v === undefined || v === null ? null : Number(v));

export async function sweepsPage(page) {
  const { sweeps = [] } = await api.get("/v1/sweeps?pageSize=100");
  const jobs = el("input", { placeholder: "training job ids, separated by commas", size: "60",
    "data-testid": "compare-jobs" });
  const open = el("button", { type: "button", onclick: () => {
    const ids = jobs.value.split(/[\s,]+/).filter(Boolean);
    if (ids.length) location.hash = `#/compare/jobs/${ids.map(encodeURIComponent).join(",")}`;
  } }, "Compare");
  page.replaceChildren(
    el("section", {}, el("h2", {}, "Sweeps"),
      sweeps.length ? table(["sweep", "state", "architecture", "dataset", "objective", "trials", "best", "name"],
        sweeps.map((s) => [el("a", { href: `#/sweeps/${s.sweepId}` }, s.sweepId), stateBadge(s.state),
          s.architecture, s.dataset, objectiveText(s.objective), `${s.trialCounts?.complete || 0}/${s.maxTrials}`,
          num(s.bestTrial?.value), s.displayName || ""]), { "data-testid": "sweeps-table" })
        : el("p", { class: "muted" }, "No sweep yet: start one with `quakestack sweep start` or POST /v1/sweeps.")),
    el("section", {}, el("h2", {}, "Compare runs"),
      el("p", { class: "muted" }, "Any training jobs side by side: their curves, hyper-parameters and objective."),
      el("div", { class: "actions" }, jobs, open)));
}

function objectiveText(o = {}) {
  const way = o.direction === "OBJECTIVE_DIRECTION_MAXIMIZE" ? "max" : "min";
  return `${o.metric} (${way})${o.target !== undefined ? ` → ${fmt(o.target)}` : ""}`;
}

/** One sweep; while it runs it refreshes every few seconds until the page is left (`live.stopped`). */
export async function sweepPage(page, sweepId, live = { stopped: false }) {
  const { sweep } = await api.get(`/v1/sweeps/${encodeURIComponent(sweepId)}`);
  if (live.stopped) return undefined;
  const reload = () => sweepPage(page, sweepId, live);
  const names = (sweep.searchSpace || []).map((p) => p.name);
  const trials = sweep.trials || [];
  const rows = trials.map((t) => [Number(t.number), trialState(t.state), num(t.value),
    (t.intermediateValues || []).length, ...names.map((n) => t.parameters?.[n] ?? "–"),
    el("a", { href: `#/training/jobs/${t.jobId}` }, t.jobId), t.message || ""]);
  const curves = el("div", { "data-testid": "sweep-curves" });
  const slot = errorSlot("sweep-error");
  const limits = ["maxTrials", "parallelTrials", "maxFailures"].map((k) => el("input", {
    type: "number", min: "1", value: String(sweep[k] || ""), size: "4", name: k, "data-testid": `sweep-${k}` }));
  const running = !["SUCCEEDED", "FAILED", "CANCELLED", "STOPPED"].includes(stateName(sweep.state));
  const controls = running && session.canWrite ? el("div", { class: "actions" },
    "trials ", limits[0], " at once ", limits[1], " failures allowed ", limits[2],
    writeButton("Update", (e) => act(e.target, slot, async () => {
      await api.patch(`/v1/sweeps/${encodeURIComponent(sweepId)}`, Object.fromEntries(limits.map((i) =>
        [i.name, Number(i.value)])));
      await reload();
    }), { "data-testid": "sweep-update" }),
    writeButton("Stop", (e) => act(e.target, slot, async () => {
      await api.post(`/v1/sweeps/${encodeURIComponent(sweepId)}:stop`);
      await reload();
    })),
    writeButton("Cancel", (e) => act(e.target, slot, async () => {
      await api.post(`/v1/sweeps/${encodeURIComponent(sweepId)}:cancel`);
      await reload();
    }))) : null;
  const importances = Object.entries(sweep.importances || {}).sort((a, b) => b[1] - a[1]);
  page.replaceChildren(el("section", {},
    el("h2", {}, `Sweep ${sweep.sweepId} `, stateBadge(sweep.state)),
    el("p", {}, `${sweep.architecture} on ${sweep.dataset}; objective ${objectiveText(sweep.objective)}; `,
      `${trialState(sweep.sampler?.replace("SWEEP_SAMPLER_", "TRIAL_STATE_"))} sampler, `,
      `${trialState(sweep.pruner?.replace("SWEEP_PRUNER_", "TRIAL_STATE_"))} pruner; created ${when(sweep.createTime)}`),
    sweep.error ? el("p", { class: "error" }, sweep.error) : null,
    sweep.message ? el("p", {}, sweep.message) : null,
    sweep.registered ? el("p", { "data-testid": "sweep-registered" },
      `best trial registered as ${sweep.registered.name} v${sweep.registered.version}`) : null,
    importances.length ? el("p", { "data-testid": "sweep-importances" }, "importance: ",
      importances.map(([k, v]) => `${k} ${fmt(v, 2)}`).join(" · ")) : null,
    controls, slot,
    el("p", {}, el("a", { href: `#/compare/sweep/${sweep.sweepId}`, "data-testid": "compare-trials" },
      "Compare the trials (curves and hyper-parameters)")),
    curves,
    table(["trial", "state", sweep.objective?.metric || "objective", "epochs", ...names, "job", "note"], rows,
      { "data-testid": "trials-table" })));
  const epochs = Math.max(0, ...trials.map((t) => (t.intermediateValues || []).length
    ? Math.max(...t.intermediateValues.map((v) => v.epoch)) : 0));
  if (epochs && trials.length) {
    const chart = lineChart(curves, `${sweep.objective.metric} per epoch, every trial`, "epoch",
      trials.map((t) => `trial ${t.number}`));
    const x = Array.from({ length: epochs }, (_, i) => i + 1);
    chart.update(x, trials.map((t) => x.map((e) => (t.intermediateValues || []).find((v) => v.epoch === e)?.value
      ?? null)));
  }
  if (running) live.timer = setTimeout(reload, 3000);
  return () => { live.stopped = true; clearTimeout(live.timer); };
}

/** `#/compare/sweep/<id>` or `#/compare/jobs/<id>,<id>` */
export async function comparePage(page, what) {
  const [kind, rest] = [what.split("/")[0], what.split("/").slice(1).join("/")];
  const body = kind === "sweep" ? { sweepId: decodeURIComponent(rest) }
    : { jobIds: rest.split(",").map(decodeURIComponent) };
  const result = await api.post("/v1/runs:compare", body);
  const runs = result.runs || [];
  const params = result.varyingParameters || [];
  const metricNames = ["val_loss", "train_loss", ...new Set(runs.flatMap((r) => (r.epochs || []).flatMap((e) =>
    (e.metrics || []).filter((m) => m.value !== undefined).map((m) => m.name))))];
  const picker = el("select", { "data-testid": "compare-metric" },
    metricNames.map((m) => el("option", { value: m, selected: m === result.metric }, m)));
  const curves = el("div", { "data-testid": "compare-curves" });
  const scatter = el("div", { "data-testid": "compare-scatter" });
  const label = (r) => (r.trialNumber >= 0 ? `trial ${r.trialNumber}` : r.displayName || r.jobId);
  const draw = () => {
    curves.replaceChildren();
    const metric = picker.value;
    const value = (e) => (metric === "val_loss" ? e.valLoss : metric === "train_loss" ? e.trainLoss
      : (e.metrics || []).find((m) => m.name === metric)?.value);
    const epochs = Math.max(1, ...runs.map((r) => (r.epochs || []).length));
    const x = Array.from({ length: epochs }, (_, i) => i + 1);
    const chart = lineChart(curves, `${metric} per epoch`, "epoch", runs.map(label));
    chart.update(x, runs.map((r) => x.map((ep) => value((r.epochs || []).find((e) => e.epoch === ep) || {}) ?? null)));
  };
  picker.onchange = draw;
  const way = result.direction === "OBJECTIVE_DIRECTION_MAXIMIZE" ? "max" : "min";
  page.replaceChildren(el("section", {},
    el("h2", {}, `Comparing ${runs.length} runs`),
    el("p", {}, `ranked by ${result.metric} (${way}) at each run's best epoch`),
    el("div", { class: "actions" }, "curve of ", picker), curves,
    el("h3", {}, `${result.metric} against each varying hyper-parameter`), scatter,
    table(["rank", "run", "state", `${result.metric} (${way})`, "epochs", ...params],
      runs.map((r, i) => [i + 1, el("a", { href: `#/training/jobs/${r.jobId}` }, label(r)), stateName(r.state),
        num(r.objective), (r.epochs || []).length, ...params.map((p) => r.hyperParameters?.[p] ?? "")]),
      { "data-testid": "compare-table" })));
  draw();
  for (const p of params) drawScatter(scatter, p, runs, result.metric);
}

/** The objective against one hyper-parameter (numbers: a scatter; choices: their index on x). */
function drawScatter(container, param, runs, metric) {
  const points = runs.filter((r) => plottable(r.objective) !== null && r.hyperParameters?.[param] !== undefined)
    .map((r) => [r.hyperParameters[param], Number(r.objective)]);
  if (!points.length) return;
  const numeric = points.every(([v]) => typeof v === "number");
  const categories = numeric ? [] : [...new Set(points.map(([v]) => String(v)))];
  const xy = points.map(([v, y]) => [numeric ? v : categories.indexOf(String(v)), y]).sort((a, b) => a[0] - b[0]);
  const box = el("div", { "data-testid": `scatter-${param}` });
  container.append(box);
  const plot = new uPlot({
    title: `${metric} vs ${param}${numeric ? "" : ` (${categories.join(", ")})`}`,
    width: Math.max(320, (container.clientWidth || 560) / 2 - 10), height: 220,
    scales: { x: { time: false } }, legend: { show: false },
    axes: [{ label: param }, {}],
    series: [{}, { stroke: "#1f6feb", paths: () => null, points: { show: true, size: 8, fill: "#1f6feb" } }],
  }, [xy.map((p) => p[0]), xy.map((p) => p[1])], box);
  return plot;
}
