// A catalog's CSV files read in the page, and its events drawn as an SVG scatter of longitude/latitude.

import { el } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";

/** Rows of a CSV file (the catalog writer's: a header line, commas, quotes only around text with commas). */
export function parseCsv(text) {
  const lines = text.split(/\r?\n/).filter((line) => line.length);
  if (!lines.length) return [];
  const split = (line) => {
    const out = [];
    let cell = "";
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (quoted && c === '"' && line[i + 1] === '"') { cell += '"'; i++; }
      else if (c === '"') quoted = !quoted;
      else if (c === "," && !quoted) { out.push(cell); cell = ""; }
      else cell += c;
    }
    out.push(cell);
    return out;
  };
  const header = split(lines[0]);
  return lines.slice(1).map((line) => Object.fromEntries(split(line).map((v, i) => [header[i], v])));
}

function node(tag, attrs = {}, text = "") {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text) n.textContent = text;
  return n;
}

/**
 * Events (and stations, when given with coordinates) on a lon/lat plane, one circle per event sized by magnitude.
 * points: [{lon, lat, label, kind: "event"|"station", magnitude}].
 */
export function scatterMap(points, attrs = {}) {
  const width = 640, height = 420, pad = 40;
  const svg = node("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "map", role: "img" });
  for (const [k, v] of Object.entries(attrs)) svg.setAttribute(k, v);
  const placed = points.filter((p) => Number.isFinite(p.lon) && Number.isFinite(p.lat));
  svg.dataset.points = String(placed.filter((p) => p.kind === "event").length);
  if (!placed.length) return el("p", { class: "muted", ...attrs }, "No located event to draw.");
  const lons = placed.map((p) => p.lon), lats = placed.map((p) => p.lat);
  const span = (values) => { const lo = Math.min(...values), hi = Math.max(...values), m = Math.max((hi - lo) * 0.1, 0.05);
    return [lo - m, hi + m]; };
  const [x0, x1] = span(lons), [y0, y1] = span(lats);
  const x = (lon) => pad + (lon - x0) / (x1 - x0) * (width - 2 * pad);
  const y = (lat) => height - pad - (lat - y0) / (y1 - y0) * (height - 2 * pad);
  svg.append(node("rect", { x: pad, y: pad, width: width - 2 * pad, height: height - 2 * pad, fill: "#fbfcfd",
    stroke: "#d7dde4" }));
  for (const [value, where] of [[x0, "start"], [x1, "end"]]) {
    svg.append(node("text", { x: x(value), y: height - pad + 16, "text-anchor": where, "font-size": 11,
      fill: "#5d6b7a" }, `${value.toFixed(2)}°`));
  }
  for (const value of [y0, y1]) {
    svg.append(node("text", { x: pad - 4, y: y(value), "text-anchor": "end", "font-size": 11, fill: "#5d6b7a" },
      `${value.toFixed(2)}°`));
  }
  svg.append(node("text", { x: width / 2, y: height - 6, "text-anchor": "middle", "font-size": 12 }, "longitude"));
  svg.append(node("text", { x: 12, y: height / 2, "font-size": 12, transform: `rotate(-90 12 ${height / 2})`,
    "text-anchor": "middle" }, "latitude"));
  for (const p of placed) {
    const mark = p.kind === "station"
      ? node("path", { d: `M${x(p.lon)},${y(p.lat) - 7} l6,11 h-12 z`, fill: "#137333", class: "station" })
      : node("circle", { cx: x(p.lon), cy: y(p.lat), r: 3 + 2 * Math.max(0, Number.isFinite(p.magnitude) ? p.magnitude : 0),
        fill: "#1f6feb", "fill-opacity": 0.6, stroke: "#0d1b2a", class: "event" });
    mark.append(node("title", {}, p.label));
    svg.append(mark);
  }
  return svg;
}
