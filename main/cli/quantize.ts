/**
 * `whittle quantize <model> --method gptq --bits 4 …`: builds a recipe (one quantize step of the chosen
 * method — rtn by default — and an evaluation of the original beside the result when --eval-text is
 * given), runs it through the job system exactly like `whittle run`, and prints the two models side by
 * side. Flags that belong to another method are refused (exit 2) rather than silently ignored.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { METHOD_FLAGS, methodsWithFlag, QUANTIZE_METHOD_IDS, QUANTIZE_METHODS, type QuantizeMethodId } from '../../preload/methods.ts';
import { Recipe, type RecipeInput } from '../../preload/recipe.ts';
import { issuePath } from '../api/issues.ts';
import { checkOutputDir } from '../engine/rewrite/output-folder.ts';
import { UsageError, type OptionValues } from './args.ts';
import { outputFromFlags } from './output-flags.ts';
import { outputFolder, outputModel } from './comparison.ts';
import { runAndReport } from './experiment.ts';
import type { Output } from './output.ts';
import { checkRecipeFiles } from './recipe-file.ts';
import { recoveryFromFlags, recoveryJson } from './recover.ts';

/** Which option sets each recipe field, for messages about flag values. */
const FLAG_FOR_FIELD: Record<string, string> = {
  'steps[0].method': '--method',
  'steps[0].bits': '--bits',
  'steps[0].blockSize': '--block-size',
  'steps[0].accuracyLevel': '--accuracy-level',
  'steps[0].format': '--format',
  'steps[0].keep': '--keep',
  'steps[0].overrides': '--8bit',
  'steps[0].calibration.text': '--calib-text',
  'steps[0].calibration.samples': '--calib-samples',
  'steps[0].calibration.length': '--calib-len',
  'steps[0].calibration.seed': '--seed',
  'steps[0].percdamp': '--percdamp',
  'steps[0].rangeMethod': '--range',
  'steps[0].percentile': '--percentile',
  'steps[0].activationType': '--activation-type',
  'steps[0].exclude': '--exclude',
  'steps[0].freezeRoles': '--freeze-roles',
  'steps[0].text': '--text',
  'steps[0].steps': '--steps',
  'steps[0].batch': '--batch',
  'steps[0].length': '--len',
  'steps[0].lr': '--lr',
  'steps[0].temperature': '--temperature',
  'steps[0].alpha': '--alpha',
  'steps[0].seed': '--seed',
  'evaluation.perplexity.window': '--window',
  'evaluation.perplexity.maxSamples': '--samples',
  'evaluation.speed.threads': '--threads',
  'evaluation.speed.repeats': '--repeats',
  'output.dir': '--out',
  name: '--name',
  'steps[1].data.text': '--recover-text', 'steps[1].schedule.steps': '--recover-steps',
};

/** The methods, as described in preload/methods.ts. */
export const METHODS = QUANTIZE_METHOD_IDS;
export type CliMethod = QuantizeMethodId;

/** Block-wise weight-only methods (bits, block size, overrides), those that calibrate, and the INT8 ones. */
const WEIGHT_ONLY = methodsWithFlag('bits');
const CALIBRATED: readonly CliMethod[] = QUANTIZE_METHODS.filter((d) => d.needs.calibration?.length).map((d) => d.method);
const INT8 = methodsWithFlag('per-channel');
/** The methods that train (KD-QAT): a training text and the tokenizer are required. */
const TRAINED: readonly CliMethod[] = QUANTIZE_METHODS.filter((d) => d.needs.gradients === true).map((d) => d.method);

/** The methods each method-specific flag applies to, from the methods' options (flags not listed apply to every method). */
export const FLAG_METHODS: Readonly<Record<string, readonly CliMethod[]>> = Object.fromEntries(METHOD_FLAGS.map((flag) => [flag, methodsWithFlag(flag)]));

const FORMATS: Partial<Record<CliMethod, readonly string[]>> = {
  rtn: ['matmulnbits', 'qdq'],
  gptq: ['matmulnbits', 'qdq'],
  'int8-dynamic': ['matmulinteger', 'dynamic-quantize-matmul'],
};

