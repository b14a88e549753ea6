/**
 * Recovery after compression: a distill step placed after a prune or quantize step, whose student is the
 * model it receives (the compressed one) and whose teacher is the recipe's model (the original). Pruning
 * masks are kept by the training (zeros stay zeros). The CLI (`--recover-steps N [--recover-text F]`)
 * and the prune and quantize wizards' Recover option both build it here.
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
 * compressed model's float weights: pruned and float16 models have them; weight-only 4/8-bit (MatMulNBits or
 * QDQ) and INT8 models store integers, which train only through fake quantization — KD-QAT, a quantization
 * method that quantizes and recovers in one step.
 */
export function unrecoverableReason(step: { type: string; method?: string; quantize?: unknown }): string | null {
  const kdQat = 'Recovery trains float weights; this step stores integer weights. Use KD-QAT (quantize --method qat), which trains through the quantization and recovers in the same step.';
  if (step.type === 'quantize') return step.method === 'fp16' || step.method === 'qat' ? (step.method === 'qat' ? 'KD-QAT already distils from the original while it quantizes.' : null) : kdQat;
  if (step.type === 'prune' && step.method === 'sparsegpt' && step.quantize !== undefined && step.quantize !== null) return kdQat;
  return null;
}
