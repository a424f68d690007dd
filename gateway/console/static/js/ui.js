// Small DOM helpers shared by the pages: elements, tables, readable error messages, write buttons.

export const session = { identity: null };

/** el("td", {class: "num"}, "1.2") — attributes (on* handlers, dataset via data-*) and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A button only for tokens that may write: read-only tokens get no write buttons at all. */
export function writeButton(label, onclick, attrs = {}) {
  if (!session.canWrite) return null;
  return el("button", { type: "button", class: "write", onclick, ...attrs }, label);
}

/** A button only for admin tokens (deletes, model load/unload), as the API's roles allow. */
export function adminButton(label, onclick, attrs = {}) {
  if (!session.canAdmin) return null;
  return el("button", { type: "button", class: "write", onclick, ...attrs }, label);
}

export function table(columns, rows, attrs = {}) {
  return el("table", attrs,
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", {}, c)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) =>
      c instanceof Node ? el("td", {}, c) : el("td", { class: typeof c === "number" ? "num" : null }, fmt(c)))))));
}

export function fmt(value, digits = 4) {
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    return Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3) ? value.toExponential(2)
      : value.toPrecision(digits).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
  }
  return value === undefined || value === null ? "" : String(value);
}

export function stateName(state) {
  return String(state || "JOB_STATE_UNSPECIFIED").replace("JOB_STATE_", "");
}

export function stateBadge(state) {
  const name = stateName(state);
  return el("span", { class: `state ${name}`, "data-testid": "job-state" }, name);
}

/** Times in UTC, as seismologists read them: 2024-01-01 00:02:15.120 */
export function when(timestamp) {
  return timestamp ? new Date(timestamp).toISOString().replace("T", " ").replace("Z", "") : "";
}

/** An error paragraph placed where the action was taken; show(err) fills it, show(null) clears it. */
export function errorSlot(testid) {
  const slot = el("p", { class: "error", role: "alert", "data-testid": testid });
  slot.show = (err) => { slot.textContent = err ? describe(err) : ""; };
  return slot;
}

export function describe(err) {
  if (err?.code && err.code !== "UNKNOWN") return `${err.code}: ${err.message}`;
  return err?.message || String(err);
}

/** Runs an async action from a button: disables it meanwhile, reports failures in `slot`. */
export async function act(button, slot, action) {
  if (button) button.disabled = true;
  slot?.show(null);
  try {
    return await action();
  } catch (err) {
    if (slot) slot.show(err);
    else throw err;
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

export function metricMap(metrics) {
  const out = {};
  for (const m of metrics || []) if (m.value !== undefined || !m.values) out[m.name] = m.value ?? 0;
  return out;
}

/** Saves a Blob under `filename` (downloads go through fetch, so the bearer token goes along). */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
