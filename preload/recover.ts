/**
 * Recovery after compression: a distill step placed after a prune or quantize step, whose student is the
 * model it receives (the compressed one) and whose teacher is the recipe's model (the original). Pruning
 * masks are kept by the training (zeros stay zeros); an RTN or GPTQ result (MatMulNBits) trains on its
 * own grid — its scales and zero points kept, only the codes move (main/engine/train/quantized-student.ts).
 * The CLI (`--recover-steps N [--recover-text F]`) and the prune and quantize wizards' Recover option
 * both build it here.
 * Only recipe.ts is imported, so main, preload and renderer share it.
 */
import type { RecipeInput } from './recipe.ts';

type StepInput = NonNullable<RecipeInput['steps']>[number];
export type RecoverStepInput = Extract<StepInput, { type: 'distill' }>;

export interface RecoverSettings {
  /** The training text (best not the evaluation text). */
  text: string;
  /** Optimizer steps. */
  steps: number;
  /** Sequences per micro-batch and tokens per sequence (the distill step's defaults when unset). */
  batch?: number;
  length?: number;
}

/** The distill step that recovers the model the previous step wrote, with the original as teacher. */
export function recoverStep(s: RecoverSettings): RecoverStepInput {
  return {
    type: 'distill',
    student: { from: 'input' },
    data: { text: s.text, ...(s.batch !== undefined ? { batch: s.batch } : {}), ...(s.length !== undefined ? { length: s.length } : {}) },
    schedule: { steps: s.steps },
  };
}

/** Whether a recipe step is a recovery (a distill step whose student is the model it receives). */
export function isRecoverStep(step: unknown): boolean {
  if (!step || typeof step !== 'object') return false;
  const s = step as { type?: unknown; student?: unknown };
  return s.type === 'distill' && typeof s.student === 'object' && s.student !== null && (s.student as { from?: unknown }).from === 'input';
}

/**
 * Why the output of `step` cannot be recovered by distillation, or null when it can. Recovery trains the
 * compressed model's float weights (pruned and float16 models) or, for weight-only RTN and GPTQ in the
 * MatMulNBits format, its weights through fake quantization on the grid they came with. INT8 models and
 * the QDQ format store integers that recovery does not train; SparseGPT's joint quantization would lose
 * its pruned zeros (a zero code is not a mask); KD-QAT recovers while it quantizes.
 */
export function unrecoverableReason(step: { type: string; method?: string; format?: string; quantize?: unknown }): string | null {
  if (step.type === 'quantize') {
    switch (step.method) {
      case 'fp16': return null;
      case 'rtn':
      case 'gptq':
        return step.format === 'qdq'
          ? 'Recovery trains MatMulNBits weights on their grid; the QDQ format (DequantizeLinear) is not trained. Quantize in the MatMulNBits format (the default) to recover.'
          : null;
      case 'qat': return 'KD-QAT already distils from the original while it quantizes.';
      default: return 'Recovery trains float weights and RTN or GPTQ results (MatMulNBits) on their grid; INT8 weights are not trained. Quantize with RTN or GPTQ to recover, or use KD-QAT (quantize --method qat), which trains through the quantization and recovers in the same step.';
    }
  }
  if (step.type === 'prune' && step.method === 'sparsegpt' && step.quantize !== undefined && step.quantize !== null) {
    return 'SparseGPT with joint quantization writes MatMulNBits whose pruned zeros recovery would not keep. Prune without --quantize, recover, then quantize; or use KD-QAT (quantize --method qat).';
  }
  return null;
}
