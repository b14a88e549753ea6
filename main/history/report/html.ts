/**
 * The HTML report: one file with its stylesheet and charts inline (SVG), no script and no reference to
 * anything outside it, so it opens offline and can be mailed. Light and dark colour schemes follow the
 * reader's system.
 */
import type { LineageNode } from '../../../preload/contract.ts';
import { barChart, escapeXml as esc, lineChart, type Bar } from './svg.ts';
import { formatPercent, formatValue, type ReportData, type ReportMetric } from './model.ts';

const STYLE = `
:root { color-scheme: light dark; --fg: #1d2330; --muted: #5f6b7a; --bg: #ffffff; --line: #d8dde4; --panel: #f5f7fa;
  --base: #7d8896; --plain: #4c6ef5; --better: #2b8a3e; --worse: #c92a2a;
  --s0: #4c6ef5; --s1: #e8590c; --s2: #2b8a3e; --s3: #ae3ec9; --s4: #1098ad; --s5: #f59f00; --s6: #d6336c; --s7: #495057; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ef; --muted: #a3acb9; --bg: #16181d; --line: #343a46; --panel: #1f232b;
  --base: #8d98a7; --plain: #748ffc; --better: #51cf66; --worse: #ff6b6b;
  --s0: #748ffc; --s1: #ff922b; --s2: #51cf66; --s3: #da77f2; --s4: #3bc9db; --s5: #ffd43b; --s6: #f783ac; --s7: #ced4da; } }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); margin: 0; padding: 24px 32px 48px; max-width: 1100px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.meta { color: var(--muted); margin-bottom: 16px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
th { background: var(--panel); font-weight: 600; }
tr > th:first-child { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.better { color: var(--better); } .worse { color: var(--worse); } .muted { color: var(--muted); }
.note { background: var(--panel); border-left: 3px solid var(--worse); padding: 6px 10px; margin: 6px 0; }
.note.info { border-left-color: var(--base); }
pre { background: var(--panel); padding: 10px; overflow: auto; font-size: 12px; max-height: 420px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 16px; }
svg.chart { width: 100%; height: auto; }
svg .title { font-size: 13px; font-weight: 600; fill: var(--fg); }
svg .label, svg .value { font-size: 12px; fill: var(--fg); } svg .tick { font-size: 11px; fill: var(--muted); }
svg .axis { stroke: var(--line); } svg .grid { stroke: var(--line); stroke-dasharray: 2 3; opacity: 0.7; }
svg .bar.base { fill: var(--base); } svg .bar.plain { fill: var(--plain); } svg .bar.better { fill: var(--better); } svg .bar.worse { fill: var(--worse); }
svg .line { fill: none; stroke-width: 1.5; }
${[0, 1, 2, 3, 4, 5, 6, 7].map((k) => `svg .line.series-${k} { stroke: var(--s${k}); } svg .swatch.series-${k} { fill: var(--s${k}); }`).join('\n')}
ul.tree, ul.tree ul { list-style: none; padding-left: 18px; margin: 2px 0; } ul.tree { padding-left: 0; }
ul.tree li { margin: 2px 0; } ul.tree ul li::before { content: "└ "; color: var(--muted); }
.current { font-weight: 700; background: var(--panel); padding: 0 4px; }
.tag { display: inline-block; border: 1px solid var(--line); border-radius: 10px; padding: 0 8px; margin-right: 4px; font-size: 12px; }
@media print { body { padding: 0; } pre { max-height: none; } }
`;

/** The headline metrics, charted first (then any other metric the runs share). */
const CHARTED = ['perplexity', 'kl_mean', 'top1_agreement', 'bytes_on_disk', 'bits_per_weight', 'decode_tokens_per_s', 'prefill_ms', 'accuracy', 'peak_memory_bytes'];

