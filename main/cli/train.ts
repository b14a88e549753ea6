/**
 * `whittle train <model> --text FILE [--steps N | --epochs E] [--batch B] [--len L] [--lr X] …`: builds a
 * recipe of one train step (and, with --eval-text, the held-out loss during training and a comparison of
 * the original with the result after it), runs it through the job system like `whittle run`, and prints
 * the two models side by side with the loss before and after.
 *
 * `whittle train --resume ID` continues an interrupted or cancelled training experiment: its recipe as it
 * was, from the newest checkpoint in the folder the experiment recorded (preload/resume.ts).
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { TRAIN } from '../../preload/methods.ts';
import { Recipe, type RecipeInput } from '../../preload/recipe.ts';
import { planResume } from '../../preload/resume.ts';
import { issuePath } from '../api/issues.ts';
import { WhittleError } from '../engine/errors.ts';
import { checkOutputDir } from '../engine/rewrite/output-folder.ts';
import { hasCheckpoint } from '../engine/train/checkpoint-home.ts';
import { UsageError, type OptionValues } from './args.ts';
import { outputFromFlags } from './output-flags.ts';
import { outputFolder, outputModel } from './comparison.ts';
import { runAndReport } from './experiment.ts';
import type { JobOutcome } from './job-runner.ts';
import type { Output } from './output.ts';
import { checkTrainingLabels, labelsFromFlags } from './labels.ts';
import { checkRecipeFiles } from './recipe-file.ts';
import { openSession } from './session.ts';

/** The recipe field each flag sets, from the step's description (its options name their flags). */
const FLAG_FOR_FIELD: Record<string, string> = {
  ...Object.fromEntries(TRAIN.options.filter((o) => o.flag !== null).map((o) => [`steps[0].${o.field}`, `--${o.flag}`])),
  'steps[0].freeze': '--freeze',
  'evaluation.perplexity.window': '--window', 'evaluation.perplexity.maxSamples': '--samples', 'output.dir': '--out', name: '--name',
};

/** Flags that set up a new run; with --resume the experiment's recipe says all of that. */
const RUN_FLAGS = [
  'text', 'labels', 'text-column', 'label-column', 'held-out', 'teacher', 'temperature', 'alpha', 'tokenizer', 'steps', 'epochs', 'batch', 'len', 'accumulate', 'lr', 'warmup', 'weight-decay', 'clip-norm', 'freeze', 'keep-sparsity',
  'no-keep-sparsity', 'eval-text', 'eval-every', 'seed', 'checkpoint-every', 'out', 'layout', 'window', 'samples', 'speed', 'threads',
];

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

