/**
 * The Quantize wizard's form ⇄ a recipe with one quantize step. The form keeps what the user typed
 * (numbers may be empty strings while editing, keep patterns are one per line); `buildQuantizeRecipe`
 * turns it into a recipe, `validateQuantizeForm` checks it with the schema main uses and maps each issue to
 * its field, and `quantizeFormFromRecipe` reads a stored recipe back (re-attach, "Quantize again").
 */
import { QuantizeRtnStep, Recipe, type RecipeInput } from '../../preload/recipe.ts';

export type Bits = 2 | 4 | 8;
export type QuantFormat = 'matmulnbits' | 'qdq';
export type MethodId = QuantizeRtnStep['method'];

export interface QuantizeForm {
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
  method: MethodId;
  bits: Bits;
  blockSize: number | string;
  symmetric: boolean;
  accuracyLevel: number;
  format: QuantFormat;
  /** Keep patterns (regular expressions on weight names), one per line. */
  keepText: string;
  name: string;
}

export type QuantizeField = keyof QuantizeForm | 'form';
export type QuantizeIssues = Partial<Record<QuantizeField, string>>;

/** What a method card shows. New methods are added here; the wizard renders whatever this lists. */
export interface MethodDescriptor {
  id: MethodId;
  name: string;
  /** One line: what it costs and what it gives. */
  tradeoff: string;
  /** Whether the method needs calibration text (RTN does not). */
  calibration: boolean;
}

export const METHODS: readonly MethodDescriptor[] = [
  {
    id: 'rtn',
    name: 'RTN — round to nearest',
    tradeoff: 'Fastest; rounds each weight block to the nearest level. Good at 8-bit, noticeably lossy at 4-bit on small models.',
    calibration: false,
  },
];

export const BITS: readonly Bits[] = [2, 4, 8];
export const BLOCK_SIZES: readonly number[] = [16, 32, 64, 128, 256];

export const ACCURACY_LEVELS: readonly { value: number; label: string }[] = [
  { value: 0, label: '0 — unset (ONNX Runtime chooses)' },
  { value: 1, label: '1 — fp32' },
  { value: 2, label: '2 — fp16' },
  { value: 3, label: '3 — bf16' },
  { value: 4, label: '4 — int8 (fast CPU kernel)' },
];

export const ACCURACY_HELP = '4 (int8) is the only level at which ONNX Runtime\'s CPU uses its fast integer kernel; lower levels dequantize to float and are often no faster than the original.';

export const FORMATS: readonly { value: QuantFormat; label: string; help: string }[] = [
  { value: 'matmulnbits', label: 'MatMulNBits (com.microsoft)', help: 'One fused ONNX Runtime operator per weight: packed codes, scales and zero points. The compact, fast choice for ONNX Runtime.' },
  { value: 'qdq', label: 'QDQ (DequantizeLinear → MatMul)', help: 'Standard ONNX (opset 21 blocked DequantizeLinear before each MatMul): portable to other runtimes, usually slower on CPU.' },
];

export const DEFAULT_PROMPTS = ['Once upon a time', 'The little dog', 'Lily wanted to'];

export function defaultQuantizeForm(modelPath = ''): QuantizeForm {
  return {
    modelPath,
    tokenizerPath: '',
    evaluate: true,
    textPath: '',
    window: 256,
    maxSamples: 400,
    prompts: DEFAULT_PROMPTS.join('\n'),
    speed: true,
    method: 'rtn',
    bits: 4,
    blockSize: 32,
    symmetric: false,
    accuracyLevel: 4,
    format: 'matmulnbits',
    keepText: '',
    name: '',
  };
}

// ── keep patterns ───────────────────────────────────────────────────────────────────────────────────

