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
  /** The compression step whose output is recovered: its defaults follow what that step wrote. */
  after?: CompressionStep;
}

/** What recoverStep reads of the step before it. */
export interface CompressionStep {
  type: string;
  method?: string;
  format?: string;
}

/**
 * Recovery of an RTN or GPTQ result in the MatMulNBits format trains on the fixed grid it came with: a
 * code moves only when its weight crosses half a grid step, so the distill step's default lr (3e-4)
 * barely moves any. Measured on stories260K at 4 bits (GPTQ perplexity 4.4418, original 4.2267), 40 KD
 * steps at lr 1e-3 with the norms and the embedding frozen reach 4.2273; the norms and the embedding are
 * float weights beside the grid, and training them at that rate only adds noise.
 */
export const GRID_RECOVERY = { lr: 1e-3, freeze: ['norm', 'embedding'] } as const;

/** Whether `step` writes MatMulNBits weights that recovery trains on their fixed grid. */
export function writesGrid(step: CompressionStep): boolean {
  return step.type === 'quantize' && (step.method === 'rtn' || step.method === 'gptq') && step.format !== 'qdq';
}

/** The distill step that recovers the model the previous step wrote, with the original as teacher. */
export function recoverStep(s: RecoverSettings): RecoverStepInput {
  const grid = s.after !== undefined && writesGrid(s.after);
  return {
    type: 'distill',
    student: { from: 'input' },
    data: { text: s.text, ...(s.batch !== undefined ? { batch: s.batch } : {}), ...(s.length !== undefined ? { length: s.length } : {}) },
    schedule: { steps: s.steps, ...(grid ? { lr: GRID_RECOVERY.lr } : {}) },
    ...(grid ? { freeze: [...GRID_RECOVERY.freeze] } : {}),
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
