/**
 * The evaluation form ⇄ a recipe. The form keeps what the user typed (numbers may be empty strings while
 * editing); `buildRecipe` turns it into a recipe and `validateEvaluateForm` checks it with the same zod
 * schema main uses, mapping each issue back to the field it belongs to. Accuracy on labelled data scores
 * an encoder classifier by its class logits and a decoder by labelled prompts (template, verbalizers).
 */
import { DEFAULT_HELD_OUT, DEFAULT_PROMPT_TEMPLATE, Recipe, type RecipeInput } from '../../preload/recipe.ts';
import { formatVerbalizers, parseVerbalizers, VerbalizerSyntaxError, type Verbalizers } from '../../preload/verbalizers.ts';
import { addIssue, issuePathParts, issuesFromList, numberMessage, type Issues } from './form-issues.ts';

export type Protocol = 'documents' | 'stream';

export interface EvaluateForm {
  modelPath: string;
  tokenizerPath: string;
  perplexity: boolean;
  textPath: string;
  protocol: Protocol;
  window: number | string;
  maxSamples: number | string;
  speed: boolean;
  promptTokens: number | string;
  decodeTokens: number | string;
  /** Measure again even when an earlier evaluation of the same model with the same settings could answer. */
  noCache: boolean;
  name: string;
  /** Accuracy and macro-F1 on the held-out share of a labelled file. */
  accuracy: boolean;
  labelsPath: string;
  heldOut: number | string;
  /** Decoders: the prompt, `{text}` where the example goes. */
  template: string;
  /** Decoders: "negative, positive" (class order) or "0=negative, 1=positive"; empty: the labels as written. */
  verbalizers: string;
  /** Decoders: compare answers by log-probability per token. */
  lengthNormalize: boolean;
}

/** One line each on the labelled-prompt settings, for people. */
export const PROMPT_HELP = {
  template: 'A decoder reads each example as this prompt and is scored on how likely each answer is after it; {text} is where the example goes.',
  verbalizers: 'The answer words of each class, in class order ("negative, positive") or by label ("0=negative, 1=positive"); empty: the labels as written.',
  lengthNormalize: 'Compare answers by their log-probability per token, so answers of several tokens are not penalised for their length.',
} as const;

export type FormField = keyof EvaluateForm | 'form';
export type FormIssues = Issues<FormField>;

export const DEFAULT_SAMPLES: Record<Protocol, number> = { documents: 400, stream: 128 };

export const PROTOCOL_HELP: Record<Protocol, string> = {
  documents: 'Blank-line separated paragraphs, each scored from its start (BOS + tokens, truncated to L); the first N documents.',
  stream: 'The whole text as one token stream cut into N non-overlapping windows of L tokens (WikiText / GPTQ style).',
};

export function defaultEvaluateForm(modelPath = ''): EvaluateForm {
  return {
    modelPath,
    tokenizerPath: '',
    perplexity: true,
    textPath: '',
    protocol: 'documents',
    window: 256,
    maxSamples: DEFAULT_SAMPLES.documents,
    speed: false,
    promptTokens: 64,
    decodeTokens: 64,
    noCache: false,
    name: '',
    accuracy: false,
    labelsPath: '',
    heldOut: DEFAULT_HELD_OUT,
    template: DEFAULT_PROMPT_TEMPLATE,
    verbalizers: '',
    lengthNormalize: false,
  };
}

/** The verbalizers field as the recipe takes it; undefined when empty, and the raw text when it does not parse (the form reports it). */
function verbalizersOf(text: string): Verbalizers | undefined {
  if (!text.trim()) return undefined;
  try {
    return parseVerbalizers(text);
  } catch (e) {
    if (e instanceof VerbalizerSyntaxError) return undefined;
    throw e;
  }
}

/** Switching protocol swaps N to the new protocol's default unless the user changed it. */
export function withProtocol(form: EvaluateForm, protocol: Protocol): EvaluateForm {
  const untouched = Number(form.maxSamples) === DEFAULT_SAMPLES[form.protocol];
  return { ...form, protocol, maxSamples: untouched ? DEFAULT_SAMPLES[protocol] : form.maxSamples };
}

function toNumber(v: number | string): number {
  if (typeof v === 'number') return v;
  const t = v.trim();
  return t === '' ? Number.NaN : Number(t);
}

export function buildRecipe(form: EvaluateForm): RecipeInput {
  const evaluation: NonNullable<RecipeInput['evaluation']> = { footprint: true };
  if (form.perplexity) {
    evaluation.perplexity = {
      text: form.textPath.trim(),
      protocol: form.protocol,
      window: toNumber(form.window),
      maxSamples: toNumber(form.maxSamples),
    };
  }
  if (form.speed) {
    evaluation.speed = { promptTokens: toNumber(form.promptTokens), decodeTokens: toNumber(form.decodeTokens) };
  }
  if (form.accuracy) {
    const verbalizers = verbalizersOf(form.verbalizers);
    evaluation.accuracy = {
      file: form.labelsPath.trim(),
      heldOut: toNumber(form.heldOut),
      ...(form.template !== DEFAULT_PROMPT_TEMPLATE ? { template: form.template } : {}),
      ...(verbalizers !== undefined ? { verbalizers } : {}),
      ...(form.lengthNormalize ? { lengthNormalize: true } : {}),
    };
  }
  if (form.noCache) evaluation.cache = false;
  const recipe: RecipeInput = { version: 1, model: { path: form.modelPath.trim() }, steps: [], evaluation };
  const name = form.name.trim();
  if (name) recipe.name = name;
  const tokenizer = form.tokenizerPath.trim();
  if (tokenizer) recipe.tokenizer = { path: tokenizer };
  return recipe;
}