/** The keep patterns in the text field: one per line, blank lines ignored. */
export function parseKeepPatterns(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The pattern that keeps exactly one weight: `^name$` with the name's special characters escaped. */
export function exactNamePattern(name: string): string {
  return `^${escapeRegExp(name)}$`;
}

/** Adds (on) or removes (off) the exact-name pattern of one weight; other patterns are left as they are. */
export function toggleKeepPattern(text: string, name: string, on: boolean): string {
  const exact = exactNamePattern(name);
  const lines = parseKeepPatterns(text);
  const without = lines.filter((l) => l !== exact);
  return (on ? [...without, exact] : without).join('\n');
}

/** Patterns that are not valid regular expressions, with why. */
export function invalidKeepPatterns(patterns: readonly string[]): { pattern: string; index: number; message: string }[] {
  const bad: { pattern: string; index: number; message: string }[] = [];
  patterns.forEach((pattern, index) => {
    try {
      new RegExp(pattern);
    } catch (e) {
      bad.push({ pattern, index, message: e instanceof Error ? e.message.replace(/^Invalid regular expression: /, '') : String(e) });
    }
  });
  return bad;
}

/** Which valid patterns match a weight name (to tell the user why a weight is kept). */
export function matchingKeepPatterns(patterns: readonly string[], name: string): string[] {
  return patterns.filter((p) => {
    try { return new RegExp(p).test(name); } catch { return false; }
  });
}

// ── form ⇄ recipe ───────────────────────────────────────────────────────────────────────────────────

function toNumber(v: number | string): number {
  if (typeof v === 'number') return v;
  const t = v.trim();
  return t === '' ? Number.NaN : Number(t);
}

export function parsePrompts(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
}

/** The recipe's quantize step (the same object `quantize.plan` is asked about). */
export function buildQuantizeStep(form: QuantizeForm): Extract<NonNullable<RecipeInput['steps']>[number], { type: 'quantize' }> {
  return {
    type: 'quantize',
    method: form.method,
    bits: form.bits,
    blockSize: toNumber(form.blockSize),
    symmetric: form.symmetric,
    accuracyLevel: form.accuracyLevel,
    format: form.format,
    keep: parseKeepPatterns(form.keepText),
  };
}

export function buildQuantizeRecipe(form: QuantizeForm): RecipeInput {
  const evaluation: NonNullable<RecipeInput['evaluation']> = { footprint: true };
  if (form.evaluate) {
    evaluation.perplexity = { text: form.textPath.trim(), protocol: 'documents', window: toNumber(form.window), maxSamples: toNumber(form.maxSamples) };
    const prompts = parsePrompts(form.prompts);
    if (prompts.length > 0) evaluation.samples = { prompts, maxNewTokens: 48 };
  }
  if (form.speed) evaluation.speed = { promptTokens: 64, decodeTokens: 64 };
  const recipe: RecipeInput = { version: 1, model: { path: form.modelPath.trim() }, steps: [buildQuantizeStep(form)], evaluation };
  const name = form.name.trim();
  if (name) recipe.name = name;
  const tokenizer = form.tokenizerPath.trim();
  if (tokenizer) recipe.tokenizer = { path: tokenizer };
  return recipe;
}

const FIELD_BY_PATH: Record<string, QuantizeField> = {
  'name': 'name',
  'model': 'modelPath',
  'model.path': 'modelPath',
  'tokenizer': 'tokenizerPath',
  'tokenizer.path': 'tokenizerPath',
  'evaluation.perplexity.text': 'textPath',
  'evaluation.perplexity.window': 'window',
  'evaluation.perplexity.maxSamples': 'maxSamples',
  'evaluation.samples.prompts': 'prompts',
  'steps.0.bits': 'bits',
  'steps.0.blockSize': 'blockSize',
  'steps.0.symmetric': 'symmetric',
  'steps.0.accuracyLevel': 'accuracyLevel',
  'steps.0.format': 'format',
  'steps.0.keep': 'keepText',
  'steps.0.method': 'method',
};

/** A recipe issue path ("steps.0.blockSize", "/steps/0/keep/1" or an array) → the form field. */
export function quantizeFieldForIssuePath(path: string | readonly PropertyKey[]): QuantizeField {
  const parts = typeof path === 'string' ? path.split(/[./]/).filter(Boolean) : path.map(String);
  for (let n = parts.length; n > 0; n--) {
    const field = FIELD_BY_PATH[parts.slice(0, n).join('.')];
    if (field) return field;
  }
  return 'form';
}

function addIssue(issues: QuantizeIssues, field: QuantizeField, message: string): void {
  if (!issues[field]) issues[field] = message;
  else if (field === 'form' && !issues.form!.includes(message)) issues.form = `${issues.form} ${message}`;
}

function friendly(message: string, field: QuantizeField): string {
  if (/expected number, received NaN/i.test(message)) return 'Enter a number.';
  const m = /expected number to be (>=|<=)\s*(-?\d+)/.exec(message);
  if (m) return m[1] === '>=' ? `At least ${m[2]}.` : `At most ${m[2]}.`;
  if (/expected int/i.test(message)) return 'Enter a whole number.';
  if (field === 'prompts' && /too big|<=16/i.test(message)) return 'At most 16 prompts.';
  return message;
}

/** Which wizard step holds each field (the wizard checks a step's fields before going on). */
export const STEP_FIELDS: readonly (readonly QuantizeField[])[] = [
  ['modelPath', 'tokenizerPath', 'textPath', 'window', 'maxSamples', 'prompts'],
  ['method', 'bits', 'blockSize', 'symmetric', 'accuracyLevel', 'format'],
  ['keepText'],
  ['name', 'form'],
];

/** Issues that block running, by field; empty when the form makes a valid recipe. */
export function validateQuantizeForm(form: QuantizeForm): QuantizeIssues {
  const issues: QuantizeIssues = {};
  if (!form.modelPath.trim()) addIssue(issues, 'modelPath', 'Choose the model file (.onnx).');
  if (form.evaluate) {
    if (!form.tokenizerPath.trim()) addIssue(issues, 'tokenizerPath', 'Evaluating quality needs the model\'s tokenizer (tokenizer.json).');
    if (!form.textPath.trim()) addIssue(issues, 'textPath', 'Choose a UTF-8 text file to measure perplexity on.');
  }
  const bad = invalidKeepPatterns(parseKeepPatterns(form.keepText));
  if (bad.length > 0) addIssue(issues, 'keepText', `"${bad[0].pattern}" is not a valid regular expression (${bad[0].message}).`);
  const parsed = Recipe.safeParse(buildQuantizeRecipe(form));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = quantizeFieldForIssuePath(issue.path);
      addIssue(issues, field, friendly(issue.message, field));
    }
  }
  return issues;
}