/** The train step the flags describe (values checked by the recipe schema afterwards). */
function stepFromFlags(o: OptionValues): Record<string, unknown> {
  const labels = labelsFromFlags(o);
  if (o.labels !== undefined && o.text !== undefined) throw new UsageError('--text (next-token fine-tuning of a decoder) and --labels (classification fine-tuning of an encoder) train different things: give one.');
  for (const flag of ['teacher', 'temperature', 'alpha']) {
    if (o[flag] !== undefined && o.labels === undefined) throw new UsageError(`--${flag} distils a classifier: it only applies with --labels FILE.`, 'A decoder is distilled with `whittle distill`.');
  }
  if (o.labels !== undefined) {
    for (const flag of ['eval-text', 'eval-every', 'window', 'samples']) {
      if (o[flag] !== undefined) throw new UsageError(`--${flag} measures text; with --labels the held-out share of the labelled data (--held-out) is scored for accuracy instead.`);
    }
  }
  if (o.text === undefined && o.labels === undefined) throw new UsageError('whittle train needs the training text: give it with --text FILE (or labelled data for an encoder with --labels FILE).', 'Prefer a text that does not overlap the evaluation text (--eval-text).');
  if ((o.steps === undefined) === (o.epochs === undefined)) {
    throw new UsageError(o.steps === undefined ? 'Say how long to train: give --steps N (optimizer steps) or --epochs E (passes over the text).' : '--steps and --epochs both say how long to train: give only one.');
  }
  if (o['keep-sparsity'] === true && o['no-keep-sparsity'] === true) throw new UsageError('--keep-sparsity and --no-keep-sparsity contradict each other: give one.');
  const step: Record<string, unknown> = o.labels !== undefined
    ? { type: 'train', objective: 'classify', labels }
    : { type: 'train', objective: 'lm', text: path.resolve(String(o.text)) };
  if (o.teacher !== undefined) {
    step.teacher = {
      model: path.resolve(String(o.teacher)),
      ...(o.temperature !== undefined ? { temperature: decimal(o, 'temperature') } : {}),
      ...(o.alpha !== undefined ? { alpha: decimal(o, 'alpha') } : {}),
    };
  } else if (o.temperature !== undefined || o.alpha !== undefined) {
    throw new UsageError('--temperature and --alpha set up distillation: give the teacher with --teacher MODEL.');
  }
  if (o.steps !== undefined) step.steps = o.steps;
  if (o.epochs !== undefined) step.epochs = decimal(o, 'epochs');
  if (o.batch !== undefined) step.batch = o.batch;
  if (o.len !== undefined) step.length = o.len;
  if (o.accumulate !== undefined) step.accumulate = o.accumulate;
  if (o.lr !== undefined) {
    const lr = decimal(o, 'lr');
    if (!(lr > 0)) throw new UsageError(`--lr must be above 0, got ${String(o.lr)}.`, 'Typical fine-tuning rates are 1e-5 to 1e-3 (default 3e-4).');
    step.lr = lr;
  }
  if (o.warmup !== undefined) step.warmup = o.warmup;
  if (o['weight-decay'] !== undefined) step.weightDecay = decimal(o, 'weight-decay');
  if (o['clip-norm'] !== undefined) step.clipNorm = decimal(o, 'clip-norm');
  const freeze = (o.freeze as string[] | undefined) ?? [];
  if (freeze.length) step.freeze = freeze;
  if (o['no-keep-sparsity'] === true) step.keepSparsity = false;
  if (o['eval-text'] !== undefined) step.evalText = path.resolve(String(o['eval-text']));
  if (o['eval-every'] !== undefined) {
    if (o['eval-text'] === undefined) throw new UsageError('--eval-every only applies with --eval-text FILE (the held-out text).');
    step.evalEvery = o['eval-every'];
  }
  if (o.seed !== undefined) step.seed = o.seed;
  if (o['checkpoint-every'] !== undefined) step.checkpointEvery = o['checkpoint-every'];
  return step;
}

