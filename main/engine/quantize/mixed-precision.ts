/**
 * From a sensitivity ranking to a mixed-precision recipe: the k most sensitive candidates either get
 * 8-bit weights (`overrides`) or stay in float (`keep`). Patterns are exact names, `^name$` with the
 * regular-expression characters escaped, so each matches its one weight and nothing else.
 */
import type { BitsOverride } from '../../../preload/recipe.ts';
import { WhittleError } from '../errors.ts';

/** One candidate of a sensitivity analysis (a weight, or a transformer block's weights). */
export interface SensitivityEntry {
  /** The weight's initializer name, or the block's label ('block 3'). */
  name: string;
  /** Mean KL(original ‖ model with only this candidate quantized), nats per token. */
  kl: number;
  /** Bits the candidate was quantized to. */
  bits: number;
  /** Parameters in the candidate's weights. */
  params: number;
  /** The initializer names the candidate covers (one for granularity 'weight'). */
  weights: string[];
}

export type MixedPrecision = { overrides: BitsOverride[] } | { keep: string[] };

/** `^name$` with every regular-expression metacharacter escaped. */
export function exactNamePattern(name: string): string {
  return `^${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`;
}

/**
 * The `k` most sensitive candidates (the list sorted by KL, largest first) → overrides to 8 bits
 * (mode '8bit') or keep patterns (mode 'float'), one exact-name pattern per weight they cover.
 */
export function mixedPrecisionFromSensitivity(list: readonly SensitivityEntry[], k: number, mode: '8bit' | 'float'): MixedPrecision {
  if (!Number.isInteger(k) || k < 0) throw new WhittleError('INVALID_INPUT', `The number of candidates to raise must be a whole number ≥ 0, got ${String(k)}.`);
  const top = [...list].sort((a, b) => b.kl - a.kl).slice(0, k);
  const patterns = [...new Set(top.flatMap((e) => (e.weights.length > 0 ? e.weights : [e.name])))].map(exactNamePattern);
  return mode === '8bit' ? { overrides: patterns.map((pattern) => ({ pattern, bits: 8 })) } : { keep: patterns };
}