const FIELD_BY_PATH: Record<string, keyof EvaluateForm> = {
  'name': 'name',
  'model': 'modelPath',
  'model.path': 'modelPath',
  'tokenizer': 'tokenizerPath',
  'tokenizer.path': 'tokenizerPath',
  'evaluation.perplexity.text': 'textPath',
  'evaluation.perplexity.protocol': 'protocol',
  'evaluation.perplexity.window': 'window',
  'evaluation.perplexity.maxSamples': 'maxSamples',
  'evaluation.speed.promptTokens': 'promptTokens',
  'evaluation.speed.decodeTokens': 'decodeTokens',
  'evaluation.accuracy': 'labelsPath',
  'evaluation.accuracy.file': 'labelsPath',
  'evaluation.accuracy.heldOut': 'heldOut',
  'evaluation.accuracy.template': 'template',
  'evaluation.accuracy.verbalizers': 'verbalizers',
};

/** "evaluation.perplexity.window", "/evaluation/perplexity/window" or ["evaluation", …] → a form field. */
export function fieldForIssuePath(path: string | readonly PropertyKey[]): FormField {
  return FIELD_BY_PATH[issuePathParts(path).join('.')] ?? 'form';
}

const NUMBER_FIELDS: readonly FormField[] = ['window', 'maxSamples', 'promptTokens', 'decodeTokens', 'heldOut'];

function friendly(message: string, field: FormField): string {
  if (/expected number, received NaN/i.test(message)) return 'Enter a number.';
  return (NUMBER_FIELDS.includes(field) ? numberMessage(message) : null) ?? message;
}

/** Issues that block running, by field; empty when the form makes a valid recipe. */
export function validateEvaluateForm(form: EvaluateForm): FormIssues {
  const issues: FormIssues = {};
  if (!form.modelPath.trim()) addIssue(issues, 'modelPath', 'Choose the model file (.onnx).');
  if (form.perplexity) {
    if (!form.tokenizerPath.trim()) addIssue(issues, 'tokenizerPath', 'Perplexity needs the model\'s tokenizer (tokenizer.json).');
    if (!form.textPath.trim()) addIssue(issues, 'textPath', 'Choose a UTF-8 text file to measure perplexity on.');
  }
  if (form.accuracy) {
    if (!form.tokenizerPath.trim()) addIssue(issues, 'tokenizerPath', 'Accuracy needs the model\'s tokenizer (tokenizer.json).');
    if (!form.labelsPath.trim()) addIssue(issues, 'labelsPath', 'Choose a labelled file (TSV, CSV or JSONL with a text and a label column).');
    try {
      if (form.verbalizers.trim()) parseVerbalizers(form.verbalizers);
    } catch (e) {
      if (!(e instanceof VerbalizerSyntaxError)) throw e;
      addIssue(issues, 'verbalizers', `The answer words ${e.message}.`);
    }
  }
  const parsed = Recipe.safeParse(buildRecipe(form));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = fieldForIssuePath(issue.path);
      addIssue(issues, field, friendly(issue.message, field));
    }
  }
  return issues;
}

/** Issues reported by `recipes.validate`, by field. */
export function issuesFromServer(list: readonly { path: string; message: string }[]): FormIssues {
  return issuesFromList(list, fieldForIssuePath, friendly);
}

/** A stored recipe back into the form (for re-running or editing an experiment); null if it is not one. */
export function formFromRecipe(recipe: unknown): EvaluateForm | null {
  const parsed = Recipe.safeParse(recipe);
  if (!parsed.success) return null;
  const r = parsed.data;
  const form = defaultEvaluateForm(r.model.path);
  form.tokenizerPath = r.tokenizer?.path ?? '';
  form.name = r.name ?? '';
  const p = r.evaluation.perplexity;
  form.perplexity = p !== undefined;
  if (p) {
    form.textPath = p.text;
    form.protocol = p.protocol;
    form.window = p.window;
    form.maxSamples = p.maxSamples;
  }
  form.noCache = r.evaluation.cache === false;
  const a = r.evaluation.accuracy;
  form.accuracy = a !== undefined;
  if (a) {
    form.labelsPath = a.file;
    form.heldOut = a.heldOut ?? DEFAULT_HELD_OUT;
    form.template = a.template ?? DEFAULT_PROMPT_TEMPLATE;
    form.verbalizers = a.verbalizers !== undefined ? formatVerbalizers(a.verbalizers) : '';
    form.lengthNormalize = a.lengthNormalize ?? false;
  }
  const s = r.evaluation.speed;
  form.speed = s !== undefined;
  if (s) {
    form.promptTokens = s.promptTokens;
    form.decodeTokens = s.decodeTokens;
  }
  return form;
}
