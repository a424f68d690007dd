// Charts with uPlot (pinned npm package, served from vendor/): line curves, bar histograms, time tracks.

const COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#8250df", "#bf8700", "#0a7d8c", "#cf222e"];

function width(container) {
  return Math.max(320, (container.clientWidth || container.parentElement?.clientWidth || 560) - 10);
}

/** A plottable number, or null (a gap): protobuf's JSON sends NaN and the infinities as the strings "NaN",
 * "Infinity", "-Infinity", and one such value must not blank a whole curve. */
export function plottable(value) {
  const number = typeof value === "string" ? Number(value) : value;
  return typeof number === "number" && Number.isFinite(number) ? number : null;
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
    update(x, columns) { plot.setData([x, ...columns.map((column) => column.map(plottable))]); },
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

/** One waveform trace with detection spans shaded and picks drawn as vertical lines (uPlot draw hook). */
export function waveform(container, title, [xs, ys], { spans = [], lines = [], time = true } = {},
  syncKey = "waveforms") {
  const mark = (u) => {
    const { ctx, bbox } = u;
    ctx.save();
    for (const [start, end, label] of spans) {
      const a = u.valToPos(start, "x", true), b = u.valToPos(end, "x", true);
      ctx.fillStyle = "rgba(209,36,47,0.15)";
      ctx.fillRect(a, bbox.top, Math.max(2, b - a), bbox.height);
      if (label) {
        ctx.fillStyle = "#9a1b24";
        ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
        ctx.fillText(label, a + 3, bbox.top + 12 * devicePixelRatio);
      }
    }
    for (const [t, color, label] of lines) {
      const x = u.valToPos(t, "x", true);
      ctx.strokeStyle = color;
      ctx.lineWidth = 2 * devicePixelRatio;
      ctx.beginPath();
      ctx.moveTo(x, bbox.top);
      ctx.lineTo(x, bbox.top + bbox.height);
      ctx.stroke();
      ctx.fillStyle = color;
      ctx.fillText(label, x + 3, bbox.top + bbox.height - 4 * devicePixelRatio);
    }
    ctx.restore();
  };
  const opts = {
    title, width: width(container), height: 150,
    scales: { x: { time } },
    cursor: { sync: { key: syncKey } },
    legend: { show: false },
    axes: [{}, { size: 90 }],
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    series: [{}, { label: title, stroke: "#24292f", width: 1, spanGaps: false, points: { show: false } }],
    hooks: { draw: [mark] },
  };
  return new uPlot(opts, [xs, ys], container);
}
