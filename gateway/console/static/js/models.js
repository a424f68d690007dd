// Models: registered models with versions, metrics and aliases (set and move); a comparison of versions on a
// dataset (model_eval.js); what is resident where.

import * as api from "./api.js";
import { evaluationSection } from "./model_eval.js";
import { act, adminButton, el, errorSlot, fmt, session, table, when, writeButton } from "./ui.js";

const task = (t) => String(t || "").replace("TASK_", "").toLowerCase();

export async function modelsPage(page) {
  const [{ models = [] }, { models: loaded = [] }] = await Promise.all([
    api.listAll("/v1/models", "models"), api.listAll("/v1/loaded-models", "models")]);
  const reload = () => modelsPage(page);
  const resident = el("section", {}, el("h2", {}, "Loaded in the inference service"),
    loaded.length ? table(["model", "version", "task", "device", "memory", "batches", "windows", "loaded", ""],
      loaded.map((m) => {
        const slot = errorSlot(`unload-error-${m.name}`);
        return [m.name, Number(m.version), task(m.task), m.device, `${(Number(m.memoryBytes || 0) / 1e6).toFixed(1)} MB`,
          Number(m.batchesServed || 0), Number(m.windowsServed || 0), when(m.loadTime),
          el("span", {}, adminButton("Unload", (event) => act(event.target, slot, async () => {
            await api.del(`/v1/loaded-models/${encodeURIComponent(m.name)}`);
            await reload();
          }), { "data-testid": `unload-${m.name}` }), slot)];
      }), { "data-testid": "loaded-table" }) : el("p", { class: "muted" }, "No model is loaded."));
  page.replaceChildren(el("section", {}, el("h2", {}, "Registered models"),
    models.length ? null : el("p", { class: "muted" }, "No registered model yet: register one from a training job.")),
  ...models.map((m) => modelSection(m, reload)), ...[evaluationSection(models)].filter(Boolean), resident);
}

function modelSection(model, reload) {
  const versions = [...(model.versions || [])].sort((a, b) => Number(b.version) - Number(a.version));
  const aliasError = errorSlot(`alias-error-${model.name}`);
  const loadError = errorSlot(`load-error-${model.name}`);
  const device = el("input", { value: "auto", size: "8", "data-testid": `load-device-${model.name}`,
    title: "device to load on: auto, cpu, cuda or cuda:N" });
  const rows = versions.map((v) => [Number(v.version), v.architecture, task(v.task), v.dataset,
    (v.metrics || []).filter((m) => m.value !== undefined).map((m) => `${m.name} ${fmt(m.value)}`).join(" · "),
    (v.aliases || []).join(", "), when(v.createTime),
    el("span", {}, adminButton("Load", (event) => act(event.target, loadError, async () => {
      await api.post("/v1/loaded-models", { name: model.name, version: String(v.version), device: device.value });
      await reload();
    }), { "data-testid": `load-${model.name}-${v.version}` }))]);
  const aliasName = el("input", { placeholder: "alias (e.g. production)", "data-testid": `alias-name-${model.name}` });
  const aliasVersion = el("select", { "data-testid": `alias-version-${model.name}` },
    versions.map((v) => el("option", { value: String(v.version) }, `version ${v.version}`)));
  const setAlias = writeButton("Set / move alias", (event) => act(event.target, aliasError, async () => {
    await api.put(`/v1/models/${encodeURIComponent(model.name)}/aliases/${encodeURIComponent(aliasName.value.trim())}`,
      { version: Number(aliasVersion.value) });
    await reload();
  }), { "data-testid": `set-alias-${model.name}` });
  const aliases = Object.entries(model.aliases || {}).map(([alias, version]) => el("span", { class: "state" },
    `${alias} → ${version} `, adminButton("×", (event) => act(event.target, aliasError, async () => {
      await api.del(`/v1/models/${encodeURIComponent(model.name)}/aliases/${encodeURIComponent(alias)}`);
      await reload();
    }), { title: `delete alias ${alias}`, class: "write secondary" })));
  return el("section", { "data-testid": `model-${model.name}` }, el("h2", {}, model.name),
    el("div", { class: "actions" }, "aliases:", aliases.length ? aliases : el("span", { class: "muted" }, "none")),
    table(["version", "architecture", "task", "dataset", "metrics", "aliases", "registered", ""], rows), loadError,
    session.canWrite ? el("div", { class: "actions" }, aliasName, aliasVersion, setAlias,
      session.canAdmin ? el("label", {}, "load on device ", device) : null) : null, aliasError);
}
