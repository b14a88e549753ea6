/**
 * `quantize.plan`: what a quantize step would do to a model before anything runs — each weight the
 * inspection found, marked 'quantize', 'keep' (a keep pattern matched) or 'skip' (with the reason), and the
 * model's size before and the estimated size after (main/engine/quantize/estimate.ts).
 */
import type { ModelInspection, QuantizePlan, QuantizePlanWeight } from '../../preload/contract.ts';
import type { QuantizeRtnStep } from '../../preload/recipe.ts';
import { WhittleError } from '../engine/errors.ts';
import { estimateQuantizedSize } from '../engine/quantize/estimate.ts';

/** The keep patterns as regular expressions; an invalid one is an INVALID_INPUT naming it. */
export function compileKeepPatterns(patterns: readonly string[]): RegExp[] {
  return patterns.map((pattern, index) => {
    try {
      return new RegExp(pattern);
    } catch (e) {
      const why = e instanceof Error ? e.message.replace(/^Invalid regular expression: /, '') : String(e);
      throw new WhittleError(
        'INVALID_INPUT',
        `Keep pattern ${index + 1} "${pattern}" is not a valid regular expression (${why}). Fix or remove it.`,
        { pattern, index },
      );
    }
  });
}

const FLOAT_BYTES: Record<string, number> = { float32: 4, float16: 2, bfloat16: 2, float64: 8 };

export function planQuantize(inspection: ModelInspection, step: QuantizeRtnStep): QuantizePlan {
  const keep = compileKeepPatterns(step.keep);
  const estimate = estimateQuantizedSize(inspection, step);
  const byName = new Map(estimate.perWeight.map((w) => [w.name, w]));
  const seen = new Set<string>();
  const counts = { quantize: 0, keep: 0, skip: 0 };

  const weights = inspection.quantizable.map((w): QuantizePlanWeight => {
    const bytes = w.shape.reduce((a, b) => a * b, 1) * (FLOAT_BYTES[w.dtype] ?? 0);
    const first = !seen.has(w.name);
    seen.add(w.name);
    const est = byName.get(w.name);
    let action: QuantizePlanWeight['action'];
    let reason: string | undefined;
    let bytesAfter = bytes;
    if (w.skipReason) {
      action = 'skip';
      reason = w.skipReason;
    } else if (!first) {
      // The estimate counts one tensor once; a second consumer of the same tensor shares its fate.
      action = est?.status === 'quantized' ? 'quantize' : 'skip';
      reason = `the same tensor as an earlier row${est?.reason ? ` (${est.reason})` : ''}`;
      bytesAfter = est?.bytesAfter ?? bytes;
    } else if (est?.status === 'quantized') {
      action = 'quantize';
      bytesAfter = est.bytesAfter;
    } else if (w.op !== 'Gather' && keep.some((re) => re.test(w.name))) {
      action = 'keep';
      reason = est?.reason ?? 'the name matches a keep pattern';
    } else {
      action = 'skip';
      reason = est?.reason ?? 'not quantizable';
    }
    counts[action] += 1;
    return { name: w.name, node: w.node, op: w.op, shape: w.shape, dtype: w.dtype, action, ...(reason ? { reason } : {}), bytesBefore: bytes, bytesAfter };
  });

  return {
    path: inspection.path,
    weights,
    bytesBefore: estimate.bytesBefore,
    bytesAfter: estimate.bytesAfter,
    modelBytes: inspection.bytesOnDisk,
    counts,
  };
}
