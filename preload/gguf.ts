/** GGUF evaluations of an experiment's result: the default type, and the comparisons recorded in its details. */
import type { GgufComparison, GgufType } from './contract.ts';
import { Recipe } from './recipe.ts';

/**
 * q4_1 when the recipe's weight quantization is 4-bit, block-32, asymmetric MatMulNBits (GPTQ or RTN):
 * Q4_1 holds those codes exactly (d = scale, m = −scale·zero point). Anything else: f16.
 */
export function defaultGgufType(recipe: unknown): GgufType {
  const parsed = Recipe.safeParse(recipe);
  if (!parsed.success) return 'f16';
  const exact = parsed.data.steps.some((s) => s.type === 'quantize' && (s.method === 'gptq' || s.method === 'rtn')
    && s.bits === 4 && s.blockSize === 32 && !s.symmetric && s.format === 'matmulnbits' && s.overrides.length === 0);
  return exact ? 'q4_1' : 'f16';
}

/**
 * The GGUF comparisons recorded in an experiment's details (history.evaluateGguf keeps the latest of each
 * type under `details.gguf`), by type.
 */
export function recordedGgufComparisons(details: Record<string, unknown>): Partial<Record<GgufType, GgufComparison>> {
  const g = details.gguf;
  return g && typeof g === 'object' && !Array.isArray(g) ? (g as Partial<Record<GgufType, GgufComparison>>) : {};
}

/** The details with `comparison` recorded as the latest of its type. */
export function withGgufComparison(details: Record<string, unknown>, comparison: GgufComparison): Record<string, unknown> {
  return { ...details, gguf: { ...recordedGgufComparisons(details), [comparison.type]: comparison } };
}
