/**
 * Which way is better for a metric: the one place that knows it. Comparisons (history compare, the
 * Pareto view, reports) colour a change green or red by this; a metric without a direction (a count, a
 * setting such as the threads used) is shown without a verdict.
 * This file depends on nothing, so that main, preload and renderer can all share it.
 */

export type MetricDirection = 'lower' | 'higher';

/** Known metrics by name. */
const DIRECTIONS: Readonly<Record<string, MetricDirection | null>> = {
  perplexity: 'lower',
  nll: 'lower',
  kl_mean: 'lower',
  top1_agreement: 'higher',
  accuracy: 'higher',
  macro_f1: 'higher',
  bytes_on_disk: 'lower',
  bytes_compressed: 'lower',
  bits_per_weight: 'lower',
  peak_memory_bytes: 'lower',
  prefill_ms: 'lower',
  prefill_ms_min: 'lower',
  prefill_ms_max: 'lower',
  decode_ms_per_token: 'lower',
  decode_tokens_per_s: 'higher',
  decode_tokens_per_s_min: 'higher',
  decode_tokens_per_s_max: 'higher',
  tokens_per_s: 'higher',
  eval_tokens_per_s: 'higher',
  eval_seconds: 'lower',
  duration_ms: 'lower',
  // Counts and settings: what was measured, not how well.
  parameters: null,
  predicted_tokens: null,
  documents: null,
  windows: null,
  prefill_tokens: null,
  decode_tokens: null,
  speed_repeats: null,
  speed_threads: null,
  threads: null,
  accuracy_examples: null,
};

/**
 * The direction of a metric: known names first, then by unit (times and sizes lower, rates higher), then
 * by name (a loss or an error lower). Null: neither is better.
 */
export function metricDirection(name: string, unit = ''): MetricDirection | null {
  if (Object.prototype.hasOwnProperty.call(DIRECTIONS, name)) return DIRECTIONS[name];
  if (unit === 'ms' || unit === 's' || unit === 'bytes' || unit === 'nats') return 'lower';
  if (unit.endsWith('/s')) return 'higher';
  if (/(^|_)(loss|error|kl|latency)(_|$)/.test(name)) return 'lower';
  if (/(^|_)(accuracy|agreement|f1)(_|$)/.test(name)) return 'higher';
  return null;
}

/**
 * Whether `value` is better than, worse than or the same as `reference` for a metric of this direction.
 * Null when the metric has no direction or either value is missing (NaN included).
 */
export function judge(direction: MetricDirection | null, value: number | null, reference: number | null): 'better' | 'worse' | 'same' | null {
  if (direction === null || value === null || reference === null || !Number.isFinite(value) || !Number.isFinite(reference)) return null;
  if (value === reference) return 'same';
  return (value < reference) === (direction === 'lower') ? 'better' : 'worse';
}
