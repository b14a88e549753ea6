/**
 * The Quantize wizard's form ⇄ a recipe with one quantize step (any method). The form keeps what the user
 * typed (numbers may be empty strings while editing, patterns are one per line); `buildQuantizeRecipe`
 * turns it into a recipe, `validateQuantizeForm` checks it with the schema main uses and maps each issue to
 * its field, and `quantizeFormFromRecipe` reads a stored recipe back (re-attach, "Quantize again").
 * `buildSensitivityRecipe` makes the per-layer sensitivity job of the Weights step.
 */
import {
  DEFAULT_FP16_BLOCK_OPS, QuantizeStep, Recipe,
  type BitsOverride, type QuantizeInt8DynamicStep, type QuantizeInt8StaticStep, type QuantizeMethod, type RecipeInput,
} from '../../preload/recipe.ts';
import { parseStepDetails, QUANTIZE_METHODS } from '../../preload/methods.ts';
import { experimentNameOf } from '../../preload/naming.ts';
import { addIssue, issuePathParts, issuesFromList, numberMessage, type Issues } from './form-issues.ts';
import { unrecoverableReason } from '../../preload/recover.ts';
import { checkRecover, defaultRecoverPart, RECOVER_FIELD_BY_PATH, RECOVER_FIELDS, recoverPartFromRecipe, withRecovery, type RecoverFormPart } from './recover-form.ts';
import {
  baseRecipe, buildCalibration, buildEvaluation, defaultCalibrationPart, defaultEvaluationPart, EVALUATION_FIELD_BY_PATH, evaluationPartFromRecipe, fileNameOf,
  parseLines, toNumber, type CalibrationFormPart, type EvaluationFormPart,
} from './recipe-form.ts';

export { buildCalibration, DEFAULT_CALIBRATION, DEFAULT_PROMPTS } from './recipe-form.ts';

export type Bits = 2 | 4 | 8;
export type QuantFormat = 'matmulnbits' | 'qdq';
export type Int8Format = QuantizeInt8DynamicStep['format'];
export type RangeMethod = QuantizeInt8StaticStep['rangeMethod'];
export type ActivationType = QuantizeInt8StaticStep['activationType'];
export type MethodId = QuantizeMethod;

export interface QuantizeForm extends EvaluationFormPart, CalibrationFormPart, RecoverFormPart {
  method: MethodId;
  // RTN and GPTQ (weight-only)
  bits: Bits;
  blockSize: number | string;
  symmetric: boolean;
  accuracyLevel: number;
  format: QuantFormat;
  /** Weights at other bits than `bits` (mixed precision, e.g. from the sensitivity chart). */
  overrides: BitsOverride[];
  // GPTQ
  percdamp: number | string;
  actOrder: boolean;
  /** GPTQ: calibrate level by level on the already-quantized model (else one pass over the original). */
  sequential: boolean;
  columnBlock: number | string;
  // FP16
  keepIoTypes: boolean;
  blockOps: string[];
  // INT8 dynamic and static
  int8Format: Int8Format;
  perChannel: boolean;
  rangeMethod: RangeMethod;
  percentile: number | string;
  activationType: ActivationType;
  /** INT8 static: node-name patterns left in float, one per line. */
  excludeText: string;
  /** Keep patterns (regular expressions on weight names), one per line. */
  keepText: string;
  // KD-QAT (bits, block size and symmetric are the weight-only fields)
  /** The training text the quantized model is distilled on. */
  qatText: string;
  qatSteps: number | string;
  qatLr: number | string;
  /** ov-freeze: the o and v projections keep their float values while training, quantized at export. */
  qatFreezeOv: boolean;
}

export type QuantizeField = keyof QuantizeForm | 'form';
export type QuantizeIssues = Issues<QuantizeField>;

/** What a method card shows. The wizard renders whatever this lists. */
export interface MethodDescriptor {
  id: MethodId;
  name: string;
  /** One line: what it costs and what it gives. */
  tradeoff: string;
  /** Whether the method needs calibration text. */
  calibration: boolean;
  /** RTN and GPTQ: block-wise weight-only 2/4/8-bit (bits, block size, MatMulNBits/QDQ, overrides, sensitivity). KD-QAT has its own fields. */
  weightOnly: boolean;
}

