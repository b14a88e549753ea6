/**
 * The CSV report: one row per experiment and metric (long format, RFC 4180 quoting), every subject kept
 * (the original's numbers beside the result's), so a spreadsheet can pivot it any way.
 */
import type { ExperimentDetail } from '../../../preload/contract.ts';

export const CSV_COLUMNS = ['experiment', 'name', 'kind', 'status', 'created', 'model', 'tags', 'metric', 'subject', 'value', 'unit'] as const;

function quote(v: string | number | null): string {
  if (v === null) return '';
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : v;
  // A leading = + - @ would be read as a formula by spreadsheets: quoted with a leading apostrophe.
  const safe = typeof v === 'string' && /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) || safe !== s ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function renderCsv(experiments: readonly ExperimentDetail[]): string {
  const rows: string[] = [CSV_COLUMNS.join(',')];
  for (const e of experiments) {
    const base = [e.id, e.name, e.kind, e.status, e.created, e.modelPath, e.tags.join(' ')];
    if (e.metrics.length === 0) rows.push([...base, null, null, null, null].map(quote).join(','));
    for (const m of e.metrics) rows.push([...base, m.name, m.subject, Number.isFinite(m.value) ? m.value : null, m.unit].map(quote).join(','));
  }
  return `${rows.join('\r\n')}\r\n`;
}
