/**
 * The Prune wizard's form ⇄ a recipe with one prune step (magnitude, Wanda, SparseGPT or structured).
 * The form keeps what the user typed (numbers may be empty strings while editing, keep patterns one per
 * line); `buildPruneRecipe` turns it into a recipe, `validatePruneForm` checks it with the schema main uses
 * and maps each issue to its field, and `pruneFormFromRecipe` reads a stored recipe back (re-run, edit).
 * The model, evaluation and calibration fields are the ones every compress wizard shares (recipe-form.ts).
 */
import {
  effectiveSparsity, importanceNeedsCalibration, parseNmPattern, Recipe, STRUCTURED_IMPORTANCES, type PruneMethod, type PruneStep, type RecipeInput, type StructuredImportance,
} from '../../preload/recipe.ts';
import { checkRecover, defaultRecoverPart, RECOVER_FIELD_BY_PATH, RECOVER_FIELDS, recoverPartFromRecipe, withRecovery, type RecoverFormPart } from './recover-form.ts';
import { PRUNE_METHODS } from '../../preload/methods.ts';
import { addIssue, issuePathParts, issuesFromList, numberMessage, type Issues } from './form-issues.ts';
import { invalidKeepPatterns, parseKeepPatterns } from './quantize-form.ts';
import {
  baseRecipe, buildCalibration, buildEvaluation, defaultCalibrationPart, defaultEvaluationPart, EVALUATION_FIELD_BY_PATH, evaluationPartFromRecipe, fileNameOf,
  toNumber, type CalibrationFormPart, type EvaluationFormPart,
} from './recipe-form.ts';

export type PruneMethodId = PruneMethod;
export type Scope = 'layer' | 'global';
export type Allocation = 'uniform' | 'owl';
export type StructuredTarget = 'heads' | 'neurons' | 'layers';
export type Importance = StructuredImportance;

export interface PruneForm extends EvaluationFormPart, CalibrationFormPart, RecoverFormPart {
  method: PruneMethodId;
  // Unstructured (magnitude, Wanda, SparseGPT)
  /** The fraction of each weight set to zero, 0 < s < 1 (ignored with an N:M pattern, which fixes it). */
  sparsity: number | string;
  /** '' (unstructured) or an N:M pattern such as '2:4'. */
  pattern: string;
  /** Magnitude: rank each weight on its own ('layer') or all together ('global'). */
  scope: Scope;
  allocation: Allocation;
  /** Wanda, SparseGPT: calibrate level by level on the already-pruned model (else one pass over the original). */
  sequential: boolean;
  /** SparseGPT: quantize the kept weights in the same sweep (MatMulNBits). */
  quantize: boolean;
  quantizeBits: 2 | 4 | 8;
  quantizeBlockSize: number | string;
  // Structured
  target: StructuredTarget;
  /** Remove a fraction (ratio) or a number (count) of heads, neurons or blocks. */
  amount: 'ratio' | 'count';
  ratio: number | string;
  count: number | string;
  importance: Importance;
  /** Keep patterns (regular expressions on weight names), one per line. */
  keepText: string;
}

export type PruneField = keyof PruneForm | 'form';
export type PruneIssues = Issues<PruneField>;

/** What a method card shows, read from the step descriptions (preload/methods.ts). */
export interface PruneMethodCard {
  id: PruneMethodId;
  name: string;
  /** One line: what it costs and what it gives. */
  tradeoff: string;
  /** Whether the method always needs calibration text (magnitude and structured only for some options). */
  calibration: boolean;
  /** Removes whole parts (heads, neurons, blocks) instead of zeroing single weights. */
  structured: boolean;
}

export const PRUNE_METHOD_CARDS: readonly PruneMethodCard[] = PRUNE_METHODS.map((d) => ({
  id: d.method,
  name: d.title,
  tradeoff: d.summary,
  calibration: (d.needs.calibration?.length ?? 0) > 0,
  structured: d.method === 'structured',
}));

export const pruneMethodOf = (id: PruneMethodId): PruneMethodCard => PRUNE_METHOD_CARDS.find((m) => m.id === id) ?? PRUNE_METHOD_CARDS[0];