/** The method cards, one per quantization method described in preload/methods.ts, in its order. */
export const METHODS: readonly MethodDescriptor[] = QUANTIZE_METHODS.map((d) => ({
  id: d.method,
  name: d.title,
  tradeoff: d.summary,
  calibration: (d.needs.calibration?.length ?? 0) > 0,
  weightOnly: d.options.some((o) => o.field === 'overrides'),
}));

export const methodOf = (id: MethodId): MethodDescriptor => METHODS.find((m) => m.id === id) ?? METHODS[0];

/** Expected quality, in words (an expectation, not a measurement: the Result step measures it). */
export function expectedQuality(method: MethodId, bits: Bits): { label: string; color: string } {
  switch (method) {
    case 'fp16': return { label: 'nearly lossless', color: 'teal' };
    case 'int8-dynamic': return { label: 'small loss', color: 'teal' };
    case 'int8-static': return { label: 'small loss if the calibration text is typical', color: 'yellow' };
    case 'gptq': return bits === 8 ? { label: 'small loss' , color: 'teal' } : { label: `better than RTN at the same size${bits === 2 ? ' (2-bit still lossy)' : ''}`, color: bits === 2 ? 'orange' : 'yellow' };
    case 'qat': return bits === 8 ? { label: 'small loss', color: 'teal' } : { label: 'better than GPTQ at the same size, after training', color: 'yellow' };
    case 'rtn': return bits === 8 ? { label: 'small loss', color: 'teal' } : bits === 4 ? { label: 'noticeable on small models', color: 'orange' } : { label: 'large loss', color: 'red' };
  }
}

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

export const INT8_FORMATS: readonly { value: Int8Format; label: string; help: string }[] = [
  { value: 'matmulinteger', label: 'MatMulInteger (standard ONNX)', help: 'DynamicQuantizeLinear → MatMulInteger → scale: standard operators (opset 11+), runs anywhere.' },
  { value: 'dynamic-quantize-matmul', label: 'DynamicQuantizeMatMul (com.microsoft)', help: 'One fused ONNX Runtime operator per weight: fewer nodes, ONNX Runtime only.' },
];

export const RANGE_METHODS: readonly { value: RangeMethod; label: string; help: string }[] = [
  { value: 'minmax', label: 'MinMax', help: 'The smallest and largest activation seen: simple, but one outlier widens the range for every value.' },
  { value: 'percentile', label: 'Percentile', help: 'Clips the rarest extreme values (the chosen percentile of |x|): finer steps for the common values.' },
  { value: 'entropy', label: 'Entropy (KL)', help: 'Picks the clipping threshold whose 128-level histogram stays closest (KL) to the real distribution.' },
];

export const ACTIVATION_TYPES: readonly { value: ActivationType; label: string }[] = [
  { value: 'uint8', label: 'uint8 (asymmetric)' },
  { value: 'int8', label: 'int8 (symmetric)' },
];

export const RTN_VS_GPTQ = 'RTN rounds every weight on its own; GPTQ rounds one input row at a time and spreads each rounding error over the rows not yet rounded, weighted by how the calibration activations use them — the same file size, usually a lower loss.';

export const DEFAULT_SENSITIVITY_SAMPLES = 8;

export function defaultQuantizeForm(modelPath = ''): QuantizeForm {
  return {
    ...defaultEvaluationPart(modelPath),
    ...defaultCalibrationPart(),
    ...defaultRecoverPart(),
    method: 'rtn',
    bits: 4,
    blockSize: 32,
    symmetric: false,
    accuracyLevel: 4,
    format: 'matmulnbits',
    overrides: [],
    percdamp: 0.01,
    actOrder: false,
    sequential: true,
    columnBlock: 128,
    keepIoTypes: true,
    blockOps: [...DEFAULT_FP16_BLOCK_OPS],
    int8Format: 'matmulinteger',
    perChannel: true,
    rangeMethod: 'minmax',
    percentile: 99.999,
    activationType: 'uint8',
    excludeText: '',
    keepText: '',
    qatText: '',
    qatSteps: 100,
    qatLr: 2e-4,
    qatFreezeOv: false,
  };
}