/** Every flag given that the method does not use → one UsageError naming them all. */
export function checkFlagsApply(method: CliMethod, o: OptionValues): void {
  const wrong = Object.entries(FLAG_METHODS).filter(([flag, methods]) => o[flag] !== undefined && !methods.includes(method));
  if (wrong.length > 0) {
    const list = wrong.map(([flag, methods]) => `--${flag} (${methods.join(', ')})`).join(', ');
    throw new UsageError(
      `${wrong.length === 1 ? 'This flag does' : 'These flags do'} not apply to --method ${method}: ${list}.`,
      `Remove ${wrong.length === 1 ? 'it' : 'them'}, or choose a method ${wrong.length === 1 ? 'it applies' : 'they apply'} to. See \`whittle quantize --help\`.`,
    );
  }
  for (const [yes, no] of [['per-channel', 'no-per-channel'], ['keep-io-types', 'no-keep-io-types']]) {
    if (o[yes] === true && o[no] === true) throw new UsageError(`--${yes} and --${no} contradict each other; give one.`);
  }
  const formats = FORMATS[method];
  if (o.format !== undefined && formats && !formats.includes(String(o.format))) {
    throw new UsageError(`--format ${String(o.format)} is not a format of --method ${method}; choose ${formats.join(' or ')}.`);
  }
  if (o.percentile !== undefined && o.range !== 'percentile') throw new UsageError('--percentile only applies with --range percentile.');
  if (TRAINED.includes(method)) {
    if (o.bits !== undefined && o.bits !== '4' && o.bits !== '8') throw new UsageError(`--bits ${String(o.bits)}: KD-QAT exports 4 or 8 bits (MatMulNBits); choose --bits 4 or 8.`);
    if (o.text === undefined) {
      throw new UsageError(`--method ${method} trains the model on a text: give --text FILE (a UTF-8 text, paragraphs separated by blank lines).`, 'Prefer a text that does not overlap the evaluation text (--eval-text), so the comparison stays fair.');
    }
    if (o.steps === undefined) throw new UsageError(`--method ${method} needs the length of its training: give --steps N (optimizer steps).`);
  }
  if (CALIBRATED.includes(method) && o['calib-text'] === undefined) {
    throw new UsageError(
      `--method ${method} calibrates on real text: give --calib-text FILE (a UTF-8 text of the kind the model will see).`,
      'Prefer a text that does not overlap the evaluation text (--eval-text), so the comparison stays fair.',
    );
  }
}

function regexList(o: OptionValues, flag: string): string[] {
  const list = (o[flag] as string[] | undefined) ?? [];
  for (const pattern of list) {
    try { new RegExp(pattern); } catch (e) { throw new UsageError(`--${flag} "${pattern}" is not a valid regular expression: ${(e as Error).message}.`); }
  }
  return list;
}

function decimal(o: OptionValues, flag: string): number {
  const raw = String(o[flag]).trim();
  const n = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isFinite(n)) throw new UsageError(`--${flag} needs a number, got "${raw}".`);
  return n;
}

/** The tokenizer: --tokenizer, else tokenizer.json beside the model when there is one. */
function tokenizerFor(model: string, o: OptionValues): string | null {
  if (o.tokenizer !== undefined) return path.resolve(String(o.tokenizer));
  const beside = path.join(path.dirname(model), 'tokenizer.json');
  return existsSync(beside) ? beside : null;
}

/** The quantize step the method flags describe (values checked by the recipe schema afterwards). */
function stepFromFlags(method: CliMethod, o: OptionValues, keep: string[]): Record<string, unknown> {
  const step: Record<string, unknown> = { type: 'quantize', method };
  if (keep.length) step.keep = keep;
  if (CALIBRATED.includes(method)) {
    const calibration: Record<string, unknown> = { text: path.resolve(String(o['calib-text'])) };
    if (o['calib-samples'] !== undefined) calibration.samples = o['calib-samples'];
    if (o['calib-len'] !== undefined) calibration.length = o['calib-len'];
    if (o.seed !== undefined) calibration.seed = o.seed;
    step.calibration = calibration;
  }
  if (WEIGHT_ONLY.includes(method)) {
    if (o.bits !== undefined) step.bits = Number(o.bits);
    if (o['block-size'] !== undefined) step.blockSize = o['block-size'];
    if (o.symmetric === true) step.symmetric = true;
    if (o['accuracy-level'] !== undefined) step.accuracyLevel = o['accuracy-level'];
    if (o.format !== undefined) step.format = o.format;
    const eight = regexList(o, '8bit');
    if (eight.length) step.overrides = eight.map((pattern) => ({ pattern, bits: 8 }));
  }
  if (method === 'gptq') {
    if (o['act-order'] === true) step.actOrder = true;
    if (o['one-pass'] === true) step.sequential = false;
    if (o.percdamp !== undefined) step.percdamp = decimal(o, 'percdamp');
  }
  if (method === 'fp16') {
    if (o['keep-io-types'] === true) step.keepIoTypes = true;
    if (o['no-keep-io-types'] === true) step.keepIoTypes = false;
  }
  if (INT8.includes(method)) {
    if (o['per-channel'] === true) step.perChannel = true;
    if (o['no-per-channel'] === true) step.perChannel = false;
  }
  if (method === 'int8-dynamic' && o.format !== undefined) step.format = o.format;
  if (TRAINED.includes(method)) {
    step.text = path.resolve(String(o.text));
    step.steps = o.steps;
    if (o['freeze-roles'] !== undefined) step.freezeRoles = String(o['freeze-roles']).split(',').map((r) => r.trim()).filter((r) => r.length > 0);
    if (o.batch !== undefined) step.batch = o.batch;
    if (o.len !== undefined) step.length = o.len;
    for (const flag of ['lr', 'temperature', 'alpha'] as const) if (o[flag] !== undefined) step[flag] = decimal(o, flag);
    if (o.seed !== undefined) step.seed = o.seed;
  }
  if (method === 'int8-static') {
    if (o.range !== undefined) step.rangeMethod = o.range;
    if (o.percentile !== undefined) step.percentile = decimal(o, 'percentile');
    if (o['activation-type'] !== undefined) step.activationType = o['activation-type'];
    const exclude = regexList(o, 'exclude');
    if (exclude.length) step.exclude = exclude;
  }
  return step;
}

