// Catalogs: the annotation jobs (archive to catalog), and one job's progress, events, map, files and evaluation.

import * as api from "./api.js";
import { parseCsv, scatterMap } from "./catalog_map.js";
import { evaluationForm } from "./catalog_eval.js";
import { jobList } from "./joblist.js";
import { act, el, errorSlot, fmt, saveBlob, stateBadge, stateName, table, when } from "./ui.js";

const ACTIVE = new Set(["QUEUED", "RUNNING", "STOPPING"]);
const FILES = [["QUAKEML", "QuakeML", "catalog.xml", "application/xml"],
  ["EVENTS_CSV", "events CSV", "events.csv", "text/csv"], ["PICKS_CSV", "picks CSV", "picks.csv", "text/csv"],
  ["ALL_PICKS_CSV", "all picks CSV", "all_picks.csv", "text/csv"]];

const days = (job) => `${Number(job.progress?.stationDaysDone || 0)} / ${Number(job.progress?.stationDaysTotal || 0)}`;

export async function catalogsPage(page) {
  const render = (jobs) => table(["job", "name", "state", "station-days", "picks", "events", "picker", "created"],
    jobs.map((j) => [el("a", { href: `#/catalogs/${encodeURIComponent(j.jobId)}` }, j.jobId), j.displayName || "",
      stateBadge(j.state), days(j), Number(j.progress?.picks || 0), Number(j.events || 0),
      j.picker, when(j.createTime)]), { "data-testid": "annotation-jobs" });
  page.replaceChildren(el("section", {}, el("h2", {}, "Annotation jobs"), ...jobList({
    path: "/v1/annotation-jobs", render,
    empty: "No annotation job matches: start one with `quakestack catalog build` or the API." })));
}

export async function catalogPage(page, jobId) {
  const base = `/v1/annotation-jobs/${encodeURIComponent(jobId)}`;
  const { job } = await api.get(base);
  const controller = new AbortController();
  const summary = el("div", {});
  const show = (j) => summary.replaceChildren(el("dl", { class: "kv", "data-testid": "catalog-job" },
    el("dt", {}, "state"), el("dd", {}, stateBadge(j.state)),
    el("dt", {}, "stage"), el("dd", {}, j.progress?.stage || ""),
    el("dt", {}, "station-days"), el("dd", { "data-testid": "station-days" }, days(j)),
    el("dt", {}, "picks"), el("dd", {}, Number(j.progress?.picks || 0)),
    el("dt", {}, "events"), el("dd", { "data-testid": "event-count" }, Number(j.events || 0)),
    el("dt", {}, "associated picks"), el("dd", {}, Number(j.associatedPicks || 0)),
    el("dt", {}, "picker"), el("dd", {}, j.picker || ""),
    el("dt", {}, "magnitude model"), el("dd", {}, j.magnitudeModel || "none"),
    el("dt", {}, "classifier"), el("dd", {}, j.classifier || "none"),
    el("dt", {}, "created"), el("dd", {}, when(j.createTime)),
    j.error ? el("dt", {}, "error") : null, j.error ? el("dd", { class: "error" }, j.error) : null),
  el("h3", {}, "Missing station-days"), (j.missingStationDays || []).length
    ? el("ul", { "data-testid": "missing-station-days" }, j.missingStationDays.map((d) => el("li", {}, d)))
    : el("p", { class: "muted" }, "none"));
  show(job);
  page.replaceChildren(el("section", {}, el("h2", {}, `Annotation job ${jobId}`, job.displayName
    ? ` · ${job.displayName}` : ""), summary));
  if (ACTIVE.has(stateName(job.state))) {
    api.stream(`${base}:watch`, (message) => show(message.job), controller.signal)
      .then(() => { if (location.hash === `#/catalogs/${encodeURIComponent(jobId)}`) catalogPage(page, jobId); })
      .catch((err) => {
        if (err.name === "AbortError") return;
        const slot = errorSlot("watch-error");
        slot.show(err);
        page.append(slot);
      });
  } else if (stateName(job.state) === "SUCCEEDED") {
    page.append(await catalogSection(jobId), evaluationForm(jobId));
  }
  return () => controller.abort();
}

async function catalogFile(jobId, format) {
  return api.downloadBlob(`/v1/catalogs/${encodeURIComponent(jobId)}?format=CATALOG_FILE_FORMAT_${format}`);
}

async function catalogSection(jobId) {
  const events = parseCsv(await (await catalogFile(jobId, "EVENTS_CSV")).text());
  const num = (v) => (v === undefined || v === "" ? NaN : Number(v));
  const typed = events.some((e) => e.event_type);
  const slot = errorSlot("download-error");
  const downloads = el("div", { class: "actions" }, "download:", FILES.map(([format, label, name, type]) =>
    el("button", { type: "button", class: "secondary", "data-testid": `download-${format.toLowerCase()}`,
      onclick: (event) => act(event.target, slot, async () => saveBlob(
        new Blob([await catalogFile(jobId, format)], { type }), `${jobId}-${name}`)) }, label)));
  // coordinates as the catalog stores them (5 decimals, about a metre), not rounded for display
  const rows = events.map((e) => [e.origin_time, e.latitude, e.longitude, e.depth_km,
    e.magnitude === "" ? "" : num(e.magnitude), num(e.n_picks), e.n_stations ?? "", e.azimuthal_gap_deg ?? "",
    e.rms_residual_s ?? "", e.search_edge ? `edge: ${e.search_edge}` : "", ...(typed ? [e.event_type || ""] : [])]);
  const points = events.map((e) => ({ kind: "event", lon: num(e.longitude), lat: num(e.latitude),
    magnitude: num(e.magnitude), label: `${e.origin_time} M${e.magnitude || "?"} ${fmt(num(e.depth_km))} km` }));
  return el("section", {}, el("h2", {}, `Catalog: ${events.length} event${events.length === 1 ? "" : "s"}`), downloads, slot,
    events.length ? table(["origin time", "latitude", "longitude", "depth km", "magnitude", "picks", "stations",
      "gap °", "RMS s", "location", ...(typed ? ["event type"] : [])], rows, { "data-testid": "catalog-events" })
      : el("p", { class: "muted" }, "The job found no event."),
    el("h3", {}, "Map of the events"),
    el("p", { class: "muted" }, "picks.csv carries no station coordinates: the evaluation's event map shows the stations."),
    scatterMap(points, { "data-testid": "catalog-map" }));
}
