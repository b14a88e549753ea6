/**
 * `whittle prune <model> --method magnitude|wanda|sparsegpt --sparsity 0.5 [--pattern 2:4] …` and
 * `whittle prune <model> --structured heads|neurons|layers (--ratio R | --count N) …`: builds a recipe
 * of one prune step (and an evaluation of the original beside the result with --eval-text), runs it
 * through the job system like `whittle run`, and prints the two models side by side.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
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

const FLAG_FOR_FIELD: Record<string, string> = {
  'steps[0].method': '--method', 'steps[0].sparsity': '--sparsity', 'steps[0].pattern': '--pattern', 'steps[0].scope': '--scope',
  'steps[0].allocation': '--allocation', 'steps[0].keep': '--keep', 'steps[0].quantize.bits': '--quantize-bits', 'steps[0].quantize.blockSize': '--block-size',
  'steps[0].calibration': '--calib-text', 'steps[0].calibration.text': '--calib-text', 'steps[0].calibration.samples': '--calib-samples',
  'steps[0].calibration.length': '--calib-len', 'steps[0].calibration.seed': '--seed', 'steps[0].percdamp': '--percdamp',
  'steps[0].target': '--structured', 'steps[0].ratio': '--ratio', 'steps[0].count': '--count', 'steps[0].importance': '--importance', 'steps[0].taylorAggregate': '--taylor-aggregate',
  'evaluation.perplexity.window': '--window', 'evaluation.perplexity.maxSamples': '--samples', 'output.dir': '--out', name: '--name',
  'steps[1].data.text': '--recover-text', 'steps[1].schedule.steps': '--recover-steps',
};

/** Flags of the unstructured methods only, and of structured pruning only. */
const UNSTRUCTURED_FLAGS = ['method', 'sparsity', 'pattern', 'scope', 'allocation', 'quantize-bits', 'block-size', 'one-pass', 'percdamp'];
const STRUCTURED_FLAGS = ['ratio', 'count', 'importance', 'taylor-aggregate'];

function decimal(o: OptionValues, flag: string): number {
  const raw = String(o[flag]).trim();
  const n = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isFinite(n)) throw new UsageError(`--${flag} needs a number, got "${raw}".`);
  return n;
}

function tokenizerFor(model: string, o: OptionValues): string | null {
  if (o.tokenizer !== undefined) return path.resolve(String(o.tokenizer));
  const beside = path.join(path.dirname(model), 'tokenizer.json');
  return existsSync(beside) ? beside : null;
}

function calibrationOf(o: OptionValues): Record<string, unknown> | undefined {
  if (o['calib-text'] === undefined) return undefined;
  const c: Record<string, unknown> = { text: path.resolve(String(o['calib-text'])) };
  if (o['calib-samples'] !== undefined) c.samples = o['calib-samples'];
  if (o['calib-len'] !== undefined) c.length = o['calib-len'];
  if (o.seed !== undefined) c.seed = o.seed;
  return c;
}

function keepList(o: OptionValues): string[] {
  const list = (o.keep as string[] | undefined) ?? [];
  for (const p of list) {
    try { new RegExp(p); } catch (e) { throw new UsageError(`--keep "${p}" is not a valid regular expression: ${(e as Error).message}.`); }
  }
  return list;
}