/**
 * What the user gets, said before running: unstructured zeros leave the ONNX file as large and
 * onnxruntime's CPU kernels as fast as before (only the compressed size drops); structured removal
 * really shrinks and speeds up the model.
 */
export function gainNote(method: PruneMethodId): { title: string; text: string; color: string } {
  if (method === 'structured') {
    return {
      title: 'Smaller and faster',
      text: 'Structured pruning removes whole heads, neurons or blocks from the graph: the ONNX file gets smaller and onnxruntime runs it faster. Quality drops more per parameter removed than with unstructured pruning.',
      color: 'teal',
    };
  }
  return {
    title: 'Same file size, same speed',
    text: 'Unstructured (and N:M) pruning sets weights to zero but keeps them in the graph: the ONNX file is not smaller and onnxruntime\'s CPU kernels are not faster. The gain shows in the compressed size (the comparison reports it) and in runtimes with sparse kernels. For a model that really gets smaller and faster, use structured pruning — or SparseGPT with 4-bit quantization in the same pass.',
    color: 'yellow',
  };
}

export const NM_PATTERNS: readonly { value: string; label: string }[] = [
  { value: '', label: 'Unstructured' },
  { value: '2:4', label: '2:4' },
  { value: '4:8', label: '4:8' },
];

export const SCOPES: readonly { value: Scope; label: string; help: string }[] = [
  { value: 'layer', label: 'Per weight', help: 'Every weight loses the same fraction.' },
  { value: 'global', label: 'Global', help: 'The smallest weights of all weights together: some weights lose more than others.' },
];

export const ALLOCATIONS: readonly { value: Allocation; label: string; help: string }[] = [
  { value: 'uniform', label: 'Uniform', help: 'Every block the same sparsity.' },
  { value: 'owl', label: 'Outlier-weighted (OWL)', help: 'Blocks with more activation outliers are pruned less, the others more, at the same overall sparsity (arXiv 2310.05175). Measured on calibration text.' },
];

export const TARGETS: readonly { value: StructuredTarget; label: string; help: string }[] = [
  { value: 'heads', label: 'Attention heads', help: 'Query/key/value rows and output columns of the chosen heads in every block (grouped-query attention keeps its grouping).' },
  { value: 'neurons', label: 'MLP neurons', help: 'Gate/up rows and down columns of the chosen neurons in every block.' },
  { value: 'layers', label: 'Whole blocks', help: 'The chosen transformer blocks are bypassed and their cache inputs and outputs dropped.' },
];

const IMPORTANCE_TEXT: Record<Importance, { label: string; help: string }> = {
  magnitude: { label: 'Weight magnitude', help: 'The norms of the weights: no calibration needed.' },
  activation: { label: 'Activations', help: 'Activation statistics from calibration text.' },
  'block-influence': { label: 'Block influence', help: 'How little a block changes its input (1 − cosine of its input and output), as ShortGPT: whole blocks only.' },
  taylor: { label: 'Loss gradient (Taylor)', help: 'How much the calibration loss changes, to first order, when a part is removed (|Σ weight × gradient|, as LLM-Pruner): one backward pass per calibration batch.' },
};

/** The importances in the schema's order, with their wizard wording. */
export const IMPORTANCES: readonly { value: Importance; label: string; help: string }[] = STRUCTURED_IMPORTANCES.map((value) => ({ value, ...IMPORTANCE_TEXT[value] }));

/** The importances measured on calibration text, as the method card names them ("activation, block-influence or taylor"). */
export const CALIBRATED_IMPORTANCES = ((list: string[]) => (list.length > 1 ? `${list.slice(0, -1).join(', ')} or ${list.at(-1)!}` : list.join('')))(
  STRUCTURED_IMPORTANCES.filter(importanceNeedsCalibration).map((i) => i as string),
);

export function defaultPruneForm(modelPath = ''): PruneForm {
  return {
    ...defaultEvaluationPart(modelPath),
    ...defaultCalibrationPart(),
    ...defaultRecoverPart(),
    method: 'magnitude',
    sparsity: 0.5,
    pattern: '',
    scope: 'layer',
    allocation: 'uniform',
    sequential: true,
    quantize: false,
    quantizeBits: 4,
    quantizeBlockSize: 32,
    target: 'neurons',
    amount: 'ratio',
    ratio: 0.25,
    count: 1,
    importance: 'magnitude',
    keepText: '',
  };
}

