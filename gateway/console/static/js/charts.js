// Charts with uPlot (pinned npm package, served from vendor/): line curves, bar histograms, time tracks.

const COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#8250df", "#bf8700", "#0a7d8c", "#cf222e"];

function width(container) {
  return Math.max(320, (container.clientWidth || container.parentElement?.clientWidth || 560) - 10);
}

/** A line chart over `x`; series: [{label, values}]; returns {update(x, series)}. */
export function lineChart(container, title, xLabel, seriesLabels) {
  const opts = {
    title, width: width(container), height: 240,
    scales: { x: { time: false } },
    axes: [{ label: xLabel }, {}],
    series: [{ label: xLabel }, ...seriesLabels.map((label, i) => ({
      label, stroke: COLORS[i % COLORS.length], width: 2, points: { show: true, size: 5 },
    }))],
  };
  const data = [[], ...seriesLabels.map(() => [])];
  const plot = new uPlot(opts, data, container);
  return {
    plot,
    update(x, columns) { plot.setData([x, ...columns]); },
  };
}

/** Bars: counts per bin between edges (magnitude histograms). */
export function histogram(container, title, edges, counts) {
  const centers = counts.map((_, i) => (edges[i] + edges[i + 1]) / 2);
  const opts = {
    title, width: width(container), height: 220,
    scales: { x: { time: false, range: [edges[0], edges[edges.length - 1]] } },
    axes: [{ label: "magnitude" }, { label: "windows" }],
    series: [{ label: "magnitude" }, {
      label: "windows", fill: "rgba(31,111,235,0.35)", stroke: COLORS[0],
      paths: uPlot.paths.bars({ size: [0.9, Infinity], align: 0 }), points: { show: false },
    }],
  };
  return new uPlot(opts, [centers, counts], container);
}

/** Detection probability tracks per station over time (seconds since the first detection's day start). */
export function detectionTracks(container, title, stations, detections) {
  const events = [];
  for (const d of detections) {
    const start = Date.parse(d.startTime) / 1000, end = Date.parse(d.endTime) / 1000;
    events.push([start, d.station, 0], [start, d.station, d.probability], [end, d.station, d.probability],
      [end, d.station, 0]);
  }
  const times = [...new Set(events.map((e) => e[0]))].sort((a, b) => a - b);
  const columns = stations.map((s) => times.map((t) => {
    let value = 0;
    for (const [et, es, ev] of events) if (es === s && et === t) value = Math.max(value, ev);
    return value;
  }));
  const opts = {
    title, width: width(container), height: 220,
    scales: { x: { time: true }, y: { range: [0, 1] } },
    axes: [{}, { label: "probability" }],
    series: [{ label: "time" }, ...stations.map((s, i) => ({
      label: s, stroke: COLORS[i % COLORS.length], width: 2, paths: uPlot.paths.stepped({ align: 1 }),
    }))],
  };
  return new uPlot(opts, [times, ...columns], container);
}