/** The recipe the command line describes (paths made absolute). */
export function trainRecipe(modelArg: string, o: OptionValues): RecipeInput {
  const model = path.resolve(modelArg);
  const step = stepFromFlags(o);
  const evalText = o['eval-text'] === undefined ? null : path.resolve(String(o['eval-text']));
  for (const flag of ['window', 'samples']) {
    if (o[flag] !== undefined && !evalText) throw new UsageError(`--${flag} only applies with --eval-text FILE (the text original and result are compared on).`);
  }
  if (o.threads !== undefined && o.speed !== true) throw new UsageError('--threads only applies with --speed.');
  const tokenizer = tokenizerFor(model, o);
  if (!tokenizer) throw new UsageError(`Training reads text, which needs the model's tokenizer: there is no tokenizer.json beside ${path.basename(model)}.`, 'Give it with --tokenizer FILE.');
  const evaluation: Record<string, unknown> = { footprint: true };
  if (evalText) evaluation.perplexity = { text: evalText, protocol: 'documents', window: o.window ?? 256, maxSamples: o.samples ?? 400 };
  // Classification: original and result scored on the held-out share the training leaves out.
  const labels = step.labels as { file: string; textColumn?: string; labelColumn?: string; heldOut?: number; seed?: number } | undefined;
  if (labels) evaluation.accuracy = { ...labels, ...(o.len !== undefined ? { maxLength: o.len } : {}) };
  if (o.speed === true) evaluation.speed = o.threads !== undefined ? { threads: o.threads } : {};
  const recipe: Record<string, unknown> = { version: 1, model: { path: model }, tokenizer: { path: tokenizer }, steps: [step], evaluation };
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

/** The recipe that continues experiment `id`, checked before anything starts. */
export async function resumeRecipe(id: number, out: Output, home: string | undefined): Promise<Record<string, unknown>> {
  const session = await openSession({ home, transport: 'memory', needsEngine: false, out });
  try {
    const experiment = await session.call('history.get', { id });
    const plan = planResume(experiment);
    if (!plan.ok) throw new WhittleError('INVALID_INPUT', plan.reason, { experimentId: id });
    for (const dir of plan.checkpoints) {
      if (!(await hasCheckpoint(dir))) {
        throw new WhittleError('INVALID_INPUT', `Experiment ${id} left no checkpoint in ${dir} (it stopped before its first one, or the folder was removed). Start the training again.`, { experimentId: id, dir });
      }
    }
    return plan.recipe;
  } finally {
    await session.close();
  }
}

/** What `--json` adds: the output, and the training's loss before and after and where it continued from. */
function trainJson(outcome: JobOutcome, base: Record<string, unknown>): Record<string, unknown> {
  const values = base.values as Record<string, Record<string, number>>;
  const steps = Array.isArray(outcome.experiment.details.steps) ? outcome.experiment.details.steps as Record<string, unknown>[] : [];
  const train = steps.find((s) => s.type === TRAIN.type);
  return {
    ...base,
    outputDir: outputFolder(outcome.experiment),
    outputModel: outputModel(outcome.experiment),
    original: values.original ?? {},
    result: values.result ?? {},
    training: train ? {
      steps: train.steps, tokens: train.tokens, firstLoss: train.firstLoss, finalLoss: train.finalLoss,
      evalLossBefore: train.evalLossBefore ?? null, evalLossAfter: train.evalLossAfter ?? null, tokensPerSecond: train.tokensPerSecond,
      resumedFromStep: train.resumedFromStep ?? null, curvePoints: Array.isArray(train.curve) ? train.curve.length : 0,
      ...(train.objective === 'classify' ? { objective: 'classify', classes: train.classes, trainAccuracy: train.trainAccuracy, heldOutAccuracy: train.heldOutAccuracy ?? null } : {}),
    } : null,
  };
}

export async function runTrain(positionals: string[], o: OptionValues, out: Output, home: string | undefined): Promise<number> {
  if (o.resume !== undefined) {
    const mixed = [...(positionals.length ? ['<model>'] : []), ...RUN_FLAGS.filter((f) => o[f] !== undefined).map((f) => `--${f}`)];
    if (mixed.length) throw new UsageError(`--resume continues the experiment's own recipe; it cannot be combined with ${mixed.join(', ')}.`);
    const recipe = await resumeRecipe(Number(o.resume), out, home);
    checkRecipeFiles(Recipe.parse(recipe));
    return runAndReport(recipe, o.name as string | undefined, out, home, trainJson);
  }
  if (positionals.length === 0) {
    throw new UsageError('whittle train needs <model> (an .onnx file), or --resume ID to continue an experiment.', 'Usage: whittle train <model> --text FILE (--steps N | --epochs E) [options]');
  }
  const recipe = trainRecipe(positionals[0], o);
  const parsed = Recipe.parse(recipe);
  checkRecipeFiles(parsed);
  const step = parsed.steps[0];
  if (step.type === 'train' && step.labels) await checkTrainingLabels(parsed.model.path, step.labels);
  if (parsed.output?.dir) {
    if (existsSync(parsed.output.dir) && !statSync(parsed.output.dir).isDirectory()) throw new UsageError(`--out ${parsed.output.dir} is a file; give a folder.`);
    await checkOutputDir(parsed.output.dir);
  }
  return runAndReport(recipe, undefined, out, home, trainJson);
}
