/** The few metrics shown for an experiment in the history list. */
import type { Metric } from '../../preload/contract.ts';

/** Names in the order they are worth a place in the list. */
export const HEADLINE_NAMES = [
  'perplexity',
  'bytes_on_disk',
  'bits_per_weight',
  'decode_tokens_per_s',
  'prefill_ms',
  'agreement',
] as const;

/** For one name, the compressed result beats the evaluated model beats the original. */
const SUBJECT_RANK: Record<string, number> = { result: 0, model: 1, original: 2 };

export const HEADLINE_SIZE = 3;

export function pickHeadline(metrics: readonly Metric[], size = HEADLINE_SIZE): Metric[] {
  const rank = (m: Metric): number => SUBJECT_RANK[m.subject] ?? 3;
  const picked: Metric[] = [];
  for (const name of HEADLINE_NAMES) {
    if (picked.length >= size) break;
    let best: Metric | undefined;
    for (const m of metrics) if (m.name === name && (!best || rank(m) < rank(best))) best = m;
    if (best) picked.push(best);
  }
  if (picked.length === 0) {
    for (const m of metrics) {
      if (picked.length >= size) break;
      if (rank(m) < 2 && !picked.some((p) => p.name === m.name)) picked.push(m);
    }
  }
  return picked;
}
