/** `whittle history compare <id…> [--baseline ID]`: experiments side by side, as the Compare page shows them. */
import type { ComparedMetric, Comparison, MetricCell } from '../../preload/comparison.ts';
import { COMPARE_MAX, COMPARE_MIN } from '../../preload/comparison.ts';
import { UsageError, type OptionValues } from './args.ts';
import { formatMetric, metricLabel, renderTable } from './format.ts';
import { parseId } from './history.ts';
import { EXIT_OK, type Output } from './output.ts';
import { openSession } from './session.ts';

function signed(x: number, digits: number): string {
  const s = Math.abs(x).toFixed(digits);
  return `${x < 0 ? '−' : '+'}${s}`;
}

function cellText(metric: ComparedMetric, cell: MetricCell, baseline: number): string {
  if (cell.value === null) return '—';
  const value = formatMetric({ value: cell.value, unit: metric.unit });
  if (cell.id === baseline || cell.difference === null) return value;
  const change = cell.percent !== null ? `${signed(cell.percent, Math.abs(cell.percent) < 10 ? 1 : 0)} %` : signed(cell.difference, 3);
  const verdict = cell.verdict === 'better' ? ' better' : cell.verdict === 'worse' ? ' worse' : cell.verdict === 'within-spread' ? ' ≈' : '';
  return `${value} (${change}${verdict})${cell.comparable ? '' : ' ≠'}`;
}

export function comparisonText(c: Comparison): string {
  const parts: string[] = [];
  const tag = (id: number): string => `#${id}${id === c.baseline ? ' (baseline)' : ''}`;
  parts.push(renderTable([
    ['', 'name', 'kind', 'method', 'model'],
    ...c.experiments.map((e) => [tag(e.id), e.name, e.kind, e.method, e.modelPath]),
  ], { header: true }));

  const metrics = c.metrics.filter((m) => !/_(min|max)$/.test(m.name));
  if (metrics.length > 0) {
    parts.push(renderTable([
      ['metric', ...c.ids.map(tag)],
      ...metrics.map((m) => [metricLabel(m.name), ...m.cells.map((cell) => cellText(m, cell, c.baseline))]),
    ], { header: true }));
  } else {
    parts.push('None of these experiments measured a metric.\n');
  }

  if (c.recipeDiff.length > 0) {
    parts.push(`recipe differences:\n${renderTable([
      ['path', ...c.ids.map((id) => `#${id}`)],
      ...c.recipeDiff.map((d) => [d.path, ...d.values.map((v) => (v === null ? '—' : v.length > 48 ? `${v.slice(0, 47)}…` : v))]),
    ], { header: true })}`);
  } else {
    parts.push('The recipes are the same.\n');
  }

  if (c.notes.length > 0) {
    const lines = c.notes.map((n) => {
      const groups = n.groups.map((g) => `    ${g.ids.map((id) => `#${id}`).join(', ')}: ${g.value}`).join('\n');
      return `  ${n.severity === 'warning' ? '!' : 'i'} ${n.message}\n${groups}`;
    });
    parts.push(`comparability:\n${lines.join('\n')}\n`);
  } else {
    parts.push('comparability: every run was measured the same way.\n');
  }

  if (c.generations.length > 0) {
    const lines = c.generations.map((g) => [
      `  "${g.prompt}"`,
      ...(g.original !== null ? [`    original: ${g.original.replace(/\s+/g, ' ').trim()}`] : []),
      ...g.texts.map((t, i) => `    #${c.ids[i]}: ${t === null ? '—' : t.replace(/\s+/g, ' ').trim()}`),
    ].join('\n'));
    parts.push(`generations:\n${lines.join('\n')}\n`);
  }
  return parts.join('\n');
}

export async function runCompare(positionals: string[], o: OptionValues, out: Output, home: string | undefined): Promise<number> {
  const ids = positionals.map(parseId);
  if (ids.length < COMPARE_MIN || ids.length > COMPARE_MAX) {
    throw new UsageError(`\`whittle history compare\` takes ${COMPARE_MIN} to ${COMPARE_MAX} experiment ids; ${ids.length} given.`);
  }
  const baseline = typeof o.baseline === 'number' ? o.baseline : undefined;
  const session = await openSession({ home, transport: 'memory', needsEngine: false, out });
  try {
    const comparison = await session.call('history.compare', { ids, ...(baseline !== undefined ? { baseline } : {}) });
    out.result(comparison, comparisonText(comparison));
    return EXIT_OK;
  } finally {
    await session.close();
  }
}
