/**
 * What the compress wizards (Quantize, Prune) share about their forms: the model, tokenizer and
 * evaluation fields (original beside result), the calibration fields, and how those become the parts of
 * a recipe and are read back from a stored one. Each wizard's own form module adds its step.
 */
import type { Recipe, RecipeInput } from '../../preload/recipe.ts';

/** The fields every compress wizard asks on its Model step, and the job's name. */
export interface EvaluationFormPart {
  modelPath: string;
  tokenizerPath: string;
  /** Perplexity and generations, original beside result. */
  evaluate: boolean;
  textPath: string;
  window: number | string;
  maxSamples: number | string;
  /** Prompts for the side-by-side generations, one per line. */
  prompts: string;
  speed: boolean;
  /** Measure everything again; the evaluation cache is not read (speed never comes from it in a comparison). */
  noCache: boolean;
  name: string;
}

/** Calibration text and how it is sampled (N sequences of L tokens, seed); `evaluate`/`textPath` to warn about overlap. */
export interface CalibrationFormPart {
  calibText: string;
  calibSamples: number | string;
  calibLength: number | string;
  calibSeed: number | string;
  evaluate: boolean;
  textPath: string;
}

export const DEFAULT_PROMPTS = ['Once upon a time', 'The little dog', 'Lily wanted to'];
export const DEFAULT_CALIBRATION = { samples: 128, length: 256, seed: 0 } as const;

export function defaultEvaluationPart(modelPath = ''): EvaluationFormPart {
  return {
    modelPath, tokenizerPath: '', evaluate: true, textPath: '', window: 256, maxSamples: 400,
    prompts: DEFAULT_PROMPTS.join('\n'), speed: true, noCache: false, name: '',
  };
}

export function defaultCalibrationPart(): Pick<CalibrationFormPart, 'calibText' | 'calibSamples' | 'calibLength' | 'calibSeed'> {
  return { calibText: '', calibSamples: DEFAULT_CALIBRATION.samples, calibLength: DEFAULT_CALIBRATION.length, calibSeed: DEFAULT_CALIBRATION.seed };
}

/** A number field as typed → a number (an empty field is NaN, which the schema reports as "Enter a number."). */
export function toNumber(v: number | string): number {
  if (typeof v === 'number') return v;
  const t = v.trim();
  return t === '' ? Number.NaN : Number(t);
}

/** Lines of a text field, trimmed, blank lines dropped (prompts, keep patterns). */
export function parseLines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
}

export type CalibrationInput = { text: string; samples: number; length: number; seed: number };

export function buildCalibration(form: Pick<CalibrationFormPart, 'calibText' | 'calibSamples' | 'calibLength' | 'calibSeed'>): CalibrationInput {
  return { text: form.calibText.trim(), samples: toNumber(form.calibSamples), length: toNumber(form.calibLength), seed: toNumber(form.calibSeed) };
}

/** The recipe's evaluation: footprint always; perplexity and generations when evaluating; speed when asked. */
export function buildEvaluation(form: EvaluationFormPart): NonNullable<RecipeInput['evaluation']> {
  const evaluation: NonNullable<RecipeInput['evaluation']> = { footprint: true };
  if (form.evaluate) {
    evaluation.perplexity = { text: form.textPath.trim(), protocol: 'documents', window: toNumber(form.window), maxSamples: toNumber(form.maxSamples) };
    const prompts = parseLines(form.prompts);
    if (prompts.length > 0) evaluation.samples = { prompts, maxNewTokens: 48 };
  }
  if (form.speed) evaluation.speed = { promptTokens: 64, decodeTokens: 64 };
  if (form.noCache) evaluation.cache = false;
  return evaluation;
}

/** version, name (when given), model and tokenizer (when given), in that order. */
export function baseRecipe(form: Pick<EvaluationFormPart, 'modelPath' | 'tokenizerPath' | 'name'>): RecipeInput {
  const name = form.name.trim();
  const tokenizer = form.tokenizerPath.trim();
  return { version: 1, ...(name ? { name } : {}), model: { path: form.modelPath.trim() }, ...(tokenizer ? { tokenizer: { path: tokenizer } } : {}) };
}

/** A parsed stored recipe's model, tokenizer, name and evaluation → the shared part of a form. */
export function evaluationPartFromRecipe(r: Recipe): EvaluationFormPart {
  const form = defaultEvaluationPart(r.model.path);
  form.tokenizerPath = r.tokenizer?.path ?? '';
  form.name = r.name ?? '';
  const p = r.evaluation.perplexity;
  form.evaluate = p !== undefined;
  if (p) {
    form.textPath = p.text;
    form.window = p.window;
    form.maxSamples = p.maxSamples;
  }
  form.prompts = r.evaluation.samples ? r.evaluation.samples.prompts.join('\n') : (p ? '' : form.prompts);
  form.speed = r.evaluation.speed !== undefined;
  form.noCache = r.evaluation.cache === false;
  return form;
}

/** Recipe issue paths of the shared parts → their form fields. */
export const EVALUATION_FIELD_BY_PATH: Readonly<Record<string, keyof EvaluationFormPart>> = {
  'name': 'name',
  'model': 'modelPath',
  'model.path': 'modelPath',
  'tokenizer': 'tokenizerPath',
  'tokenizer.path': 'tokenizerPath',
  'evaluation.perplexity.text': 'textPath',
  'evaluation.perplexity.window': 'window',
  'evaluation.perplexity.maxSamples': 'maxSamples',
  'evaluation.samples.prompts': 'prompts',
};

/** The last path component of a file path ('model.onnx'). */
export function fileNameOf(p: string): string {
  const parts = p.trim().split(/[\\/]/);
  return parts[parts.length - 1] || p;
}
