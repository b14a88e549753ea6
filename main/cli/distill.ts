/**
 * `whittle distill --teacher M (--student-blocks 0,2,4 | --student M2) --text F [--tokenizer T] …`: builds a
 * recipe whose model is the teacher and whose one step distils the student from it (with --eval-text,
 * the held-out loss and agreement during training, and the teacher compared with the student after it),
 * checks the student and the texts before any work, runs it through the job system like `whittle run`,
 * and prints teacher and student side by side.
 *
 * Bad input is refused before the job starts: student blocks outside the teacher's, a student with another
 * vocabulary, a teacher whose blocks cannot be mapped. An evaluation text inside the training text is
 * allowed but warned about here and listed with the result.
 *
 * `whittle distill --resume ID` continues an interrupted or cancelled distillation from its checkpoints.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { DISTILL } from '../../preload/methods.ts';
import { Recipe, type DistillStep, type RecipeInput } from '../../preload/recipe.ts';
import { issuePath } from '../api/issues.ts';
import { preflightDistill, studentOf, teacherOf, type DistillPreflight } from '../engine/distill/preflight.ts';
import { checkOutputDir } from '../engine/rewrite/output-folder.ts';
import { UsageError, type OptionValues } from './args.ts';
import { outputFromFlags } from './output-flags.ts';
import { outputFolder, outputModel } from './comparison.ts';
import { runAndReport } from './experiment.ts';
import type { JobOutcome } from './job-runner.ts';
import type { Output } from './output.ts';
import { checkRecipeFiles } from './recipe-file.ts';
import { resumeRecipe } from './train.ts';

/** The recipe field each flag sets, from the step's description (its options name their flags). */
const FLAG_FOR_FIELD: Record<string, string> = {
  ...Object.fromEntries(DISTILL.options.filter((o) => o.flag !== null).map((o) => [`steps[0].${o.field}`, `--${o.flag}`])),
  'steps[0].student': '--student-blocks', 'steps[0].teacherSignal.k': '--topk-cache', 'steps[0].lora.rank': '--lora-rank', 'steps[0].lora.dropout': '--lora-dropout',
  'evaluation.perplexity.window': '--window', 'evaluation.perplexity.maxSamples': '--samples', 'output.dir': '--out', name: '--name', 'model.path': '--teacher',
};

/** Flags that set up a new run; with --resume the experiment's recipe says all of that. */
const RUN_FLAGS: readonly string[] = [
  'teacher', 'student', 'student-blocks', 'text', 'tokenizer', 'temperature', 'alpha', 'reverse-kl', 'hidden-loss', 'topk-cache', 'lora-rank', 'lora-dropout',
  'steps', 'epochs', 'batch', 'len', 'accumulate', 'lr', 'warmup', 'weight-decay', 'clip-norm', 'eval-text', 'eval-every', 'seed', 'checkpoint-every',
  'out', 'layout', 'window', 'samples', 'speed', 'threads',
];

function decimal(o: OptionValues, flag: string): number {
  const raw = String(o[flag]).trim();
  const n = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isFinite(n)) throw new UsageError(`--${flag} needs a number, got "${raw}".`);
  return n;
}

/** '0, 2,4' → [0, 2, 4] (whole numbers, each once, in increasing order; the teacher's count is checked before work). */
export function parseStudentBlocks(text: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  const bad = parts.filter((p) => !/^\d+$/.test(p));
  if (parts.length === 0 || bad.length) {
    throw new UsageError(`--student-blocks needs block numbers separated by commas, e.g. 0,2,4; ${bad.map((p) => `"${p}"`).join(', ') || 'nothing'} is not a block number.`);
  }
  const blocks = parts.map(Number);
  const seen = new Set<number>();
  const dup = blocks.filter((b) => (seen.has(b) ? true : (seen.add(b), false)));
  if (dup.length) throw new UsageError(`--student-blocks lists block ${[...new Set(dup)].join(', ')} more than once; name each block to keep once.`);
  return blocks.sort((a, b) => a - b);
}