/** Whether the form's settings need calibration text: Wanda and SparseGPT always; OWL allocation; every structured importance but magnitude. */
export function needsCalibration(form: Pick<PruneForm, 'method' | 'allocation' | 'importance' | 'pattern'>): boolean {
  switch (form.method) {
    case 'wanda':
    case 'sparsegpt': return true;
    case 'magnitude': return form.allocation === 'owl' && form.pattern === '';
    case 'structured': return importanceNeedsCalibration(form.importance);
  }
}

/** The overall fraction of weights the form prunes (the pattern's 1 − N/M, else the sparsity), or null while it is not a number. */
export function formSparsity(form: Pick<PruneForm, 'sparsity' | 'pattern'>): number | null {
  const s = effectiveSparsity({ sparsity: toNumber(form.sparsity), pattern: form.pattern || undefined });
  return Number.isFinite(s) ? s : null;
}

// ── form ⇄ recipe ───────────────────────────────────────────────────────────────────────────────────

type PruneStepInput = Extract<NonNullable<RecipeInput['steps']>[number], { type: 'prune' }>;

/** The recipe's prune step for the form's method. */
export function buildPruneStep(form: PruneForm): PruneStepInput {
  const keep = parseKeepPatterns(form.keepText);
  const calibration = needsCalibration(form) ? { calibration: buildCalibration(form) } : {};
  if (form.method === 'structured') {
    const amount = form.amount === 'ratio' ? { ratio: toNumber(form.ratio) } : { count: toNumber(form.count) };
    return { type: 'prune', method: 'structured', target: form.target, ...amount, importance: form.importance, ...calibration, keep };
  }
  const pattern = form.pattern ? { pattern: form.pattern } : { sparsity: toNumber(form.sparsity) };
  const allocation = form.pattern ? 'uniform' : form.allocation;
  switch (form.method) {
    case 'magnitude':
      return { type: 'prune', method: 'magnitude', ...pattern, scope: form.scope, allocation: form.scope === 'global' ? 'uniform' : allocation, ...calibration, keep };
    case 'wanda':
      return { type: 'prune', method: 'wanda', ...pattern, allocation, calibration: buildCalibration(form), sequential: form.sequential, keep };
    case 'sparsegpt':
      return {
        type: 'prune', method: 'sparsegpt', ...pattern, allocation, calibration: buildCalibration(form), sequential: form.sequential, keep,
        ...(form.quantize ? { quantize: { bits: form.quantizeBits, blockSize: toNumber(form.quantizeBlockSize) } } : {}),
      };
  }
}

export function buildPruneRecipe(form: PruneForm): RecipeInput {
  return { ...baseRecipe(form), steps: withRecovery([buildPruneStep(form)], form), evaluation: buildEvaluation(form) };
}

const FIELD_BY_PATH: Record<string, PruneField> = {
  ...EVALUATION_FIELD_BY_PATH,
  ...RECOVER_FIELD_BY_PATH,
  'steps.0.method': 'method',
  'steps.0.sparsity': 'sparsity',
  'steps.0.pattern': 'pattern',
  'steps.0.scope': 'scope',
  'steps.0.allocation': 'allocation',
  'steps.0.sequential': 'sequential',
  'steps.0.quantize.bits': 'quantizeBits',
  'steps.0.quantize.blockSize': 'quantizeBlockSize',
  'steps.0.target': 'target',
  'steps.0.ratio': 'ratio',
  'steps.0.count': 'count',
  'steps.0.importance': 'importance',
  'steps.0.keep': 'keepText',
  'steps.0.calibration': 'calibText',
  'steps.0.calibration.text': 'calibText',
  'steps.0.calibration.samples': 'calibSamples',
  'steps.0.calibration.length': 'calibLength',
  'steps.0.calibration.seed': 'calibSeed',
};

/** A recipe issue path ("steps.0.sparsity", "/steps/0/keep/1" or an array) → the form field. */
export function pruneFieldForIssuePath(path: string | readonly PropertyKey[]): PruneField {
  const parts = issuePathParts(path);
  for (let n = parts.length; n > 0; n--) {
    const field = FIELD_BY_PATH[parts.slice(0, n).join('.')];
    if (field) return field;
  }
  return 'form';
}