export function issuesForStep(issues: QuantizeIssues, step: number): QuantizeIssues {
  const fields = STEP_FIELDS[step] ?? [];
  const out: QuantizeIssues = {};
  for (const f of fields) if (issues[f]) out[f] = issues[f];
  return out;
}

/** The first wizard step with an issue, or -1. */
export function firstStepWithIssues(issues: QuantizeIssues): number {
  return STEP_FIELDS.findIndex((fields) => fields.some((f) => issues[f]));
}

/** Issues reported by `recipes.validate`, by field. */
export function quantizeIssuesFromServer(list: readonly { path: string; message: string }[]): QuantizeIssues {
  const issues: QuantizeIssues = {};
  for (const i of list) {
    const field = quantizeFieldForIssuePath(i.path);
    addIssue(issues, field, field === 'form' && i.path ? `${i.path}: ${i.message}` : friendly(i.message, field));
  }
  return issues;
}

/** A stored recipe with one quantize step back into the form; null when it is not one. */
export function quantizeFormFromRecipe(recipe: unknown): QuantizeForm | null {
  const parsed = Recipe.safeParse(recipe);
  if (!parsed.success) return null;
  const r = parsed.data;
  const step = r.steps.find((s) => s.type === 'quantize' && s.method === 'rtn');
  if (!step || step.type !== 'quantize' || step.method !== 'rtn') return null;
  const form = defaultQuantizeForm(r.model.path);
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
  form.method = step.method;
  form.bits = step.bits;
  form.blockSize = step.blockSize;
  form.symmetric = step.symmetric;
  form.accuracyLevel = step.accuracyLevel;
  form.format = step.format;
  form.keepText = step.keep.join('\n');
  return form;
}

/** The step as `quantize.plan` wants it, or null while the form cannot make one (then no plan is asked). */
export function planStep(form: QuantizeForm): QuantizeRtnStep | null {
  const parsed = QuantizeRtnStep.safeParse(buildQuantizeStep(form));
  if (!parsed.success) return null;
  if (invalidKeepPatterns(parsed.data.keep).length > 0) return null;
  return parsed.data;
}

// ── the LM head hint ────────────────────────────────────────────────────────────────────────────────

const LM_HEAD_NAME = /lm_head|embed_out|output_proj|(^|[./_])output([./_]|$)|wte|embed_tokens|word_embeddings/i;

/**
 * The weight that projects to the vocabulary, if it can be told: a MatMul/Gemm weight named like an LM
 * head, else the last MatMul/Gemm weight when its output width is larger than every other one's.
 */
export function findLmHead<W extends { name: string; op: string; shape: number[] }>(weights: readonly W[]): W | null {
  const linear = weights.filter((w) => w.op !== 'Gather' && w.shape.length === 2);
  if (linear.length === 0) return null;
  const named = linear.filter((w) => LM_HEAD_NAME.test(w.name));
  if (named.length > 0) return named[named.length - 1];
  const last = linear[linear.length - 1];
  const widest = linear.every((w) => w === last || w.shape[1] < last.shape[1]);
  return widest ? last : null;
}