/** The distill step the flags describe (values checked by the recipe schema afterwards). */
function stepFromFlags(o: OptionValues): Record<string, unknown> {
  if ((o['student-blocks'] === undefined) === (o.student === undefined)) {
    throw new UsageError(o.student === undefined ? "Say what the student is: --student-blocks 0,2,4 (some of the teacher's blocks) or --student FILE (a model you bring)." : '--student and --student-blocks both name the student: give only one.');
  }
  if (o.text === undefined) throw new UsageError('whittle distill needs the training text: give it with --text FILE.', 'Use a text that does not overlap the evaluation text (--eval-text).');
  if ((o.steps === undefined) === (o.epochs === undefined)) {
    throw new UsageError(o.steps === undefined ? 'Say how long to train: give --steps N (optimizer steps) or --epochs E (passes over the text).' : '--steps and --epochs both say how long to train: give only one.');
  }
  const student = o.student !== undefined ? { model: path.resolve(String(o.student)) } : { blocks: parseStudentBlocks(String(o['student-blocks'])) };
  const data: Record<string, unknown> = { text: path.resolve(String(o.text)) };
  if (o['eval-text'] !== undefined) data.evalText = path.resolve(String(o['eval-text']));
  if (o.batch !== undefined) data.batch = o.batch;
  if (o.len !== undefined) data.length = o.len;
  const loss: Record<string, unknown> = {};
  if (o.temperature !== undefined) loss.temperature = decimal(o, 'temperature');
  if (o.alpha !== undefined) loss.alpha = decimal(o, 'alpha');
  if (o['reverse-kl'] === true) loss.reverse = true;
  if (o['hidden-loss'] !== undefined) loss.hidden = decimal(o, 'hidden-loss');
  const schedule: Record<string, unknown> = {};
  if (o.steps !== undefined) schedule.steps = o.steps;
  if (o.epochs !== undefined) schedule.epochs = decimal(o, 'epochs');
  if (o.accumulate !== undefined) schedule.accumulate = o.accumulate;
  if (o.lr !== undefined) {
    const lr = decimal(o, 'lr');
    if (!(lr > 0)) throw new UsageError(`--lr must be above 0, got ${String(o.lr)}.`, 'Typical distillation rates are 1e-4 to 1e-3 (default 3e-4).');
    schedule.lr = lr;
  }
  if (o.warmup !== undefined) schedule.warmup = o.warmup;
  if (o['weight-decay'] !== undefined) schedule.weightDecay = decimal(o, 'weight-decay');
  if (o['clip-norm'] !== undefined) schedule.clipNorm = decimal(o, 'clip-norm');
  if (o['eval-every'] !== undefined) {
    if (o['eval-text'] === undefined) throw new UsageError('--eval-every only applies with --eval-text FILE (the held-out text).');
    schedule.evalEvery = o['eval-every'];
  }
  if (o.seed !== undefined) schedule.seed = o.seed;
  if (o['checkpoint-every'] !== undefined) schedule.checkpointEvery = o['checkpoint-every'];
  const step: Record<string, unknown> = { type: 'distill', student, data, loss, schedule };
  if (o['topk-cache'] !== undefined) step.teacherSignal = { kind: 'topk', k: o['topk-cache'] };
  if (o['lora-dropout'] !== undefined) {
    if (o['lora-rank'] === undefined) throw new UsageError('--lora-dropout only applies with --lora-rank R (the adapters it drops out on).');
    const p = decimal(o, 'lora-dropout');
    if (!(p >= 0 && p < 1)) throw new UsageError(`--lora-dropout is a probability from 0 up to but not including 1, got ${String(o['lora-dropout'])}.`, 'Common values are 0.05 to 0.1.');
  }
  if (o['lora-rank'] !== undefined) step.lora = { rank: o['lora-rank'], ...(o['lora-dropout'] !== undefined ? { dropout: decimal(o, 'lora-dropout') } : {}) };
  return step;
}

/** The teacher and its tokenizer (tokenizer.json beside it unless given). */
function teacherAndTokenizer(teacherArg: string, o: OptionValues): { teacher: string; tokenizer: string } {
  const teacher = path.resolve(teacherArg);
  if (o.tokenizer !== undefined) return { teacher, tokenizer: path.resolve(String(o.tokenizer)) };
  const beside = path.join(path.dirname(teacher), 'tokenizer.json');
  if (!existsSync(beside)) throw new UsageError(`Distillation reads text, which needs the teacher's tokenizer: there is no tokenizer.json beside ${path.basename(teacher)}.`, 'Give it with --tokenizer FILE.');
  return { teacher, tokenizer: beside };
}

/** The recipe the command line describes (paths made absolute): the teacher is the recipe's model. */
export function distillRecipe(o: OptionValues): RecipeInput {
  if (o.teacher === undefined) throw new UsageError('whittle distill needs the teacher: give it with --teacher FILE (an .onnx model).', 'Usage: whittle distill --teacher M (--student-blocks 0,2,4 | --student M2) --text F (--steps N | --epochs E) [options]');
  const step = stepFromFlags(o);
  const { teacher, tokenizer } = teacherAndTokenizer(String(o.teacher), o);
  const evalText = o['eval-text'] === undefined ? null : path.resolve(String(o['eval-text']));
  for (const flag of ['window', 'samples']) {
    if (o[flag] !== undefined && !evalText) throw new UsageError(`--${flag} only applies with --eval-text FILE (the text teacher and student are compared on).`);
  }
  if (o.threads !== undefined && o.speed !== true) throw new UsageError('--threads only applies with --speed.');
  const evaluation: Record<string, unknown> = { footprint: true };
  if (evalText) evaluation.perplexity = { text: evalText, protocol: 'documents', window: o.window ?? 256, maxSamples: o.samples ?? 400 };
  if (o.speed === true) evaluation.speed = o.threads !== undefined ? { threads: o.threads } : {};
  const recipe: Record<string, unknown> = { version: 1, model: { path: teacher }, tokenizer: { path: tokenizer }, steps: [step], evaluation };
  if (o.name !== undefined) recipe.name = o.name;
  const output = outputFromFlags(o);
  if (output) recipe.output = output;
  const parsed = Recipe.safeParse(recipe);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issuePath(issue.path);
    const flag = FLAG_FOR_FIELD[field] ?? FLAG_FOR_FIELD[field.replace(/(\[\d+\]|\.\d+)$/, '')];
    throw new UsageError(flag ? `${flag}: ${issue.message.replace(/^Invalid input: /, '')}` : `${field}: ${issue.message}`);
  }
  return recipe as RecipeInput;
}