// ── patterns ────────────────────────────────────────────────────────────────────────────────────────

/** The patterns in a text field: one per line, blank lines ignored. */
export function parseKeepPatterns(text: string): string[] {
  return parseLines(text);
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

// ── sensitivity → mixed precision ───────────────────────────────────────────────────────────────────

/** One candidate of a sensitivity analysis, as the step reports it (details.steps[i].sensitivity). */
export interface SensitivityRow {
  name: string;
  /** Mean KL(original ‖ only this candidate quantized), nats per token. */
  kl: number;
  bits: number;
  params: number;
  /** The initializers the candidate covers (one per weight). */
  weights: string[];
}

/**
 * The `k` most sensitive candidates → exact-name patterns, written into the form in one go: mode '8bit'
 * replaces the overrides with those weights at 8 bits (and takes them out of the keep list); mode 'float'
 * adds them to the keep list (and takes them out of the overrides). Other keep patterns stay.
 * The same rule as main/engine/quantize/mixed-precision.ts `mixedPrecisionFromSensitivity`.
 */
export function applyTopK(form: QuantizeForm, rows: readonly SensitivityRow[], k: number, mode: '8bit' | 'float'): QuantizeForm {
  const top = [...rows].sort((a, b) => b.kl - a.kl).slice(0, Math.max(0, Math.floor(k)));
  const patterns = [...new Set(top.flatMap((r) => (r.weights.length > 0 ? r.weights : [r.name])))].map(exactNamePattern);
  const chosen = new Set(patterns);
  const keep = parseKeepPatterns(form.keepText);
  if (mode === '8bit') {
    return { ...form, overrides: patterns.map((pattern) => ({ pattern, bits: 8 })), keepText: keep.filter((p) => !chosen.has(p)).join('\n') };
  }
  return {
    ...form,
    overrides: form.overrides.filter((o) => !chosen.has(o.pattern)),
    keepText: [...keep.filter((p) => !chosen.has(p)), ...patterns].join('\n'),
  };
}

/** The sensitivity analysis of a finished job (its `sensitivity` step's details, parsed by their schema), or null. */
export function sensitivityOf(details: unknown): {
  rows: SensitivityRow[]; baseline: { kl: number; params: number } | null; method: string; bits: number | null; samples: number | null; tokens: number | null;
} | null {
  const step = parseStepDetails(details).find((s) => s.key === 'sensitivity');
  if (!step || step.key !== 'sensitivity') return null;
  const rows = step.sensitivity.map((r): SensitivityRow => ({ name: r.name, kl: r.kl, bits: r.bits, params: r.params, weights: r.weights.length > 0 ? r.weights : [r.name] }))
    .sort((a, b) => b.kl - a.kl);
  return {
    rows,
    baseline: step.baseline ? { kl: step.baseline.kl, params: step.baseline.params } : null,
    method: step.method,
    bits: step.quantize.bits,
    samples: step.samples,
    tokens: step.tokens,
  };
}

/** A short label for a weight name in a chart: the common "model." prefix and ".weight…" suffix dropped. */
export function shortWeightName(name: string): string {
  return name.replace(/^model\./, '').replace(/\.weight(_t)?$/, '');
}

// ── estimates ───────────────────────────────────────────────────────────────────────────────────────

/**
 * Assumed effective CPU throughput for the rough time estimates, in FLOP/s. A calibration pass costs
 * about 4·P FLOPs per token for a model of P parameters (the forward pass, 2·P, plus gathering the
 * statistics, about as much again); a sensitivity candidate costs a forward pass (2·P per token) and
 * about a third of a second to write and load its model.
 */
export const ASSUMED_FLOPS = 1e11;
const CALIBRATION_SETUP_S = 1;
const CANDIDATE_OVERHEAD_S = 0.3;

export function calibrationSeconds(parameters: number, tokens: number): number {
  return CALIBRATION_SETUP_S + (tokens * 4 * parameters) / ASSUMED_FLOPS;
}

export function sensitivitySeconds(parameters: number, candidates: number, tokens: number): number {
  return CALIBRATION_SETUP_S + (candidates + 1) * (CANDIDATE_OVERHEAD_S + (tokens * 2 * parameters) / ASSUMED_FLOPS);
}

/** "about 2 s", "about 4 min", "about 2.5 h" — deliberately coarse. */
export function roughDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'unknown';
  if (seconds < 5) return 'a few seconds';
  if (seconds < 90) return `about ${Math.round(seconds / 5) * 5} s`;
  if (seconds < 90 * 60) return `about ${Math.round(seconds / 60)} min`;
  const h = seconds / 3600;
  return `about ${h < 10 ? h.toFixed(1) : Math.round(h)} h`;
}