function metricCell(m: ReportMetric, i: number): string {
  const value = formatValue(m.values[i], m.unit);
  const pct = formatPercent(m.percent[i]);
  const verdict = m.verdicts[i];
  const cls = verdict === 'better' || verdict === 'worse' ? ` ${verdict}` : '';
  const caveat = m.comparable[i] ? '' : ' <span class="muted" title="measured differently from the baseline">≠</span>';
  return `<td class="num${cls}">${esc(value)}${pct ? ` <small>${esc(pct)}</small>` : ''}${caveat}</td>`;
}

function metricsTable(d: ReportData): string {
  if (d.metrics.length === 0) return '<p class="muted">No metrics were recorded.</p>';
  const head = `<tr><th>metric</th>${d.columns.map((c) => `<th>${esc(c.label)}</th>`).join('')}</tr>`;
  const rows = d.metrics.map((m) => `<tr><td>${esc(m.label)}${m.direction ? ` <span class="muted">(${m.direction} is better)</span>` : ''}</td>${m.values.map((_, i) => metricCell(m, i)).join('')}</tr>`);
  return `<table>${head}${rows.join('')}</table><p class="muted">Changes are against the first column; green is better, red is worse; ≠ marks a change measured differently (not like for like).</p>`;
}

function charts(d: ReportData): string {
  const chosen = [...d.metrics].filter((m) => m.values.filter((v) => v !== null).length >= 1)
    .sort((a, b) => (CHARTED.indexOf(a.name) + 1 || 99) - (CHARTED.indexOf(b.name) + 1 || 99))
    .filter((m) => CHARTED.includes(m.name))
    .slice(0, 6);
  const bars = chosen.map((m) => barChart(m.label, m.unit === 'bytes' ? 'MiB' : m.unit, d.columns.map((_, i): Bar => ({
    label: d.columns[i].label,
    value: m.values[i] === null ? null : m.unit === 'bytes' ? m.values[i]! / 1048576 : m.values[i],
    tone: i === 0 ? 'base' : m.verdicts[i] === 'better' ? 'better' : m.verdicts[i] === 'worse' ? 'worse' : 'plain',
  }))));
  const lines = d.series.map((s) => lineChart(s.label, s.unit, s.weights, s.ids.map((id, k) => ({
    name: `#${id} ${d.experiments.find((e) => e.id === id)?.name ?? ''}`, values: s.values[k],
  }))));
  const all = [...bars, ...lines];
  return all.length ? `<h2>Charts</h2><div class="charts">${all.map((c) => `<figure style="margin:0">${c}</figure>`).join('')}</div>` : '';
}

function facts(d: ReportData): string {
  const head = `<tr><th></th>${d.experiments.map((e) => `<th>#${e.id}</th>`).join('')}</tr>`;
  const row = (label: string, cells: string[]): string => `<tr><th>${esc(label)}</th>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
  return `<table>${head}${[
    row('name', d.experiments.map((e) => esc(e.name))),
    row('kind', d.experiments.map((e) => esc(e.kind))),
    row('method', d.methods.map((m) => esc(m))),
    row('status', d.experiments.map((e) => esc(e.status))),
    row('created', d.experiments.map((e) => esc(e.created.replace('T', ' ').slice(0, 19)))),
    row('duration', d.experiments.map((e) => (e.durationMs === null ? '—' : esc(`${(e.durationMs / 1000).toFixed(1)} s`)))),
    row('model', d.experiments.map((e) => `<code>${esc(e.modelPath)}</code>`)),
    row('model sha256', d.experiments.map((e) => `<code>${esc(e.modelSha256 ?? '—')}</code>`)),
    row('tags', d.experiments.map((e) => e.tags.map((t) => `<span class="tag">${esc(t)}</span>`).join('') || '<span class="muted">—</span>')),
  ].join('')}</table>`;
}

function lineageList(node: LineageNode, current: number): string {
  const here = node.kind !== 'model' && node.id === current;
  const label = node.kind === 'model' ? `${node.name} (original)` : `#${node.id} ${node.kind} · ${node.name}`;
  const headline = node.headline.map((m) => `${m.name.replace(/_/g, ' ')} ${formatValue(m.value, m.unit)}`).join(' · ');
  const kids = node.children.length ? `<ul>${node.children.map((c) => lineageList(c, current)).join('')}</ul>` : '';
  return `<li><span${here ? ' class="current"' : ''}>${esc(label)}</span>${headline ? ` <span class="muted">${esc(headline)}</span>` : ''}${kids}</li>`;
}

