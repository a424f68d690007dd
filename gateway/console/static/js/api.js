// The public REST API, and nothing else: bearer token from sessionStorage, JSON errors as ApiError,
// server streams (SSE) read with fetch so the Authorization header goes along (EventSource cannot send it).

const TOKEN_KEY = "quakestack.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answer of the API: {code, message, details} with its HTTP status. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || "UNKNOWN";
    this.details = body?.details || [];
  }
}

function headers(extra = {}) {
  const out = { ...extra };
  const t = token();
  if (t) out.Authorization = `Bearer ${t}`;
  return out;
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = { code: "UNKNOWN", message: `${response.status} ${response.statusText}` };
  }
  return new ApiError(response.status, body);
}

export async function call(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return response.json();
}

export const get = (path) => call("GET", path);

/** A List route with every page (AIP-158: follows nextPageToken): the answer with all of `field`'s items. */
export async function listAll(path, field) {
  const items = [];
  let answer = {};
  let pageToken = "";
  do {
    const query = new URLSearchParams({ pageSize: "1000", ...(pageToken ? { pageToken } : {}) });
    answer = await get(`${path}${path.includes("?") ? "&" : "?"}${query}`);
    items.push(...(answer[field] || []));
    pageToken = answer.nextPageToken || "";
  } while (pageToken);
  return { ...answer, [field]: items };
}
export const post = (path, body = {}) => call("POST", path, body);
export const put = (path, body = {}) => call("PUT", path, body);
export const patch = (path, body = {}) => call("PATCH", path, body);
export const del = (path) => call("DELETE", path);

/** Streams a file into POST /v1/uploads; returns {uploadId, objectKey, sizeBytes, sha256}. */
export async function upload(file) {
  const query = new URLSearchParams({ filename: file.name, sizeBytes: String(file.size) });
  const response = await fetch(`/v1/uploads?${query}`, {
    method: "POST", body: file, headers: headers({ "Content-Type": "application/octet-stream" }),
  });
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** Reads a server stream as SSE: onMessage(data) per message; resolves at `end`, rejects on `error`. */
export async function stream(path, onMessage, signal) {
  const response = await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (name === "event") event = text;
        else if (name === "data") data.push(text);
      }
      if (!data.length) continue;
      const parsed = JSON.parse(data.join("\n"));
      if (event === "end") return;
      if (event === "error") throw new ApiError(0, parsed);
      onMessage(parsed);
    }
  }
}

/** The bytes of a server stream of {chunk: base64} messages (checkpoint and artifact downloads), as a Blob. */
export async function downloadBlob(path, type = "application/octet-stream") {
  const parts = [];
  await stream(path, (message) => {
    const text = atob(message.chunk || "");
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    parts.push(bytes);
  });
  return new Blob(parts, { type });
}

/** {id, role, authEnabled}: "anonymous" with auth off may write like "readwrite"; with auth on, nothing. */
export async function whoami() {
  return get("/v1/whoami");
}

export function needsToken(identity) {
  return identity.authEnabled && identity.role === "anonymous";
}

export function canWrite(identity) {
  if (identity?.role === "anonymous") return !identity.authEnabled;
  return ["readwrite", "admin"].includes(identity?.role);
}

/** Deletes and model load/unload need the admin role (or auth off). */
export function canAdmin(identity) {
  if (identity?.role === "anonymous") return !identity.authEnabled;
  return identity?.role === "admin";
}