function friendly(message: string, field: PruneField): string {
  const number = numberMessage(message);
  if (number) return number;
  if (field === 'prompts' && /too big|<=16/i.test(message)) return 'At most 16 prompts.';
  if (field === 'calibText' && /path is required|too small|add calibration/i.test(message)) return 'Choose a UTF-8 text file to calibrate on.';
  if (field === 'sparsity' && /above 0/.test(message)) return 'Sparsity must be above 0 %.';
  if (field === 'sparsity' && /below 1/.test(message)) return 'Sparsity must be below 100 % (pruning every weight leaves nothing).';
  if ((field === 'ratio') && /exactly one/.test(message)) return 'Give a fraction or a number to remove.';
  return message;
}

/** Which wizard step holds each field (the wizard checks a step's fields before going on). */
export const STEP_FIELDS: readonly (readonly PruneField[])[] = [
  ['modelPath', 'tokenizerPath', 'textPath', 'window', 'maxSamples', 'prompts'],
  ['method'],
  [
    'sparsity', 'pattern', 'scope', 'allocation', 'sequential', 'quantize', 'quantizeBits', 'quantizeBlockSize', 'target', 'amount', 'ratio', 'count',
    'importance', 'calibText', 'calibSamples', 'calibLength', 'calibSeed', 'keepText', ...RECOVER_FIELDS,
  ],
  ['name', 'form'],
];

/** Issues that block running, by field; empty when the form makes a valid recipe. */
export function validatePruneForm(form: PruneForm): PruneIssues {
  const issues: PruneIssues = {};
  if (!form.modelPath.trim()) addIssue(issues, 'modelPath', 'Choose the model file (.onnx).');
  checkRecover(issues, form);
  const calibrates = needsCalibration(form);
  if ((form.evaluate || calibrates) && !form.tokenizerPath.trim()) {
    addIssue(issues, 'tokenizerPath', form.evaluate ? 'Evaluating quality needs the model\'s tokenizer (tokenizer.json).' : 'Calibration needs the model\'s tokenizer (tokenizer.json).');
  }
  if (form.evaluate && !form.textPath.trim()) addIssue(issues, 'textPath', 'Choose a UTF-8 text file to measure perplexity on.');
  if (calibrates && !form.calibText.trim()) addIssue(issues, 'calibText', 'Choose a UTF-8 text file to calibrate on.');
  const bad = invalidKeepPatterns(parseKeepPatterns(form.keepText));
  if (bad.length > 0) addIssue(issues, 'keepText', `"${bad[0].pattern}" is not a valid regular expression (${bad[0].message}).`);
  const parsed = Recipe.safeParse(buildPruneRecipe(form));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = pruneFieldForIssuePath(issue.path);
      addIssue(issues, field, friendly(issue.message, field));
    }
  }
  return issues;
}

export function pruneIssuesForStep(issues: PruneIssues, step: number): PruneIssues {
  const out: PruneIssues = {};
  for (const f of STEP_FIELDS[step] ?? []) if (issues[f]) out[f] = issues[f];
  return out;
}

/** The first wizard step with an issue, or -1. */
export function firstPruneStepWithIssues(issues: PruneIssues): number {
  return STEP_FIELDS.findIndex((fields) => fields.some((f) => issues[f]));
}

/** Issues reported by `recipes.validate`, by field. */
export function pruneIssuesFromServer(list: readonly { path: string; message: string }[]): PruneIssues {
  return issuesFromList(list, pruneFieldForIssuePath, friendly);
}

/** The prune step of a stored recipe, or null when it has none (or is not a valid recipe). */
export function pruneStepOf(recipe: unknown): PruneStep | null {
  const parsed = Recipe.safeParse(recipe);
  if (!parsed.success) return null;
  const step = parsed.data.steps.find((s) => s.type === 'prune');
  return step && step.type === 'prune' ? step : null;
}

