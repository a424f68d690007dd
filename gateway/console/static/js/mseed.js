// A small miniSEED 2 reader for plotting the file a user annotates: fixed header, blockettes 1000/1001,
// and the common encodings (INT16, INT32, FLOAT32, FLOAT64, STEIM1, STEIM2). Gaps are kept (each
// record carries its own start time); the service, not this reader, decides what the data mean.

const ENCODINGS = { 1: "INT16", 3: "INT32", 4: "FLOAT32", 5: "FLOAT64", 10: "STEIM1", 11: "STEIM2" };

function text(bytes, start, length) {
  return String.fromCharCode(...bytes.subarray(start, start + length)).trim();
}

function sampleRate(factor, multiplier) {
  if (factor === 0) return 0;
  if (factor > 0 && multiplier >= 0) return factor * (multiplier || 1);
  if (factor > 0) return -factor / multiplier;
  if (multiplier > 0) return -multiplier / factor;
  return multiplier === 0 ? -1 / factor : 1 / (factor * multiplier);
}

function steim(view, offset, length, count, version, little) {
  const out = new Float64Array(count);
  const diffs = [];
  let x0 = 0;
  for (let frame = 0; frame * 64 < length && diffs.length < count + 1; frame++) {
    const base = offset + frame * 64;
    const control = view.getUint32(base, little);
    for (let w = 1; w < 16; w++) {
      const word = view.getUint32(base + 4 * w, little);
      const signed = view.getInt32(base + 4 * w, little);
      const nibble = (control >>> (30 - 2 * w)) & 3;
      if (frame === 0 && w === 1) { x0 = signed; continue; }
      if (frame === 0 && w === 2) continue; // Xn, the last sample (a check we do not need)
      if (nibble === 0) continue;
      if (nibble === 1) {
        for (let k = 0; k < 4; k++) diffs.push(view.getInt8(base + 4 * w + k));
      } else if (version === 1) {
        if (nibble === 2) { diffs.push(view.getInt16(base + 4 * w, little), view.getInt16(base + 4 * w + 2, little)); }
        else diffs.push(signed);
      } else {
        const dnib = word >>> 30;
        const [n, bits] = nibble === 2 ? [[0, 0], [1, 30], [2, 15], [3, 10]][dnib]
          : [[5, 6], [6, 5], [7, 4], [0, 0]][dnib];
        for (let k = n - 1; k >= 0; k--) {
          const raw = (word >>> (k * bits)) & ((1 << bits) - 1);
          diffs.push(raw >= 1 << (bits - 1) ? raw - (1 << bits) : raw);
        }
      }
    }
  }
  let value = x0;
  for (let i = 0; i < count; i++) {
    if (i > 0) value += diffs[i];
    out[i] = value;
  }
  return out;
}

function samples(view, offset, length, count, encoding, little) {
  const out = new Float64Array(count);
  switch (encoding) {
    case 1: for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 2 * i, little); return out;
    case 3: for (let i = 0; i < count; i++) out[i] = view.getInt32(offset + 4 * i, little); return out;
    case 4: for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, little); return out;
    case 5: for (let i = 0; i < count; i++) out[i] = view.getFloat64(offset + 8 * i, little); return out;
    case 10: return steim(view, offset, length, count, 1, little);
    case 11: return steim(view, offset, length, count, 2, little);
    default: throw new Error(`miniSEED encoding ${encoding} is not supported here (${Object.values(ENCODINGS).join(", ")})`);
  }
}

/** Traces of a miniSEED file: [{id, rate, segments: [{start (s since epoch), data: Float64Array}]}]. */
export function readMiniSeed(buffer) {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  const traces = new Map();
  let at = 0;
  while (at + 48 <= bytes.length) {
    const little = !(view.getUint16(at + 20, false) >= 1900 && view.getUint16(at + 20, false) <= 2100);
    const id = [text(bytes, at + 18, 2), text(bytes, at + 8, 5), text(bytes, at + 13, 2), text(bytes, at + 15, 3)]
      .join(".");
    const year = view.getUint16(at + 20, little), day = view.getUint16(at + 22, little);
    let start = Date.UTC(year, 0, day, bytes[at + 24], bytes[at + 25], bytes[at + 26]) / 1000
      + view.getUint16(at + 28, little) / 1e4;
    const count = view.getUint16(at + 30, little);
    const rate = sampleRate(view.getInt16(at + 32, little), view.getInt16(at + 34, little));
    if (!(bytes[at + 36] & 0x02)) start += view.getInt32(at + 40, little) / 1e4; // correction not yet applied
    const dataOffset = view.getUint16(at + 44, little);
    let next = view.getUint16(at + 46, little);
    let encoding = null, recordLength = null, wordLittle = little;
    while (next && next < 4096) {
      const type = view.getUint16(at + next, little);
      if (type === 1000) {
        encoding = bytes[at + next + 4];
        wordLittle = bytes[at + next + 5] === 0;
        recordLength = 2 ** bytes[at + next + 6];
      } else if (type === 1001) {
        start += view.getInt8(at + next + 5) / 1e6;
      }
      const following = view.getUint16(at + next + 2, little);
      if (following <= next) break;
      next = following;
    }
    if (!recordLength) throw new Error(`record at byte ${at} has no blockette 1000 (record length and encoding)`);
    if (count && rate > 0) {
      const data = samples(view, at + dataOffset, recordLength - dataOffset, count, encoding, wordLittle);
      if (!traces.has(id)) traces.set(id, { id, rate, segments: [] });
      traces.get(id).segments.push({ start, data });
    }
    at += recordLength;
  }
  for (const trace of traces.values()) trace.segments.sort((a, b) => a.start - b.start);
  return [...traces.values()];
}

/** At most ~2*buckets points (min and max per bucket) over the whole trace, for drawing. */
export function envelope(trace, buckets = 2000) {
  const total = trace.segments.reduce((n, s) => n + s.data.length, 0);
  const per = Math.max(1, Math.ceil(total / buckets));
  const xs = [], ys = [];
  for (const { start, data } of trace.segments) {
    for (let i = 0; i < data.length; i += per) {
      let lo = Infinity, hi = -Infinity, iLo = i, iHi = i;
      for (let j = i; j < Math.min(i + per, data.length); j++) {
        if (data[j] < lo) { lo = data[j]; iLo = j; }
        if (data[j] > hi) { hi = data[j]; iHi = j; }
      }
      for (const k of iLo === iHi ? [iLo] : iLo < iHi ? [iLo, iHi] : [iHi, iLo]) {
        xs.push(start + k / trace.rate);
        ys.push(data[k]);
      }
    }
    xs.push(start + data.length / trace.rate);
    ys.push(null); // a gap between segments stays a gap
  }
  return [xs, ys];
}
