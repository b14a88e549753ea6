/**
 * How metrics are named, ordered and printed. Unknown metrics still show, with their raw name and unit.
 */
import type { Metric } from '../../preload/contract.ts';
import { formatBytes, formatCount, formatDecimal, formatDuration, formatInteger } from './format.ts';

interface MetricInfo { label: string; format?: (value: number) => string }

const KNOWN: Record<string, MetricInfo> = {
  perplexity: { label: 'Perplexity', format: (v) => formatDecimal(v, 4) },
  accuracy: { label: 'Accuracy', format: (v) => `${formatDecimal(100 * v, 2)} %` },
  macro_f1: { label: 'Macro-F1', format: (v) => formatDecimal(v, 4) },
  accuracy_examples: { label: 'Examples scored', format: formatInteger },
  nll: { label: 'Mean NLL', format: (v) => formatDecimal(v, 4) },
  predicted_tokens: { label: 'Predicted tokens', format: formatInteger },
  documents: { label: 'Documents', format: formatInteger },
  windows: { label: 'Windows', format: formatInteger },
  tokens_per_s: { label: 'Evaluation speed' },
  eval_tokens_per_s: { label: 'Evaluation speed' },
  prefill_ms: { label: 'Prefill' },
  prefill_tokens: { label: 'Prompt tokens', format: formatInteger },
  decode_tokens: { label: 'Decoded tokens', format: formatInteger },
  eval_seconds: { label: 'Evaluation time' },
  decode_tokens_per_s: { label: 'Decode speed' },
  decode_tokens_per_s_min: { label: 'Decode speed, slowest run' },
  decode_tokens_per_s_max: { label: 'Decode speed, fastest run' },
  prefill_ms_min: { label: 'Prefill, fastest run' },
  prefill_ms_max: { label: 'Prefill, slowest run' },
  speed_repeats: { label: 'Timed runs', format: formatInteger },
  speed_threads: { label: 'Threads', format: formatInteger },
  decode_ms_per_token: { label: 'Decode latency' },
  bytes_on_disk: { label: 'Size on disk' },
  bytes_compressed: { label: 'Size compressed' },
  parameters: { label: 'Parameters', format: formatCount },
  bits_per_weight: { label: 'Bits per weight', format: (v) => formatDecimal(v, 2) },
  threads: { label: 'Threads', format: formatInteger },
  kl_mean: { label: 'Mean KL vs original', format: (v) => formatDecimal(v, 5) },
  top1_agreement: { label: 'Top-1 agreement' },
  peak_memory_bytes: { label: 'Peak memory' },
  duration_ms: { label: 'Duration' },
};

/** Display order: quality first, then speed, then footprint; anything else after, alphabetically. */
const ORDER = [
  'accuracy', 'macro_f1', 'accuracy_examples', 'perplexity', 'nll', 'predicted_tokens', 'documents', 'windows', 'kl_mean', 'top1_agreement',
  'tokens_per_s', 'eval_tokens_per_s', 'eval_seconds', 'prefill_ms', 'prefill_ms_min', 'prefill_ms_max', 'prefill_tokens',
  'decode_tokens_per_s', 'decode_tokens_per_s_min', 'decode_tokens_per_s_max', 'decode_tokens',
  'decode_ms_per_token', 'speed_repeats', 'speed_threads', 'threads',
  'bytes_on_disk', 'bytes_compressed', 'parameters', 'bits_per_weight', 'peak_memory_bytes', 'duration_ms',
];

export function metricLabel(name: string): string {
  const known = KNOWN[name];
  if (known) return known.label;
  const words = name.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function formatMetric(m: Pick<Metric, 'name' | 'value' | 'unit'>): string {
  const known = KNOWN[m.name];
  if (known?.format) return known.format(m.value);
  switch (m.unit) {
    case 'bytes': return formatBytes(m.value);
    case 'ms': return m.value < 1000 ? `${formatDecimal(m.value, m.value < 10 ? 2 : 1)} ms` : formatDuration(m.value);
    case 's': return formatDuration(m.value * 1000);
    case 'tokens/s': return `${formatDecimal(m.value, m.value < 100 ? 1 : 0)} tok/s`;
    case '%': return `${formatDecimal(m.value, 2)} %`;
    case 'bits': return `${formatDecimal(m.value, 2)} bits`;
    case '': return formatDecimal(m.value);
    default: return `${formatDecimal(m.value)} ${m.unit}`;
  }
}

function rank(name: string): number {
  const i = ORDER.indexOf(name);
  return i >= 0 ? i : ORDER.length;
}

const SUBJECTS = ['model', 'original', 'result'];

export function sortMetrics<T extends Pick<Metric, 'name' | 'subject'>>(metrics: readonly T[]): T[] {
  return [...metrics].sort((a, b) =>
    rank(a.name) - rank(b.name) || a.name.localeCompare(b.name) || SUBJECTS.indexOf(a.subject) - SUBJECTS.indexOf(b.subject));
}

/** The data-testid of a metric's value: `metric-perplexity`, or `metric-perplexity-original` in a comparison. */
export function metricTestId(m: Pick<Metric, 'name' | 'subject'>): string {
  return m.subject === 'model' || m.subject === '' ? `metric-${m.name}` : `metric-${m.name}-${m.subject}`;
}
