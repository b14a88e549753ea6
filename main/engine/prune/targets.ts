/**
 * Which weights a prune step prunes: the shared eligibility (rewrite/eligibility.ts: keep patterns, the
 * reasons a weight cannot be rewritten), the LM head left dense unless asked, and the N:M pattern checked
 * against every input size K. Light on purpose: the prune plan (main/api/prune-plan.ts) runs it on the
 * inspection worker without loading onnxruntime.
 */
import { parseNmPattern, PruneMagnitudeStep, PruneSparseGptStep, PruneWandaStep } from '../../../preload/recipe.ts';
import { WhittleError } from '../errors.ts';
import type { GraphProto } from '../onnx/proto-types.ts';
import { compilePatterns } from '../quantize/weight-only.ts';
import { planTargets, type QuantTarget, type SkippedWeight } from '../rewrite/eligibility.ts';

/** The unstructured prune steps. */
export type UnstructuredPruneStep = PruneMagnitudeStep | PruneWandaStep | PruneSparseGptStep;

export const LM_HEAD_REASON = 'the LM head stays dense (set pruneLmHead to prune it)';

/** Parses the step with its method's schema (errors name the field). */
export function parsePruneStep(step: UnstructuredPruneStep): UnstructuredPruneStep {
  const schema = step.method === 'magnitude' ? PruneMagnitudeStep : step.method === 'wanda' ? PruneWandaStep : PruneSparseGptStep;
  const r = schema.safeParse(step);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(step)'}: ${i.message}`).join('; ');
    throw new WhittleError('INVALID_INPUT', `The prune step is not valid: ${issues}.`, { issues: r.error.issues });
  }
  return r.data;
}

/** The targets whose input size K is not a multiple of the N:M pattern's M (N:M groups run along K). */
export function nmMisfits<T extends { k: number }>(targets: readonly T[], nm: { m: number }): T[] {
  return targets.filter((t) => t.k % nm.m !== 0);
}

/** The targets of a prune step: planTargets' (keep patterns, graph reasons), the LM head left out unless asked; N:M checked against every K. */
export function planPruneTargets(graph: GraphProto, step: UnstructuredPruneStep): { targets: QuantTarget[]; skipped: SkippedWeight[] } {
  const keep = compilePatterns(step.keep, 'keep');
  const blockSize = step.method === 'sparsegpt' && step.quantize ? step.quantize.blockSize : 1;
  const plan = planTargets(graph, { blockSize, keep });
  const skipped = [...plan.skipped];
  const targets: QuantTarget[] = [];
  for (const t of plan.targets) {
    if (t.role === 'lm_head' && !step.pruneLmHead) skipped.push({ name: t.weight, op: t.op, shape: t.shape, dtype: t.dtype, reason: LM_HEAD_REASON });
    else targets.push(t);
  }
  if (targets.length === 0) {
    const why = skipped.slice(0, 6).map((s) => `${s.name}: ${s.reason}`).join('; ');
    throw new WhittleError('INVALID_INPUT', `Nothing to prune: ${why || 'the model has no MatMul or Gemm with a constant float weight'}.`, { skipped });
  }
  const nm = step.pattern === undefined ? null : parseNmPattern(step.pattern);
  if (nm) {
    const bad = nmMisfits(targets, nm);
    if (bad.length > 0) {
      throw new WhittleError(
        'INVALID_INPUT',
        `The pattern ${step.pattern} needs every pruned weight's input size K to be a multiple of ${nm.m}; ${bad.map((t) => `${t.weight} has K = ${t.k}`).slice(0, 4).join(', ')}. `
          + 'Use a pattern whose M divides K, or keep those weights (keep patterns).',
        { pattern: step.pattern, weights: bad.map((t) => t.weight) },
      );
    }
  }
  return { targets, skipped };
}
