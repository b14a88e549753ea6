/** Which GGUF type an experiment's result exports to by default (history.evaluateGguf, the detail page). */
import type { GgufType } from './contract.ts';
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
