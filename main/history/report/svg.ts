/**
 * Charts as inline SVG text for the self-contained reports: no script, no external reference, sized by
 * viewBox so they scale with the page. Colours come from CSS variables set by the report's stylesheet.
 */

/** Text for an SVG/HTML text node or attribute. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export interface Bar {
  label: string;
  value: number | null;
  /** 'base' | 'better' | 'worse' | 'plain': the bar's colour class. */
  tone?: 'base' | 'better' | 'worse' | 'plain';
}

const fmt = (v: number): string => {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(3);
};

/** A round tick step (1, 2, 2.5 or 5 × 10^k) at or above `v`. */
function niceStep(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * Horizontal bars, one per run: label on the left, bar scaled to the largest value, value at its end.
 * Width 640; 28 px per bar. The axis starts at zero only when every value is positive and the spread is
 * wide; otherwise it spans the values' range so a 5 % change does not look flat.
 */
export function barChart(title: string, unit: string, bars: readonly Bar[]): string {
  const values = bars.map((b) => b.value).filter((v): v is number => v !== null && Number.isFinite(v));
  const width = 640;
  const left = 180;
  const right = 90;
  const row = 28;
  const top = 30;
  const height = top + row * bars.length + 24;
  const max = values.length ? Math.max(...values) : 1;
  const min = values.length ? Math.min(...values) : 0;
  // From zero unless the values sit close together; then from a round number a little below the smallest.
  const close = min > 0 && max > min && (max - min) / max < 0.3;
  const step = niceStep(close ? Math.max(max - min, max * 0.02) / 2 : Math.max(max, -Math.min(0, min)) / 4);
  const lo = close ? Math.floor((min - (max - min) * 0.5) / step) * step : Math.min(0, Math.floor(min / step) * step);
  const hi = Math.max(Math.ceil((max + (close ? (max - min) * 0.05 : 0)) / step) * step, lo + step);
  const span = hi - lo || 1;
  const x = (v: number): number => left + ((v - lo) / span) * (width - left - right);
  const parts: string[] = [
    `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(title)}">`,
    `<text class="title" x="0" y="16">${escapeXml(title)}${unit ? ` (${escapeXml(unit)})` : ''}</text>`,
  ];
  // Grid lines and their values first, under the bars.
  const axisY = top + row * bars.length + 4;
  for (let t = lo, k = 0; t <= hi + step / 2 && k < 12; t += step, k++) {
    const tx = x(t).toFixed(1);
    parts.push(`<line class="grid" x1="${tx}" y1="${top}" x2="${tx}" y2="${axisY}"/>`);
    parts.push(`<text class="tick" x="${tx}" y="${axisY + 14}" text-anchor="middle">${Number(t.toPrecision(4))}</text>`);
  }
  bars.forEach((b, i) => {
    const y = top + i * row;
    parts.push(`<text class="label" x="${left - 8}" y="${y + 17}" text-anchor="end">${escapeXml(b.label.length > 26 ? `${b.label.slice(0, 25)}…` : b.label)}</text>`);
    if (b.value === null || !Number.isFinite(b.value)) {
      parts.push(`<text class="value" x="${left + 4}" y="${y + 17}">—</text>`);
      return;
    }
    const w = Math.max(1, x(b.value) - left);
    parts.push(`<rect class="bar ${b.tone ?? 'plain'}" x="${left}" y="${y + 4}" width="${w.toFixed(1)}" height="${row - 8}" rx="2"/>`);
    parts.push(`<text class="value" x="${(left + w + 6).toFixed(1)}" y="${y + 17}">${fmt(b.value)}</text>`);
  });
  parts.push(`<line class="axis" x1="${left}" y1="${top}" x2="${left}" y2="${axisY}"/>`);
  parts.push('</svg>');
  return parts.join('');
}

export interface Line { name: string; values: readonly (number | null)[] }

/**
 * One polyline per run over the same x positions (weights in order), y from the smallest to the largest
 * value. Width 640, height 220; a legend below names the runs by colour (series-0 … series-7 classes).
 */
export function lineChart(title: string, unit: string, xLabels: readonly string[], lines: readonly Line[]): string {
  const width = 640;
  const height = 220;
  const pad = { left: 56, right: 12, top: 28, bottom: 28 };
  const all = lines.flatMap((l) => l.values).filter((v): v is number => v !== null && Number.isFinite(v));
  const lo = all.length ? Math.min(0, ...all) : 0;
  const hi = all.length ? Math.max(...all) : 1;
  const span = hi - lo || 1;
  const n = Math.max(1, xLabels.length - 1);
  const x = (i: number): number => pad.left + (i / n) * (width - pad.left - pad.right);
  const y = (v: number): number => height - pad.bottom - ((v - lo) / span) * (height - pad.top - pad.bottom);
  const legendRows = Math.ceil(lines.length / 3);
  const parts: string[] = [
    `<svg class="chart" viewBox="0 0 ${width} ${height + legendRows * 18}" role="img" aria-label="${escapeXml(title)}">`,
    `<text class="title" x="0" y="16">${escapeXml(title)}${unit ? ` (${escapeXml(unit)})` : ''}</text>`,
    `<line class="axis" x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${height - pad.bottom}"/>`,
    `<line class="axis" x1="${pad.left}" y1="${height - pad.bottom}" x2="${width - pad.right}" y2="${height - pad.bottom}"/>`,
    `<text class="tick" x="${pad.left - 4}" y="${pad.top + 4}" text-anchor="end">${fmt(hi)}</text>`,
    `<text class="tick" x="${pad.left - 4}" y="${height - pad.bottom}" text-anchor="end">${fmt(lo)}</text>`,
    `<text class="tick" x="${pad.left}" y="${height - pad.bottom + 16}">${escapeXml(xLabels[0] ?? '')}</text>`,
    `<text class="tick" x="${width - pad.right}" y="${height - pad.bottom + 16}" text-anchor="end">${escapeXml(xLabels.at(-1) ?? '')}</text>`,
  ];
  lines.forEach((l, k) => {
    // Gaps (null) split the line into runs of points.
    let d = '';
    let pen = false;
    l.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) { pen = false; return; }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    parts.push(`<path class="line series-${k % 8}" d="${d}"/>`);
    const lx = (k % 3) * 210;
    const ly = height + Math.floor(k / 3) * 18 + 10;
    parts.push(`<rect class="swatch series-${k % 8}" x="${lx}" y="${ly - 8}" width="12" height="4"/>`);
    parts.push(`<text class="label" x="${lx + 18}" y="${ly}">${escapeXml(l.name.length > 30 ? `${l.name.slice(0, 29)}…` : l.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