/** The prune step the flags describe (values checked by the recipe schema afterwards). */
function stepFromFlags(o: OptionValues): Record<string, unknown> {
  const calibration = calibrationOf(o);
  const keep = keepList(o);
  if (o.structured !== undefined) {
    const wrong = UNSTRUCTURED_FLAGS.filter((f) => o[f] !== undefined);
    if (wrong.length) throw new UsageError(`${wrong.map((f) => `--${f}`).join(', ')} ${wrong.length === 1 ? 'does' : 'do'} not apply to --structured.`);
    if ((o.ratio === undefined) === (o.count === undefined)) throw new UsageError('--structured needs exactly one of --ratio R (a fraction) or --count N.');
    const step: Record<string, unknown> = { type: 'prune', method: 'structured', target: o.structured };
    if (o.ratio !== undefined) step.ratio = decimal(o, 'ratio');
    if (o.count !== undefined) step.count = o.count;
    if (o.importance !== undefined) step.importance = o.importance;
    if (o['taylor-aggregate'] !== undefined) step.taylorAggregate = o['taylor-aggregate'];
    if (calibration) step.calibration = calibration;
    if (keep.length) step.keep = keep;
    return step;
  }
  const wrong = STRUCTURED_FLAGS.filter((f) => o[f] !== undefined);
  if (wrong.length) throw new UsageError(`${wrong.map((f) => `--${f}`).join(', ')} only ${wrong.length === 1 ? 'applies' : 'apply'} with --structured heads|neurons|layers.`);
  const method = String(o.method ?? 'magnitude');
  if ((method === 'wanda' || method === 'sparsegpt') && !calibration) {
    throw new UsageError(`--method ${method} calibrates on real text: give --calib-text FILE.`, 'Prefer a text that does not overlap the evaluation text (--eval-text).');
  }
  if (o.scope !== undefined && method !== 'magnitude') throw new UsageError('--scope only applies to --method magnitude.');
  if (o['one-pass'] === true && method === 'magnitude') throw new UsageError('--one-pass only applies to the calibrated methods (wanda, sparsegpt).');
  if ((o['quantize-bits'] !== undefined || o.percdamp !== undefined) && method !== 'sparsegpt') throw new UsageError('--quantize-bits and --percdamp only apply to --method sparsegpt.');
  if (o['block-size'] !== undefined && o['quantize-bits'] === undefined) throw new UsageError('--block-size only applies with --quantize-bits.');
  const step: Record<string, unknown> = { type: 'prune', method };
  if (o.sparsity !== undefined) step.sparsity = decimal(o, 'sparsity');
  if (o.pattern !== undefined) step.pattern = o.pattern;
  if (o.scope !== undefined) step.scope = o.scope;
  if (o.allocation !== undefined) step.allocation = o.allocation;
  if (calibration) step.calibration = calibration;
  if (o['one-pass'] === true) step.sequential = false;
  if (o.percdamp !== undefined) step.percdamp = decimal(o, 'percdamp');
  if (o['quantize-bits'] !== undefined) {
    step.quantize = { bits: Number(o['quantize-bits']), ...(o['block-size'] !== undefined ? { blockSize: o['block-size'] } : {}) };
  }
  if (keep.length) step.keep = keep;
  return step;
}

/** The recipe the command line describes (paths made absolute). */
export function pruneRecipe(modelArg: string, o: OptionValues): RecipeInput {
  const model = path.resolve(modelArg);
  const step = stepFromFlags(o);
  const evalText = o['eval-text'] === undefined ? null : path.resolve(String(o['eval-text']));
  for (const flag of ['window', 'samples']) {
    if (o[flag] !== undefined && !evalText) throw new UsageError(`--${flag} only applies with --eval-text FILE (the text original and result are compared on).`);
  }
  if (o.threads !== undefined && o.speed !== true) throw new UsageError('--threads only applies with --speed.');
  const tokenizer = tokenizerFor(model, o);
  if ((evalText || step.calibration) && !tokenizer) {
    throw new UsageError(`${evalText ? '--eval-text' : '--calib-text'} needs the model's tokenizer: there is no tokenizer.json beside ${path.basename(model)}.`, 'Give it with --tokenizer FILE.');
  }
  const evaluation: Record<string, unknown> = { footprint: true };
  if (evalText) evaluation.perplexity = { text: evalText, protocol: 'documents', window: o.window ?? 256, maxSamples: o.samples ?? 400 };
  if (o.speed === true) evaluation.speed = o.threads !== undefined ? { threads: o.threads } : {};
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
    const flag = FLAG_FOR_FIELD[field] ?? FLAG_FOR_FIELD[field.replace(/\[\d+\]$/, '')];
    throw new UsageError(flag ? `${flag}: ${issue.message.replace(/^Invalid input: /, '')}` : `${field}: ${issue.message}`);
  }
  return recipe as RecipeInput;
}

export async function runPrune(modelArg: string, o: OptionValues, out: Output, home: string | undefined): Promise<number> {
  const recipe = pruneRecipe(modelArg, o);
  const parsed = Recipe.parse(recipe);
  checkRecipeFiles(parsed);
  if (parsed.output?.dir) {
    if (existsSync(parsed.output.dir) && !statSync(parsed.output.dir).isDirectory()) throw new UsageError(`--out ${parsed.output.dir} is a file; give a folder.`);
    await checkOutputDir(parsed.output.dir);
  }
  return runAndReport(recipe, undefined, out, home, (outcome, base) => {
    const values = base.values as Record<string, Record<string, number>>;
    return {
      ...base,
      outputDir: outputFolder(outcome.experiment),
      outputModel: outputModel(outcome.experiment),
      original: values.original ?? {},
      result: values.result ?? {},
      recovery: recoveryJson(outcome.experiment.details),
    };
  });
}
