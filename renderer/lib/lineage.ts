/** Words and numbers of the lineage tree's nodes. */
import type { Metric } from '../../preload/contract.ts';
import { formatBytes } from '../../preload/units.ts';

const NAMES: Record<string, string> = {
  perplexity: 'ppl', bytes_on_disk: 'size', bits_per_weight: 'bits/weight', decode_tokens_per_s: 'decode', prefill_ms: 'prefill', agreement: 'agreement',
};

export function metricName(name: string): string {
  return NAMES[name] ?? name.replace(/_/g, ' ');
}

/** 4.25, 1.20 MiB, 850 tokens/s. */
export function formatMetricValue(m: Pick<Metric, 'value' | 'unit'>): string {
  if (!Number.isFinite(m.value)) return '—';
  if (m.unit === 'bytes') return formatBytes(m.value);
  const v = Math.abs(m.value) >= 100 ? m.value.toFixed(0) : Number(m.value.toPrecision(3)).toString();
  return m.unit && m.unit !== 'bits' ? `${v} ${m.unit}` : v;
}

/** The number of experiments in a tree (the root, a model, not counted). */
export function countNodes(children: readonly { children: readonly unknown[] }[]): number {
  return children.reduce((n, c) => n + 1 + countNodes(c.children as { children: readonly unknown[] }[]), 0);
}