/**
 * The checks of a distillation recipe before any work: the student against the teacher (its blocks, its
 * vocabulary) and the overlap of the training text with the held-out and comparison texts (warnings).
 */
export async function checkDistillRecipe(recipe: Recipe): Promise<DistillPreflight[]> {
  const out: DistillPreflight[] = [];
  recipe.steps.forEach((s, i) => {
    if (s.type === 'distill' && 'from' in s.student && i === 0) {
      throw new UsageError("A student { from: 'input' } is the model a step receives: put the distill step after a prune or quantize step, or name the student.");
    }
  });
  for (const s of recipe.steps) {
    if (s.type !== 'distill' || 'from' in s.student) continue;
    const step: DistillStep = s;
    out.push(await preflightDistill({
      teacher: teacherOf(step, recipe), student: studentOf(step, recipe.model.path), tokenizer: recipe.tokenizer?.path,
      text: step.data.text, evalTexts: [step.data.evalText, recipe.evaluation.perplexity?.text],
    }));
  }
  return out;
}

/** What `--json` adds: the output, the teacher and the student, the losses, the agreement and the warnings. */
function distillJson(outcome: JobOutcome, base: Record<string, unknown>): Record<string, unknown> {
  const values = base.values as Record<string, Record<string, number>>;
  const steps = Array.isArray(outcome.experiment.details.steps) ? outcome.experiment.details.steps as Record<string, unknown>[] : [];
  const d = steps.find((s) => s.type === DISTILL.type);
  return {
    ...base,
    outputDir: outputFolder(outcome.experiment),
    outputModel: outputModel(outcome.experiment),
    teacher: values.original ?? {},
    student: values.result ?? {},
    distillation: d ? {
      teacher: d.teacher, student: d.student, loss: d.loss, signal: d.signal,
      steps: d.steps, tokens: d.tokens, firstLoss: d.firstLoss, finalLoss: d.finalLoss,
      evalLossBefore: d.evalLossBefore ?? null, evalLossAfter: d.evalLossAfter ?? null,
      agreementBefore: d.agreementBefore ?? null, agreementAfter: d.agreementAfter ?? null,
      tokensPerSecond: d.tokensPerSecond, resumedFromStep: d.resumedFromStep ?? null, curvePoints: Array.isArray(d.curve) ? d.curve.length : 0,
    } : null,
    warnings: d && Array.isArray(d.warnings) ? d.warnings : [],
  };
}

export async function runDistill(positionals: string[], o: OptionValues, out: Output, home: string | undefined): Promise<number> {
  if (positionals.length) throw new UsageError(`whittle distill takes no positional arguments (got ${positionals.join(' ')}): give the teacher with --teacher FILE.`);
  if (o.resume !== undefined) {
    const mixed = RUN_FLAGS.filter((f) => o[f] !== undefined).map((f) => `--${f}`);
    if (mixed.length) throw new UsageError(`--resume continues the experiment's own recipe; it cannot be combined with ${mixed.join(', ')}.`);
    const recipe = await resumeRecipe(Number(o.resume), out, home);
    checkRecipeFiles(Recipe.parse(recipe));
    return runAndReport(recipe, o.name as string | undefined, out, home, distillJson);
  }
  const recipe = distillRecipe(o);
  const parsed = Recipe.parse(recipe);
  checkRecipeFiles(parsed);
  if (parsed.output?.dir) {
    if (existsSync(parsed.output.dir) && !statSync(parsed.output.dir).isDirectory()) throw new UsageError(`--out ${parsed.output.dir} is a file; give a folder.`);
    await checkOutputDir(parsed.output.dir);
  }
  const [pre] = await checkDistillRecipe(parsed);
  if (pre?.size) out.info(`student: blocks ${pre.size.blocks.join(', ')}, ${pre.size.params} parameters (teacher ${pre.size.teacherParams}), about ${pre.size.bytes} bytes`);
  for (const w of pre?.warnings ?? []) out.warn(`WARNING: ${w}`);
  return runAndReport(recipe, undefined, out, home, distillJson);
}