// ── form ⇄ recipe ───────────────────────────────────────────────────────────────────────────────────

export function parsePrompts(text: string): string[] {
  return parseLines(text);
}

type StepInput = Extract<NonNullable<RecipeInput['steps']>[number], { type: 'quantize' }>;

/** The recipe's quantize step for the form's method (the same object `quantize.plan` is asked about). */
export function buildQuantizeStep(form: QuantizeForm, method: MethodId = form.method): StepInput {
  const keep = parseKeepPatterns(form.keepText);
  const weightOnly = {
    type: 'quantize' as const, bits: form.bits, blockSize: toNumber(form.blockSize), symmetric: form.symmetric, accuracyLevel: form.accuracyLevel,
    format: form.format, keep, overrides: form.overrides.map((o) => ({ ...o })),
  };
  switch (method) {
    case 'rtn':
      return { ...weightOnly, method: 'rtn' };
    case 'gptq':
      return {
        ...weightOnly, method: 'gptq', calibration: buildCalibration(form), percdamp: toNumber(form.percdamp), actOrder: form.actOrder, sequential: form.sequential,
        columnBlock: toNumber(form.columnBlock),
      };
    case 'fp16':
      return { type: 'quantize', method: 'fp16', keepIoTypes: form.keepIoTypes, blockOps: [...form.blockOps], keep };
    case 'int8-dynamic':
      return { type: 'quantize', method: 'int8-dynamic', format: form.int8Format, perChannel: form.perChannel, keep };
    case 'int8-static':
      return {
        type: 'quantize', method: 'int8-static', calibration: buildCalibration(form), rangeMethod: form.rangeMethod, percentile: toNumber(form.percentile),
        perChannel: form.perChannel, activationType: form.activationType, exclude: parseKeepPatterns(form.excludeText), keep,
      };
    case 'qat':
      return {
        type: 'quantize', method: 'qat', bits: form.bits as 4 | 8, blockSize: toNumber(form.blockSize), symmetric: form.symmetric,
        freezeRoles: form.qatFreezeOv ? ['o', 'v'] : [], text: form.qatText, steps: toNumber(form.qatSteps), lr: toNumber(form.qatLr),
      };
  }
}

export function buildQuantizeRecipe(form: QuantizeForm): RecipeInput {
  return { ...baseRecipe(form), steps: withRecovery([buildQuantizeStep(form)], form), evaluation: buildEvaluation(form) };
}

/**
 * The per-layer sensitivity job: the current RTN/GPTQ settings (without overrides, so every weight is
 * measured at the step's own bits), the calibration text, `samples` sequences scored; no evaluation.
 */
export function buildSensitivityRecipe(form: QuantizeForm, samples: number | string = DEFAULT_SENSITIVITY_SAMPLES): RecipeInput {
  const method = form.method === 'gptq' ? 'gptq' : 'rtn';
  const quantize = { ...buildQuantizeStep(form, method), overrides: [] } as Extract<StepInput, { method: 'rtn' | 'gptq' }>;
  const recipe = baseRecipe(form);
  const steps: NonNullable<RecipeInput['steps']> = [{ type: 'sensitivity', quantize, calibration: buildCalibration(form), samples: toNumber(samples) }];
  if (!recipe.name) recipe.name = experimentNameOf({ ...recipe, steps }) ?? `Sensitivity ${method.toUpperCase()} ${form.bits}-bit · ${fileNameOf(form.modelPath)}`.slice(0, 200);
  return {
    ...recipe,
    steps,
    evaluation: { footprint: false },
  };
}