/** A stored recipe with a prune step back into the form (re-run, edit); null when it is not one. */
export function pruneFormFromRecipe(recipe: unknown): PruneForm | null {
  const parsed = Recipe.safeParse(recipe);
  if (!parsed.success) return null;
  const step = parsed.data.steps.find((s) => s.type === 'prune');
  if (!step || step.type !== 'prune') return null;
  const form: PruneForm = { ...defaultPruneForm(parsed.data.model.path), ...evaluationPartFromRecipe(parsed.data) };
  Object.assign(form, recoverPartFromRecipe(parsed.data));
  form.method = step.method;
  form.keepText = step.keep.join('\n');
  if (step.calibration) {
    form.calibText = step.calibration.text;
    form.calibSamples = step.calibration.samples;
    form.calibLength = step.calibration.length;
    form.calibSeed = step.calibration.seed;
  }
  if (step.method === 'structured') {
    form.target = step.target;
    form.importance = step.importance;
    if (step.count !== undefined) {
      form.amount = 'count';
      form.count = step.count;
    } else if (step.ratio !== undefined) {
      form.amount = 'ratio';
      form.ratio = step.ratio;
    }
    return form;
  }
  form.pattern = step.pattern ?? '';
  form.sparsity = effectiveSparsity(step);
  form.allocation = step.allocation;
  if (step.method === 'magnitude') form.scope = step.scope;
  else form.sequential = step.sequential;
  if (step.method === 'sparsegpt' && step.quantize) {
    form.quantize = true;
    form.quantizeBits = step.quantize.bits;
    form.quantizeBlockSize = step.quantize.blockSize;
  }
  return form;
}

// ── words ───────────────────────────────────────────────────────────────────────────────────────────

/** "45 %" for a fraction, up to one decimal. */
export function percent(fraction: number): string {
  const p = fraction * 100;
  return `${Number.isInteger(Math.round(p * 10) / 10) ? Math.round(p) : (Math.round(p * 10) / 10).toFixed(1)} %`;
}

/** "Wanda 50 % unstructured, uniform, sequential calibration" — one line describing the step. */
export function pruneSettingsLine(form: PruneForm): string {
  const card = pruneMethodOf(form.method);
  const short = card.name.split(' — ')[0];
  if (form.method === 'structured') {
    const what = TARGETS.find((t) => t.value === form.target)?.label.toLowerCase() ?? form.target;
    const amount = form.amount === 'ratio' ? `${percent(toNumber(form.ratio))} of the ${what}${form.target === 'layers' ? '' : ' of every block'}` : `${form.count} ${what}${form.target === 'layers' ? '' : ' per block'}`;
    return `${short}: remove ${amount}, ranked by ${IMPORTANCES.find((i) => i.value === form.importance)?.label.toLowerCase() ?? form.importance}`;
  }
  const s = formSparsity(form);
  const how = form.pattern ? `${form.pattern} (${s === null ? '?' : percent(s)})` : `${s === null ? '?' : percent(s)} unstructured`;
  const parts = [`${short} ${how}`];
  if (form.method === 'magnitude') parts.push(form.scope === 'global' ? 'global ranking' : 'per weight');
  if (!form.pattern && !(form.method === 'magnitude' && form.scope === 'global')) parts.push(form.allocation === 'owl' ? 'OWL allocation' : 'uniform');
  if (form.method !== 'magnitude') parts.push(form.sequential ? 'sequential calibration' : 'one-pass calibration');
  if (form.method === 'sparsegpt' && form.quantize) parts.push(`+ ${form.quantizeBits}-bit block ${form.quantizeBlockSize}`);
  return parts.join(', ');
}

/** The job's default name: "Prune model.onnx · Wanda 50 %". */
export function defaultPruneName(form: PruneForm): string {
  const short = pruneMethodOf(form.method).name.split(' — ')[0];
  const s = formSparsity(form);
  const how = form.method === 'structured'
    ? `${form.target} ${form.amount === 'ratio' ? percent(toNumber(form.ratio)) : `×${form.count}`}`
    : `${form.pattern || (s === null ? '' : percent(s))}${form.method === 'sparsegpt' && form.quantize ? ` + ${form.quantizeBits}-bit` : ''}`;
  return `Prune ${fileNameOf(form.modelPath)} · ${short} ${how}`.slice(0, 200);
}

export { parseNmPattern };
