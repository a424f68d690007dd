// A list of jobs a page at a time, newest first, with the filters the List routes take (state, dataset,
// architecture, created after/before): the server filters on indexed columns and pages by keyset, so the
// page costs the same after a year of jobs. "Older" follows nextPageToken; a filter change starts again.

import * as api from "./api.js";
import { el } from "./ui.js";

const STATES = ["QUEUED", "RUNNING", "STOPPING", "SUCCEEDED", "FAILED", "CANCELLED", "STOPPED"];
export const PAGE_SIZE = 50;

/** A select of `choices` ([value, label] or value), "any" first. */
function choice(name, label, choices) {
  return el("label", { class: "field" }, label, el("select", { name, "data-testid": `filter-${name}` },
    el("option", { value: "" }, "any"),
    choices.map((c) => (Array.isArray(c) ? el("option", { value: c[0] }, c[1]) : el("option", { value: c }, c)))));
}

function dateField(name, label) {
  return el("label", { class: "field" }, label, el("input", { type: "date", name, "data-testid": `filter-${name}` }));
}

/** The filter form's values as query parameters of the List route (dates as UTC midnight, RFC 3339). */
function query(form) {
  const params = {};
  for (const control of form.elements) {
    if (!control.name || !control.value) continue;
    if (control.name === "state") params.state = `JOB_STATE_${control.value}`;
    else if (control.type === "date") params[control.name] = `${control.value}T00:00:00Z`;
    else params[control.name] = control.value;
  }
  return params;
}

/**
 * jobList({path, datasets, architectures, render, empty}) -> section content: the filter form, the page's table
 * (render(jobs) builds it) and the paging buttons. `datasets`/`architectures` (names) add those filters.
 */
export function jobList({ path, datasets = null, architectures = null, render, empty }) {
  const form = el("form", { class: "filters", "data-testid": "job-filters" },
    choice("state", "state", STATES),
    datasets ? choice("dataset", "dataset", datasets) : null,
    architectures ? choice("architecture", "architecture", architectures) : null,
    dateField("createdAfter", "created from"), dateField("createdBefore", "created before"));
  const body = el("div", {});
  const newest = el("button", { type: "button", "data-testid": "page-newest" }, "← newest");
  const older = el("button", { type: "button", "data-testid": "page-older" }, "older →");
  const status = el("span", { class: "muted", "data-testid": "page-status" });
  const pager = el("div", { class: "actions" }, newest, older, status);
  const tokens = [""]; // the tokens of the pages shown so far: [first, second, ...]

  async function show(index) {
    const params = new URLSearchParams({ pageSize: String(PAGE_SIZE), ...query(form),
      ...(tokens[index] ? { pageToken: tokens[index] } : {}) });
    try {
      const answer = await api.get(`${path}?${params}`);
      const jobs = answer.jobs || [];
      tokens.length = index + 1;
      if (answer.nextPageToken) tokens.push(answer.nextPageToken);
      body.replaceChildren(jobs.length ? render(jobs) : el("p", { class: "muted" }, index ? "No older jobs." : empty));
      newest.disabled = index === 0;
      older.disabled = !answer.nextPageToken;
      older.onclick = () => show(index + 1);
      status.textContent = `page ${index + 1}${answer.nextPageToken ? "" : " (the last)"}`;
    } catch (err) {
      body.replaceChildren(el("p", { class: "error", "data-testid": "filter-error" }, `${err.code}: ${err.message}`));
    }
  }

  newest.onclick = () => show(0);
  form.addEventListener("change", () => { tokens.length = 1; show(0); });
  form.addEventListener("submit", (event) => event.preventDefault());
  show(0);
  return [form, body, pager];
}