const FIELD_BY_PATH: Record<string, QuantizeField> = {
  ...EVALUATION_FIELD_BY_PATH,
  ...RECOVER_FIELD_BY_PATH,
  'steps.0.bits': 'bits',
  'steps.0.blockSize': 'blockSize',
  'steps.0.symmetric': 'symmetric',
  'steps.0.accuracyLevel': 'accuracyLevel',
  'steps.0.format': 'format',
  'steps.0.keep': 'keepText',
  'steps.0.method': 'method',
  'steps.0.overrides': 'overrides',
  'steps.0.percdamp': 'percdamp',
  'steps.0.actOrder': 'actOrder',
  'steps.0.sequential': 'sequential',
  'steps.0.columnBlock': 'columnBlock',
  'steps.0.calibration.text': 'calibText',
  'steps.0.calibration.samples': 'calibSamples',
  'steps.0.calibration.length': 'calibLength',
  'steps.0.calibration.seed': 'calibSeed',
  'steps.0.keepIoTypes': 'keepIoTypes',
  'steps.0.blockOps': 'blockOps',
  'steps.0.perChannel': 'perChannel',
  'steps.0.rangeMethod': 'rangeMethod',
  'steps.0.percentile': 'percentile',
  'steps.0.activationType': 'activationType',
  'steps.0.exclude': 'excludeText',
  'steps.0.text': 'qatText',
  'steps.0.steps': 'qatSteps',
  'steps.0.lr': 'qatLr',
  'steps.0.freezeRoles': 'qatFreezeOv',
};

/** A recipe issue path ("steps.0.blockSize", "/steps/0/keep/1" or an array) → the form field. */
export function quantizeFieldForIssuePath(path: string | readonly PropertyKey[]): QuantizeField {
  const parts = issuePathParts(path);
  for (let n = parts.length; n > 0; n--) {
    const field = FIELD_BY_PATH[parts.slice(0, n).join('.')];
    if (field) return field;
  }
  return 'form';
}

function friendly(message: string, field: QuantizeField): string {
  const number = numberMessage(message);
  if (number) return number;
  if (field === 'prompts' && /too big|<=16/i.test(message)) return 'At most 16 prompts.';
  if (field === 'calibText' && /path is required|too small/i.test(message)) return 'Choose a UTF-8 text file to calibrate on.';
  return message;
}

/** Which wizard step holds each field (the wizard checks a step's fields before going on). */
export const STEP_FIELDS: readonly (readonly QuantizeField[])[] = [
  ['modelPath', 'tokenizerPath', 'textPath', 'window', 'maxSamples', 'prompts'],
  [
    'method', 'bits', 'blockSize', 'symmetric', 'accuracyLevel', 'format', 'percdamp', 'actOrder', 'sequential', 'columnBlock',
    'calibText', 'calibSamples', 'calibLength', 'calibSeed', 'keepIoTypes', 'blockOps', 'int8Format', 'perChannel',
    'rangeMethod', 'percentile', 'activationType', 'excludeText', 'qatText', 'qatSteps', 'qatLr', 'qatFreezeOv', ...RECOVER_FIELDS,
  ],
  ['keepText', 'overrides'],
  ['name', 'form'],
];

function checkPatterns(issues: QuantizeIssues, field: QuantizeField, text: string): void {
  const bad = invalidKeepPatterns(parseKeepPatterns(text));
  if (bad.length > 0) addIssue(issues, field, `"${bad[0].pattern}" is not a valid regular expression (${bad[0].message}).`);
}