/** The recipe the command line describes (paths made absolute). */
export function quantizeRecipe(modelArg: string, o: OptionValues): RecipeInput {
  const model = path.resolve(modelArg);
  const method = (o.method ?? 'rtn') as CliMethod;
  checkFlagsApply(method, o);
  const evalText = o['eval-text'] === undefined ? null : path.resolve(String(o['eval-text']));
  for (const flag of ['window', 'samples']) {
    if (o[flag] !== undefined && !evalText) throw new UsageError(`--${flag} only applies with --eval-text FILE (the text original and result are compared on).`);
  }
  if (o.threads !== undefined && o.speed !== true) throw new UsageError('--threads only applies with --speed.');
  if (o.repeats !== undefined && o.speed !== true) throw new UsageError('--repeats only applies with --speed.');
  const keep = regexList(o, 'keep');
  const tokenizer = tokenizerFor(model, o);
  if (evalText && !tokenizer) {
    throw new UsageError(`--eval-text needs the model's tokenizer: there is no tokenizer.json beside ${path.basename(model)}.`, 'Give it with --tokenizer FILE.');
  }
  if (TRAINED.includes(method) && !tokenizer) {
    throw new UsageError(`--method ${method} trains on text, which needs the model's tokenizer: there is no tokenizer.json beside ${path.basename(model)}.`, 'Give it with --tokenizer FILE.');
  }
  if (CALIBRATED.includes(method) && !tokenizer) {
    throw new UsageError(`--calib-text needs the model's tokenizer: there is no tokenizer.json beside ${path.basename(model)}.`, 'Give it with --tokenizer FILE.');
  }

  const step = stepFromFlags(method, o, keep);
  const evaluation: Record<string, unknown> = { footprint: true };
  if (evalText) {
    evaluation.perplexity = { text: evalText, protocol: 'documents', window: o.window ?? 256, maxSamples: o.samples ?? 400 };
  }
  if (o.speed === true) {
    const speed: Record<string, unknown> = {};
    if (o.threads !== undefined) speed.threads = o.threads;
    if (o.repeats !== undefined) speed.repeats = o.repeats;
    evaluation.speed = speed;
  }
  if (o['no-cache'] === true) evaluation.cache = false;

  const recover = recoveryFromFlags(o, tokenizer, model, step as { type: string; method?: string; quantize?: unknown });
  const recipe: Record<string, unknown> = { version: 1, model: { path: model }, steps: recover ? [step, recover] : [step], evaluation };
  if (tokenizer) recipe.tokenizer = { path: tokenizer };
  if (o.name !== undefined) recipe.name = o.name;
  const output = outputFromFlags(o);
  if (output) recipe.output = output;

  const parsed = Recipe.safeParse(recipe);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issuePath(issue.path);
    const flag = FLAG_FOR_FIELD[field] ?? FLAG_FOR_FIELD[field.replace(/\[\d+\]$/, '')] ?? FLAG_FOR_FIELD[field.replace(/\[\d+\](\.pattern)?$/, '')];
    throw new UsageError(flag ? `${flag}: ${issue.message.replace(/^Invalid input: /, '')}` : `${field}: ${issue.message}`);
  }
  return recipe as RecipeInput;
}

/** The calibration text of a recipe's steps that is also its evaluation text, if any. */
export function sharedCalibrationText(recipe: Recipe): string | null {
  const evalText = recipe.evaluation.perplexity?.text;
  if (!evalText) return null;
  for (const s of recipe.steps) {
    const calibration = 'calibration' in s ? s.calibration : undefined;
    if (calibration && path.resolve(calibration.text) === path.resolve(evalText)) return evalText;
  }
  return null;
}

export async function runQuantize(modelArg: string, o: OptionValues, out: Output, home: string | undefined): Promise<number> {
  const recipe = quantizeRecipe(modelArg, o);
  const parsed = Recipe.parse(recipe);
  checkRecipeFiles(parsed);
  const shared = sharedCalibrationText(parsed);
  if (shared) out.warn(`calibration and evaluation use the same text (${path.basename(shared)}): the result is measured on text it was tuned on, so the comparison flatters it.`);
  if (parsed.output?.dir) {
    if (existsSync(parsed.output.dir) && !statSync(parsed.output.dir).isDirectory()) {
      throw new UsageError(`--out ${parsed.output.dir} is a file; give a folder.`);
    }
    await checkOutputDir(parsed.output.dir);
  }
  return runAndReport(recipe, undefined, out, home, (outcome, base) => {
    const values = base.values as Record<string, Record<string, number>>;
    const folder = outputFolder(outcome.experiment);
    return {
      ...base,
      outputDir: folder,
      outputModel: outputModel(outcome.experiment),
      original: values.original ?? {},
      result: values.result ?? {},
      recovery: recoveryJson(outcome.experiment.details),
    };
  });
}
