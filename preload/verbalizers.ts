/**
 * Verbalizers as people type them (the CLI's --verbalizers, the Evaluate wizard's field) ⇄ the accuracy
 * section's `verbalizers`: comma-separated words, one per class in class order ("negative, positive"), or
 * label=words pairs ("0=negative, 1=positive"); a comma inside the words is written \,.
 */

export type Verbalizers = string[] | Record<string, string>;

export class VerbalizerSyntaxError extends Error {}

/** The list or the map the text gives; throws VerbalizerSyntaxError when it mixes both kinds. */
export function parseVerbalizers(raw: string): Verbalizers {
  const parts = raw.split(/(?<!\\),/).map((p) => p.replace(/\\,/g, ','));
  const pairs = parts.map((p) => /^([^=]+)=(.*)$/.exec(p));
  if (pairs.every((m) => m !== null)) return Object.fromEntries(pairs.map((m) => [m![1].trim(), m![2].trim()]));
  if (pairs.some((m) => m !== null)) {
    throw new VerbalizerSyntaxError('mixes label=words pairs and plain words: give one word per class in class order ("negative, positive") or map every label ("0=negative, 1=positive")');
  }
  return parts.map((p) => p.trim());
}

/** The text that parses back to `v`. */
export function formatVerbalizers(v: Verbalizers): string {
  const escape = (s: string): string => s.replace(/,/g, '\\,');
  return Array.isArray(v) ? v.map(escape).join(', ') : Object.entries(v).map(([k, w]) => `${escape(k)}=${escape(w)}`).join(', ');
}
