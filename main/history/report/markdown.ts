/** The Markdown report: the same sections as the HTML one, as tables and fenced blocks (no charts). */
import type { LineageNode } from '../../../preload/contract.ts';
import { formatPercent, formatValue, type ReportData } from './model.ts';

/** A table cell: pipes escaped, line breaks as spaces. */
const cell = (text: string): string => text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

function table(head: readonly string[], rows: readonly (readonly string[])[], right: readonly number[] = []): string {
  const line = (cells: readonly string[]): string => `| ${cells.map(cell).join(' | ')} |`;
  const rule = `|${head.map((_, i) => (right.includes(i) ? ' ---: ' : ' --- ')).join('|')}|`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

function fence(text: string, lang = ''): string {
  const ticks = '`'.repeat(Math.max(3, ...[...text.matchAll(/`+/g)].map((m) => m[0].length + 1)));
  return `${ticks}${lang}\n${text}\n${ticks}`;
}

function tree(node: LineageNode, current: number, depth = 0): string[] {
  const here = node.kind !== 'model' && node.id === current;
  const label = node.kind === 'model' ? `${node.name} (original)` : `#${node.id} ${node.kind} · ${node.name}`;
  const headline = node.headline.map((m) => `${m.name.replace(/_/g, ' ')} ${formatValue(m.value, m.unit)}`).join(' · ');
  const text = `${'  '.repeat(depth)}- ${here ? `**${label}**` : label}${headline ? ` — ${headline}` : ''}`;
  return [text, ...node.children.flatMap((c) => tree(c, current, depth + 1))];
}

export function renderMarkdown(d: ReportData): string {
  const out: string[] = [`# ${d.title}`, '', `Whittle ${d.version} · report made ${d.generated.replace('T', ' ').slice(0, 19)} UTC`, ''];
  out.push('## Experiments', '', table(['', ...d.experiments.map((e) => `#${e.id}`)], [
    ['name', ...d.experiments.map((e) => e.name)],
    ['kind', ...d.experiments.map((e) => e.kind)],
    ['method', ...d.methods],
    ['status', ...d.experiments.map((e) => e.status)],
    ['created', ...d.experiments.map((e) => e.created.replace('T', ' ').slice(0, 19))],
    ['model', ...d.experiments.map((e) => `\`${e.modelPath}\``)],
    ['tags', ...d.experiments.map((e) => e.tags.join(', ') || '—')],
  ]), '');
  if (d.notes.length) out.push('## Like for like?', '', ...d.notes.map((n) => `> ${n.severity === 'warning' ? '**Not like for like:** ' : ''}${n.message.replace(/\r?\n/g, ' ')}`), '');
  out.push('## Metrics', '');
  if (d.metrics.length === 0) out.push('No metrics were recorded.', '');
  else {
    const rows = d.metrics.map((m) => [
      `${m.label}${m.direction ? ` (${m.direction} is better)` : ''}`,
      ...m.values.map((v, i) => {
        const pct = formatPercent(m.percent[i]);
        const mark = m.verdicts[i] === 'better' ? ' ✓' : m.verdicts[i] === 'worse' ? ' ✗' : '';
        return `${formatValue(v, m.unit)}${pct ? ` (${pct}${mark})` : ''}${m.comparable[i] ? '' : ' ≠'}`;
      }),
    ]);
    out.push(table(['metric', ...d.columns.map((c) => c.label)], rows, d.columns.map((_, i) => i + 1)), '',
      'Changes are against the first column (✓ better, ✗ worse; ≠ measured differently, not like for like).', '');
  }
  if (d.recipeDiff.length) {
    out.push('## Recipe differences', '', table(['recipe field', ...d.experiments.map((e) => `#${e.id}`)], d.recipeDiff.map((r) => [`\`${r.path}\``, ...r.values.map((v) => v ?? '—')])), '');
  }
  if (d.generations.length) {
    out.push('## Generations', '', table(['prompt', 'original', ...d.experiments.map((e) => `#${e.id}`)], d.generations.map((g) => [g.prompt, g.original ?? '—', ...g.texts.map((t) => t ?? '—')])), '');
  }
  if (d.lineage) out.push('## Lineage', '', ...tree(d.lineage.root, d.lineage.current), '');
  for (const e of d.experiments) {
    const of = d.experiments.length > 1 ? ` of #${e.id}` : '';
    if (e.notes.trim()) out.push(`## Notes${of}`, '', e.notes.trim(), '');
    if (e.error) out.push(`## Error${of}`, '', `${e.error.code}: ${e.error.message}`, '');
    out.push(`## Recipe${of}`, '', fence(JSON.stringify(e.recipe, null, 2), 'json'), '');
  }
  return `${out.join('\n').trimEnd()}\n`;
}
