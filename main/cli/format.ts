/** Numbers, sizes, durations and aligned tables for the CLI's human output. */
import type { Metric } from '../../preload/contract.ts';
import { formatBytes } from '../../preload/units.ts';

export { formatBytes };

export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  if (Math.abs(n) >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

/** A measured value with 4 significant digits (integers stay whole). */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  const magnitude = Math.abs(value);
  if (magnitude >= 1000) return value.toFixed(0);
  if (magnitude >= 1) return value.toFixed(Math.max(0, 3 - Math.floor(Math.log10(magnitude))));
  return value.toPrecision(4);
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** A metric as people read it: value and unit, bytes humanised, counts grouped. */
export function formatMetric(m: Pick<Metric, 'value' | 'unit'>): string {
  if (m.unit === 'bytes') return formatBytes(m.value);
  if (!Number.isFinite(m.value)) return '—';
  if (m.unit === 'tokens' || m.unit === 'bits' || m.unit === '') {
    return Number.isInteger(m.value) ? m.value.toLocaleString('en-US') : formatNumber(m.value);
  }
  const value = Math.abs(m.value) >= 1000 ? m.value.toLocaleString('en-US', { maximumFractionDigits: 0 }) : formatNumber(m.value);
  return `${value} ${m.unit}`;
}

const LABELS: Record<string, string> = {
  perplexity: 'perplexity',
  predicted_tokens: 'predicted tokens',
  eval_tokens_per_s: 'evaluation speed',
  eval_seconds: 'evaluation time',
  prefill_ms: 'prefill time',
  prefill_tokens: 'prefill tokens',
  decode_tokens_per_s: 'decode speed',
  decode_tokens_per_s_min: 'decode speed, slowest run',
  decode_tokens_per_s_max: 'decode speed, fastest run',
  prefill_ms_min: 'prefill time, fastest run',
  prefill_ms_max: 'prefill time, slowest run',
  speed_repeats: 'timed runs',
  speed_threads: 'threads',
  bytes_on_disk: 'size on disk',
  bytes_compressed: 'size compressed',
  bits_per_weight: 'bits per weight',
  kl_mean: 'KL(original ‖ result)',
  top1_agreement: 'top-1 agreement',
  accuracy: 'accuracy',
  macro_f1: 'macro-F1',
  accuracy_examples: 'examples scored',
};

/** 'decode_tokens_per_s' → 'decode speed'; unknown names with their underscores as spaces. */
export function metricLabel(name: string): string {
  return LABELS[name] ?? name.replace(/_/g, ' ');
}

/** Rows of cells as an aligned plain-text table; the first row is the header when `header` is set. */
export function renderTable(rows: readonly (readonly string[])[], options: { header?: boolean; rightAlign?: readonly number[] } = {}): string {
  if (rows.length === 0) return '';
  const columns = Math.max(...rows.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const right = new Set(options.rightAlign ?? []);
  const lines = rows.map((row) => widths
    .map((w, c) => (right.has(c) ? (row[c] ?? '').padStart(w) : (row[c] ?? '').padEnd(w)))
    .join('  ')
    .trimEnd());
  if (options.header) lines.splice(1, 0, widths.map((w) => '─'.repeat(w)).join('  '));
  return `${lines.join('\n')}\n`;
}

/** Two columns, label and value: the summary block of one experiment or model. */
export function renderFacts(facts: readonly (readonly [string, string])[]): string {
  return renderTable(facts.map(([k, v]) => [k, v]));
}

export function shortDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