export function renderHtml(d: ReportData): string {
  const parts: string[] = [
    '<!doctype html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    // Nothing may be fetched: no scripts, styles, fonts or images from anywhere.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    `<title>${esc(d.title)}</title>`, `<style>${STYLE}</style>`, '</head>', '<body>',
    `<h1>${esc(d.title)}</h1>`,
    `<div class="meta">Whittle ${esc(d.version)} · report made ${esc(d.generated.replace('T', ' ').slice(0, 19))} UTC</div>`,
    '<h2>Experiments</h2>', facts(d),
  ];
  if (d.notes.length) {
    parts.push('<h2>Like for like?</h2>', ...d.notes.map((n) => `<div class="note ${n.severity}">${esc(n.message)}</div>`));
  }
  parts.push('<h2>Metrics</h2>', metricsTable(d), charts(d));
  if (d.recipeDiff.length) {
    const head = `<tr><th>recipe field</th>${d.experiments.map((e) => `<th>#${e.id}</th>`).join('')}</tr>`;
    const rows = d.recipeDiff.map((r) => `<tr><td><code>${esc(r.path)}</code></td>${r.values.map((v) => `<td><code>${esc(v ?? '—')}</code></td>`).join('')}</tr>`);
    parts.push('<h2>Recipe differences</h2>', `<table>${head}${rows.join('')}</table>`);
  }
  if (d.generations.length) {
    const head = `<tr><th>prompt</th><th>original</th>${d.experiments.map((e) => `<th>#${e.id}</th>`).join('')}</tr>`;
    const rows = d.generations.map((g) => `<tr><td>${esc(g.prompt)}</td><td>${esc(g.original ?? '—')}</td>${g.texts.map((t) => `<td>${esc(t ?? '—')}</td>`).join('')}</tr>`);
    parts.push('<h2>Generations</h2>', `<table>${head}${rows.join('')}</table>`);
  }
  if (d.lineage) parts.push('<h2>Lineage</h2>', `<ul class="tree">${lineageList(d.lineage.root, d.lineage.current)}</ul>`);
  for (const e of d.experiments) {
    const title = d.experiments.length > 1 ? ` of #${e.id}` : '';
    if (e.notes.trim()) parts.push(`<h2>Notes${title}</h2>`, `<pre>${esc(e.notes)}</pre>`);
    if (e.error) parts.push(`<h2>Error${title}</h2>`, `<div class="note">${esc(`${e.error.code}: ${e.error.message}`)}</div>`);
    parts.push(`<h2>Recipe${title}</h2>`, `<pre>${esc(JSON.stringify(e.recipe, null, 2))}</pre>`);
    if (e.artefacts.length) {
      parts.push(`<h2>Artefacts${title}</h2>`, `<table><tr><th>kind</th><th>path</th><th>size</th></tr>${e.artefacts.map((a) => `<tr><td>${esc(a.kind)}</td><td><code>${esc(a.path)}</code></td><td class="num">${esc(formatValue(a.bytes, 'bytes'))}</td></tr>`).join('')}</table>`);
    }
    if (d.experiments.length === 1 && e.log.length) {
      const tail = e.log.slice(-200);
      parts.push(`<h2>Log${e.log.length > tail.length ? ` (last ${tail.length} of ${e.log.length} lines)` : ''}</h2>`, `<pre>${esc(tail.map((l) => `${l.time.slice(11, 19)} ${l.level.padEnd(5)} ${l.text}`).join('\n'))}</pre>`);
    }
  }
  parts.push('</body>', '</html>', '');
  return parts.join('\n');
}
