// Training: the job list and the form generated from ListArchitectures (every hyper-parameter with its
// default and range, checked here before the server checks it again; its INVALID_ARGUMENT lands next to
// the field it names).

import * as api from "./api.js";
import { jobList } from "./joblist.js";
import { act, el, errorSlot, fmt, session, stateBadge, table, when } from "./ui.js";

const KIND = (hp) => String(hp.kind || "").replace("HYPER_PARAMETER_KIND_", "");

/** The bounds a spec declares; proto3 leaves zeros out, so both absent means unbounded. */
export function bounds(hp) {
  const hasMin = hp.minimum !== undefined, hasMax = hp.maximum !== undefined;
  if (!hasMin && !hasMax) return [null, null];
  const min = hp.minimum ?? 0;
  return [min, hasMax && hp.maximum >= min ? hp.maximum : null];
}

/** [value, error] for the text the user typed, by the spec's kind and range. */
export function checkValue(hp, raw) {
  const kind = KIND(hp);
  if (kind === "BOOL") return [raw === true || raw === "true", null];
  if (kind === "CHOICE") {
    if (!(hp.choices || []).includes(raw)) return [null, `${hp.name} must be one of ${hp.choices.join(", ")}`];
    return [raw !== "" && !Number.isNaN(Number(raw)) ? Number(raw) : raw, null];
  }
  const text = String(raw).trim();
  const number = Number(text);
  if (text === "" || !Number.isFinite(number)) return [null, `${hp.name} must be a number`];
  if (kind === "INT" && !Number.isInteger(number)) return [null, `${hp.name} must be an integer`];
  const [min, max] = bounds(hp);
  if ((min !== null && number < min) || (max !== null && number > max)) {
    return [null, `${hp.name} must be in [${fmt(min ?? -Infinity)}, ${max === null ? "∞" : fmt(max)}], got ${text}`];
  }
  return [number, null];
}

function rangeText(hp) {
  const kind = KIND(hp);
  if (kind === "CHOICE") return (hp.choices || []).join(" | ");
  if (kind === "BOOL") return "true | false";
  const [min, max] = bounds(hp);
  if (min === null && max === null) return kind.toLowerCase();
  return `${kind.toLowerCase()} in [${fmt(min)}, ${max === null ? "∞" : fmt(max)}]`;
}

function input(hp) {
  const kind = KIND(hp), name = hp.name, def = hp.defaultValue;
  if (kind === "BOOL") {
    return el("select", { name, "data-default": String(Boolean(def)) },
      ["true", "false"].map((v) => el("option", { value: v, selected: String(Boolean(def)) === v }, v)));
  }
  if (kind === "CHOICE") {
    return el("select", { name, "data-default": String(def) },
      (hp.choices || []).map((c) => el("option", { value: c, selected: String(def) === c }, c)));
  }
  const [min, max] = bounds(hp);
  return el("input", {
    name, type: "number", value: String(def ?? ""), "data-default": String(def ?? ""),
    step: kind === "INT" ? "1" : "any", min: min ?? undefined, max: max ?? undefined,
  });
}

function field(hp) {
  const error = el("span", { class: "error", "data-error-for": hp.name, role: "alert" });
  const wrap = el("div", { class: "field", "data-field": hp.name },
    el("label", { for: `hp-${hp.name}` }, hp.name),
    el("span", { class: "hint" }, `${rangeText(hp)} · default ${fmt(hp.defaultValue)}`),
    input(hp), el("span", { class: "hint" }, hp.description || ""), error);
  wrap.querySelector("input, select").id = `hp-${hp.name}`;
  return wrap;
}

function plainField(name, label, control, hint) {
  control.name = name;
  control.id = `f-${name}`;
  return el("div", { class: "field", "data-field": name }, el("label", { for: control.id }, label),
    el("span", { class: "hint" }, hint || ""), control,
    el("span", { class: "error", "data-error-for": name, role: "alert" }));
}

/** The form field an API error names: its message starts with the field (`epochs must be in ...`). */
export function fieldOf(message, names) {
  const text = String(message || "");
  const sorted = [...names].sort((a, b) => b.length - a.length);
  for (const name of sorted) if (new RegExp(`^${name}\\b`).test(text)) return name;
  for (const name of sorted) if (new RegExp(`\\b${name}\\b`).test(text)) return name;
  return null;
}

function jobsTable(jobs) {
  return table(["job", "architecture", "dataset", "state", "epochs", "val loss", "created"], jobs.map((j) => [
    el("a", { href: `#/training/jobs/${encodeURIComponent(j.jobId)}`, "data-testid": "job-link" },
      j.displayName || j.jobId),
    j.architecture, j.dataset, stateBadge(j.state), `${j.epochsDone || 0} / ${j.epochs || 0}`,
    j.latest?.valLoss !== undefined ? fmt(j.latest.valLoss) : "", when(j.createTime)]),
  { "data-testid": "jobs-table" });
}

