/**
 * The Recover option of the Prune and Quantize wizards: after the compression step, a distill step whose
 * student is the compressed model and whose teacher is the original (preload/recover.ts, as
 * `--recover-steps` builds it). Each wizard's form adds these fields and its recipe the step.
 */
import type { Recipe, RecipeInput } from '../../preload/recipe.ts';
import { isRecoverStep, recoverStep, unrecoverableReason } from '../../preload/recover.ts';
import { addIssue, type Issues } from './form-issues.ts';
import { toNumber } from './recipe-form.ts';

export interface RecoverFormPart {
  /** Distil the compressed model from the original after compressing. */
  recover: boolean;
  recoverSteps: number | string;
  /** The training text; empty: the calibration text. */
  recoverText: string;
}

export const RECOVER_HELP = 'Fine-tunes the compressed model for a few steps with the original as its teacher (knowledge distillation); zeros from pruning stay zero, and 4/8-bit weights stay on their quantization grid (same scales, new codes). Minutes on a CPU.';

export function defaultRecoverPart(): RecoverFormPart {
  return { recover: false, recoverSteps: 100, recoverText: '' };
}

/** The text the recovery trains on: its own, else the calibration text. */
export function recoverTextOf(form: RecoverFormPart & { calibText?: string }): string {
  return form.recoverText.trim() || (form.calibText ?? '').trim();
}

/** The recipe's steps with the recovery after them, when asked and when the last step's output can be recovered. */
export function withRecovery(steps: NonNullable<RecipeInput['steps']>, form: RecoverFormPart & { calibText?: string }): NonNullable<RecipeInput['steps']> {
  const last = steps.at(-1) as { type: string; method?: string; format?: string; quantize?: unknown } | undefined;
  if (!form.recover || (last && unrecoverableReason(last))) return steps;
  return [...steps, recoverStep({ text: recoverTextOf(form), steps: toNumber(form.recoverSteps), ...(last ? { after: last } : {}) })];
}

/** A stored recipe's recovery step back into the form part. */
export function recoverPartFromRecipe(r: Recipe): RecoverFormPart {
  const step = r.steps.find(isRecoverStep);
  if (!step || step.type !== 'distill') return defaultRecoverPart();
  return { recover: true, recoverSteps: step.schedule.steps ?? 100, recoverText: step.data.text };
}

/** Recipe issue paths of the recovery step (the second step) → its form fields. */
export const RECOVER_FIELD_BY_PATH: Readonly<Record<string, keyof RecoverFormPart>> = {
  'steps.1.data.text': 'recoverText',
  'steps.1.schedule.steps': 'recoverSteps',
  'steps.1.schedule': 'recoverSteps',
};

export const RECOVER_FIELDS: readonly (keyof RecoverFormPart)[] = ['recover', 'recoverSteps', 'recoverText'];

/** What the recovery needs before running: a text to train on, and a tokenizer to read it. */
export function checkRecover(issues: Issues<'recoverText' | 'tokenizerPath'>, form: RecoverFormPart & { calibText?: string; tokenizerPath: string }): void {
  if (!form.recover) return;
  if (!recoverTextOf(form)) addIssue(issues, 'recoverText', 'Choose a UTF-8 text to recover on (best not the evaluation text).');
  if (!form.tokenizerPath.trim()) addIssue(issues, 'tokenizerPath', "Recovery reads text, which needs the model's tokenizer (tokenizer.json).");
}
