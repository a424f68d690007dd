// The console shell: who the token is, the hash router, and one page module per area.

import * as api from "./api.js";
import { datasetsPage, datasetPage } from "./datasets.js";
import { jobPage } from "./job.js";
import { trainingPage } from "./training.js";
import { comparePage, sweepPage, sweepsPage } from "./sweeps.js";
import { modelsPage } from "./models.js";
import { annotatePage } from "./annotate.js";
import { catalogPage, catalogsPage } from "./catalogs.js";
import { describe, el, session } from "./ui.js";

const ROUTES = [
  [/^#\/datasets\/(.+)$/, datasetPage, "datasets"],
  [/^#\/datasets$/, datasetsPage, "datasets"],
  [/^#\/training\/jobs\/(.+)$/, jobPage, "training"],
  [/^#\/training$/, trainingPage, "training"],
  [/^#\/sweeps\/(.+)$/, sweepPage, "sweeps"],
  [/^#\/sweeps$/, sweepsPage, "sweeps"],
  [/^#\/compare\/(.+)$/, comparePage, "sweeps"],
  [/^#\/models$/, modelsPage, "models"],
  [/^#\/annotate$/, annotatePage, "annotate"],
  [/^#\/catalogs\/(.+)$/, catalogPage, "catalogs"],
  [/^#\/catalogs$/, catalogsPage, "catalogs"],
];

let current = null; // the page's cleanup (stops its streams)

async function identify() {
  for (;;) {
    try {
      session.identity = await api.whoami();
      if (api.needsToken(session.identity)) {
        await askToken("");
        continue;
      }
      session.canWrite = api.canWrite(session.identity);
      session.canAdmin = api.canAdmin(session.identity);
      document.body.dataset.role = session.identity.role;
      const who = document.getElementById("who");
      who.textContent = session.identity.authEnabled
        ? `${session.identity.id} (${session.identity.role})` : "no authentication (local)";
      document.getElementById("change-token").hidden = !session.identity.authEnabled;
      return;
    } catch (err) {
      if (err.status !== 401) throw err;
      const hadToken = api.token();
      api.setToken("");
      await askToken(hadToken ? describe(err) : "");
    }
  }
}

function askToken(message) {
  const dialog = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  document.getElementById("token-error").textContent = message;
  return new Promise((resolve) => {
    form.onsubmit = (event) => {
      event.preventDefault();
      api.setToken(document.getElementById("token-input").value.trim());
      dialog.close();
      resolve();
    };
    if (!dialog.open) dialog.showModal();
  });
}

let renders = 0; // which render is the latest: an earlier, slower page must never show over it

/** Each render draws into its own element; a newer render detaches it, so a slow page finishing late
 * (the datasets list still loading when the user already went to Catalogs) writes where no one looks. */
async function render() {
  if (current) current();
  current = null;
  const mine = ++renders;
  const hash = location.hash || "#/datasets";
  const page = el("div", {});
  document.getElementById("page").replaceChildren(page);
  for (const [pattern, handler, nav] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.nav === nav);
    page.replaceChildren(el("p", { class: "muted" }, "Loading…"));
    let cleanup = null;
    try {
      cleanup = await handler(page, ...match.slice(1).map(decodeURIComponent));
    } catch (err) {
      page.replaceChildren(el("section", {}, el("p", { class: "error", role: "alert" }, describe(err))));
    }
    if (mine === renders) current = cleanup;
    else if (cleanup) cleanup(); // superseded while loading: stop its streams at once
    return;
  }
  location.hash = "#/datasets";
}

async function start() {
  document.getElementById("change-token").addEventListener("click", async () => {
    api.setToken("");
    await identify();
    render();
  });
  await identify();
  window.addEventListener("hashchange", render);
  await render();
}

start().catch((err) => {
  document.getElementById("page").replaceChildren(el("p", { class: "error", role: "alert" }, describe(err)));
});