/** Issues that block running, by field; empty when the form makes a valid recipe. */
export function validateQuantizeForm(form: QuantizeForm): QuantizeIssues {
  const issues: QuantizeIssues = {};
  if (!form.modelPath.trim()) addIssue(issues, 'modelPath', 'Choose the model file (.onnx).');
  if (!unrecoverableReason({ type: 'quantize', method: form.method, format: form.format })) checkRecover(issues, form);
  const calibrates = methodOf(form.method).calibration;
  const trains = form.method === 'qat';
  if (form.evaluate || calibrates || trains) {
    if (!form.tokenizerPath.trim()) {
      addIssue(issues, 'tokenizerPath', form.evaluate ? 'Evaluating quality needs the model\'s tokenizer (tokenizer.json).' : trains ? 'KD-QAT trains on text, which needs the model\'s tokenizer (tokenizer.json).' : 'Calibration needs the model\'s tokenizer (tokenizer.json).');
    }
  }
  if (trains && !form.qatText.trim()) addIssue(issues, 'qatText', 'Choose a UTF-8 text file to train on.');
  if (trains && form.bits === 2) addIssue(issues, 'bits', 'KD-QAT exports 4 or 8 bits: choose 4 or 8.');
  if (form.evaluate && !form.textPath.trim()) addIssue(issues, 'textPath', 'Choose a UTF-8 text file to measure perplexity on.');
  if (calibrates && !form.calibText.trim()) addIssue(issues, 'calibText', 'Choose a UTF-8 text file to calibrate on.');
  checkPatterns(issues, 'keepText', form.keepText);
  if (form.method === 'int8-static') checkPatterns(issues, 'excludeText', form.excludeText);
  const parsed = Recipe.safeParse(buildQuantizeRecipe(form));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = quantizeFieldForIssuePath(issue.path);
      addIssue(issues, field, friendly(issue.message, field));
    }
  }
  return issues;
}

const SENSITIVITY_LABELS: Record<string, string | null> = {
  'steps.0.samples': 'Sequences scored',
  'steps.0.calibration.text': null,
  'steps.0.calibration.samples': 'Samples N',
  'steps.0.calibration.length': 'Length L',
  'steps.0.calibration.seed': 'Seed',
  'steps.0.quantize.calibration.text': null,
};

/** Issues that stop the sensitivity job from starting, in words (empty when it can start). */
export function sensitivityIssues(form: QuantizeForm, samples: number | string): string[] {
  const out: string[] = [];
  if (!form.tokenizerPath.trim()) out.push('The analysis scores calibration text, which needs the model\'s tokenizer (Model step).');
  if (!form.calibText.trim()) out.push('Choose a calibration text file.');
  const parsed = Recipe.safeParse(buildSensitivityRecipe(form, samples));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const where = issue.path.join('.');
      const label = where in SENSITIVITY_LABELS ? SENSITIVITY_LABELS[where] : (where.startsWith('steps.0.quantize') ? 'Method settings' : where || 'Recipe');
      if (label) out.push(`${label}: ${friendly(issue.message, 'form')}`);
    }
  }
  return [...new Set(out)];
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
  return issuesFromList(list, quantizeFieldForIssuePath, friendly);
}

/** A stored recipe with a quantize step (of any method) back into the form; null when it is not one. */
export function quantizeFormFromRecipe(recipe: unknown): QuantizeForm | null {
  const parsed = Recipe.safeParse(recipe);
  if (!parsed.success) return null;
  const r = parsed.data;
  const step = r.steps.find((s) => s.type === 'quantize');
  if (!step || step.type !== 'quantize') return null;
  const form: QuantizeForm = { ...defaultQuantizeForm(r.model.path), ...evaluationPartFromRecipe(r) };
  Object.assign(form, recoverPartFromRecipe(r));
  form.method = step.method;
  form.keepText = 'keep' in step ? step.keep.join('\n') : '';
  if ('calibration' in step) {
    form.calibText = step.calibration.text;
    form.calibSamples = step.calibration.samples;
    form.calibLength = step.calibration.length;
    form.calibSeed = step.calibration.seed;
  }
  switch (step.method) {
    case 'rtn':
    case 'gptq':
      form.bits = step.bits;
      form.blockSize = step.blockSize;
      form.symmetric = step.symmetric;
      form.accuracyLevel = step.accuracyLevel;
      form.format = step.format;
      form.overrides = step.overrides.map((o) => ({ ...o }));
      if (step.method === 'gptq') {
        form.percdamp = step.percdamp;
        form.actOrder = step.actOrder;
        form.sequential = step.sequential;
        form.columnBlock = step.columnBlock;
      }
      break;
    case 'fp16':
      form.keepIoTypes = step.keepIoTypes;
      form.blockOps = [...step.blockOps];
      break;
    case 'int8-dynamic':
      form.int8Format = step.format;
      form.perChannel = step.perChannel;
      break;
    case 'int8-static':
      form.rangeMethod = step.rangeMethod;
      form.percentile = step.percentile;
      form.perChannel = step.perChannel;
      form.activationType = step.activationType;
      form.excludeText = step.exclude.join('\n');
      break;
    case 'qat':
      form.bits = step.bits;
      form.blockSize = step.blockSize;
      form.symmetric = step.symmetric;
      form.qatText = step.text;
      form.qatSteps = step.steps ?? form.qatSteps;
      form.qatLr = step.lr;
      form.qatFreezeOv = step.freezeRoles.includes('o') && step.freezeRoles.includes('v');
      break;
  }
  return form;
}