export async function trainingPage(page) {
  const [catalog, { datasets = [] }] = await Promise.all([
    api.listAll("/v1/architectures", "architectures"), api.listAll("/v1/datasets", "datasets")]);
  const sections = [el("section", {}, el("h2", {}, "Training jobs"),
    ...jobList({ path: "/v1/training-jobs", datasets: datasets.map((d) => d.name),
      architectures: (catalog.architectures || []).map((a) => a.name), render: jobsTable,
      empty: "No training jobs match." }))];
  if (session.canWrite) sections.unshift(jobForm(catalog, datasets));
  page.replaceChildren(...sections);
}

function jobForm(catalog, datasets) {
  const architectures = catalog.architectures || [];
  const training = catalog.trainingHyperParameters || [];
  const archSelect = el("select", {}, architectures.map((a) => el("option", { value: a.name }, a.name)));
  const datasetSelect = el("select", {}, datasets.map((d) => el("option", { value: d.name }, d.name)));
  const description = el("p", { class: "muted", "data-testid": "arch-description" });
  const archFields = el("div", { class: "form-grid", "data-testid": "arch-fields" });
  const formError = errorSlot("form-error");
  const submit = el("button", { type: "submit", class: "write", "data-testid": "start-training" }, "Start training");
  const form = el("form", { "data-testid": "training-form", novalidate: true },
    el("div", { class: "form-grid" },
      plainField("dataset", "dataset", datasetSelect),
      plainField("architecture", "architecture", archSelect),
      plainField("device", "device", el("input", { value: "auto" }), "auto, cpu, cuda or cuda:N"),
      plainField("display_name", "display name", el("input", { value: "" }), "optional")),
    description,
    el("h3", {}, "Architecture hyper-parameters"), archFields,
    el("h3", {}, "Training hyper-parameters"),
    el("div", { class: "form-grid", "data-testid": "training-fields" }, training.map(field)),
    el("div", { class: "actions" }, submit), formError);

  const currentArch = () => architectures.find((a) => a.name === archSelect.value);
  const showArch = () => {
    const arch = currentArch();
    description.textContent = arch ? `${arch.task.replace("TASK_", "").toLowerCase()} · ${arch.description}` : "";
    archFields.replaceChildren(...(arch?.hyperParameters || []).map(field));
  };
  archSelect.addEventListener("change", showArch);
  showArch();

  const specs = () => [...(currentArch()?.hyperParameters || []), ...training];
  const setError = (name, message) => {
    const slot = form.querySelector(`[data-error-for="${name}"]`);
    slot.textContent = message || "";
    slot.closest(".field").classList.toggle("invalid", Boolean(message));
  };
  form.addEventListener("input", (event) => {
    const name = event.target.name;
    const hp = specs().find((h) => h.name === name);
    if (hp) setError(name, checkValue(hp, event.target.value)[1]);
    else if (name) setError(name, "");
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    for (const slot of form.querySelectorAll("[data-error-for]")) setError(slot.dataset.errorFor, "");
    formError.show(null);
    const hyperParameters = {};
    let valid = true;
    for (const hp of specs()) {
      const control = form.elements[hp.name];
      const [value, error] = checkValue(hp, control.value);
      if (error) { setError(hp.name, error); valid = false; continue; }
      if (control.value !== control.dataset.default) hyperParameters[hp.name] = value;
    }
    if (!datasetSelect.value) { setError("dataset", "choose a dataset"); valid = false; }
    if (!valid) { formError.show(new Error("fix the fields marked above")); return; }
    const body = { dataset: datasetSelect.value, architecture: archSelect.value, hyperParameters,
      device: form.elements.device.value.trim(), displayName: form.elements.display_name.value.trim() };
    act(submit, null, async () => {
      try {
        const { job } = await api.post("/v1/training-jobs", body);
        location.hash = `#/training/jobs/${encodeURIComponent(job.jobId)}`;
      } catch (err) {
        const names = [...specs().map((h) => h.name), "dataset", "architecture", "device", "display_name"];
        const name = err.code === "INVALID_ARGUMENT" || err.code === "FAILED_PRECONDITION"
          ? fieldOf(err.message, names) : null;
        if (name) setError(name, `${err.code}: ${err.message}`);
        else formError.show(err);
      }
    });
  });
  return el("section", {}, el("h2", {}, "New training job"), form);
}