/** Stands in for a calibration text not chosen yet: the plan never reads it. */
const PLAN_CALIBRATION_PLACEHOLDER = '(calibration text not chosen yet)';
/** Stands in for a KD-QAT training text not chosen yet: the plan never reads it. */
const PLAN_TRAINING_PLACEHOLDER = '(training text not chosen yet)';

/**
 * The step as `quantize.plan` wants it for `method` (the form's own by default), or null while the form
 * cannot make one (then no plan is asked). A calibration text not chosen yet does not hold the plan back.
 */
export function planStep(form: QuantizeForm, method: MethodId = form.method): QuantizeStep | null {
  const step = buildQuantizeStep(form, method);
  if ('calibration' in step && !step.calibration.text) step.calibration = { ...step.calibration, text: PLAN_CALIBRATION_PLACEHOLDER };
  // The plan reads only the grid: a training text or schedule not chosen yet does not hold it back.
  if (step.method === 'qat') Object.assign(step, { text: step.text || PLAN_TRAINING_PLACEHOLDER, steps: 1, lr: 1e-4 });
  const parsed = QuantizeStep.safeParse(step);
  if (!parsed.success) return null;
  if ('keep' in parsed.data && invalidKeepPatterns(parsed.data.keep).length > 0) return null;
  if (parsed.data.method === 'int8-static' && invalidKeepPatterns(parsed.data.exclude).length > 0) return null;
  return parsed.data;
}

/** "RTN 4-bit, block 32, asymmetric, MatMulNBits, accuracy level 4" — one line describing the step. */
export function settingsLine(form: QuantizeForm): string {
  switch (form.method) {
    case 'rtn':
    case 'gptq': {
      const format = form.format === 'qdq' ? 'QDQ' : `MatMulNBits, accuracy level ${form.accuracyLevel}`;
      const extra = form.method === 'gptq' ? `, percdamp ${form.percdamp}${form.actOrder ? ', act-order' : ''}${form.sequential ? '' : ', one-pass calibration'}` : '';
      const mixed = form.overrides.length > 0 ? `, ${form.overrides.length} at ${[...new Set(form.overrides.map((o) => o.bits))].join('/')}-bit` : '';
      return `${form.method.toUpperCase()} ${form.bits}-bit, block ${form.blockSize}, ${form.symmetric ? 'symmetric' : 'asymmetric'}, ${format}${extra}${mixed}`;
    }
    case 'fp16':
      return `FP16, ${form.keepIoTypes ? 'float32 inputs and outputs kept' : 'float16 inputs and outputs'}, ${form.blockOps.length} op type(s) kept in float32`;
    case 'int8-dynamic':
      return `INT8 dynamic, ${form.int8Format === 'matmulinteger' ? 'MatMulInteger' : 'DynamicQuantizeMatMul'}, ${form.perChannel ? 'per channel' : 'per tensor'}`;
    case 'qat':
      return `KD-QAT ${form.bits}-bit, block ${form.blockSize}, ${form.symmetric ? 'symmetric' : 'asymmetric'}, MatMulNBits; ${form.qatSteps} steps, lr ${form.qatLr}${form.qatFreezeOv ? ', ov-freeze' : ''}`;
    case 'int8-static':
      return `INT8 static (QDQ), ${RANGE_METHODS.find((r) => r.value === form.rangeMethod)?.label ?? form.rangeMethod}${form.rangeMethod === 'percentile' ? ` ${form.percentile}` : ''}, ${form.activationType} activations, ${form.perChannel ? 'per channel' : 'per tensor'}`;
  }
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
