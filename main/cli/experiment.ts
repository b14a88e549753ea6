/**
 * `whittle eval` and `whittle run`: build or read a recipe, check it before anything starts, run it
 * through the job system and print the finished experiment.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ExperimentDetail, Metric } from '../../preload/contract.ts';
import type { RecipeInput } from '../../preload/recipe.ts';
import { Recipe } from '../../preload/recipe.ts';
import { issuePath } from '../api/issues.ts';
import { UsageError, type OptionValues } from './args.ts';
import { comparisonText, isComparison } from './comparison.ts';
import { formatDuration, formatMetric, metricLabel, renderTable } from './format.ts';
import { runJob, type JobOutcome } from './job-runner.ts';
import { EXIT_FAILURE, EXIT_OK, exitCodeFor, type Output } from './output.ts';
import { checkAccuracyLabels, labelsFromFlags, promptFromFlags } from './labels.ts';
import { checkRecipeFiles, loadRecipeFile } from './recipe-file.ts';
import { openSession } from './session.ts';

/** Which command-line option sets each recipe field, for messages about flag values. */
const FLAG_FOR_FIELD: Record<string, string> = {
  'evaluation.perplexity.window': '--window',
  'evaluation.perplexity.maxSamples': '--samples',
  'evaluation.perplexity.protocol': '--protocol',
  'evaluation.speed.promptTokens': '--prompt-tokens',
  'evaluation.speed.decodeTokens': '--decode-tokens',
  'evaluation.speed.threads': '--threads',
  'evaluation.speed.repeats': '--repeats',
  'evaluation.accuracy.heldOut': '--held-out',
  'evaluation.accuracy.textColumn': '--text-column',
  'evaluation.accuracy.labelColumn': '--label-column',
  name: '--name',
};

const EVAL_FLAGS = ['tokenizer', 'labels', 'text-column', 'label-column', 'held-out', 'seed', 'template', 'verbalizers', 'length-normalize', 'text', 'protocol', 'window', 'samples', 'speed', 'prompt-tokens', 'decode-tokens', 'threads', 'repeats'];

/** With --no-cache: the recipe as submitted, asking for fresh figures (`evaluation.cache: false`). */
export function applyNoCache<T>(submit: T, o: OptionValues): T {
  if (o['no-cache'] !== true || typeof submit !== 'object' || submit === null) return submit;
  const recipe = submit as Record<string, unknown>;
  const evaluation = typeof recipe.evaluation === 'object' && recipe.evaluation !== null ? recipe.evaluation : {};
  return { ...recipe, evaluation: { ...evaluation, cache: false } } as T;
}

/** The tokenizer for `model`: --tokenizer, else tokenizer.json beside the model when there is one (as quantize does). */
export function evalTokenizerFor(model: string, o: OptionValues): { path: string; given: boolean } | null {
  if (o.tokenizer !== undefined) return { path: path.resolve(String(o.tokenizer)), given: true };
  const beside = path.join(path.dirname(path.resolve(model)), 'tokenizer.json');
  return existsSync(beside) ? { path: beside, given: false } : null;
}

const PERPLEXITY_FLAGS = ['protocol', 'window', 'samples'];

/**
 * The recipe `whittle eval <model> [--text … [--tokenizer …]] [--speed …]` describes (paths made
 * absolute). Perplexity needs --text and a tokenizer (--tokenizer, else tokenizer.json beside the
 * model); without --text only the footprint (and speed, when asked) is measured, and no tokenizer is needed.
 */
export function recipeFromFlags(model: string, o: OptionValues): RecipeInput {
  const tokenizer = evalTokenizerFor(model, o);
  const evaluation: Record<string, unknown> = { footprint: true };
  if (o.text !== undefined) {
    if (!tokenizer) {
      throw new UsageError(`--text needs the model's tokenizer: there is no tokenizer.json beside ${path.basename(model)}.`, 'Give it with --tokenizer FILE.');
    }
    const perplexity: Record<string, unknown> = { text: path.resolve(String(o.text)) };
    if (o.protocol !== undefined) perplexity.protocol = o.protocol;
    if (o.window !== undefined) perplexity.window = o.window;
    if (o.samples !== undefined) perplexity.maxSamples = o.samples;
    evaluation.perplexity = perplexity;
  } else {
    const stray = PERPLEXITY_FLAGS.filter((f) => o[f] !== undefined);
    if (stray.length) throw new UsageError(`${stray.map((f) => `--${f}`).join(', ')} set${stray.length === 1 ? 's' : ''} up perplexity, which needs the text: give it with --text FILE.`);
  }
  const labels = labelsFromFlags(o);
  const prompt = promptFromFlags(o);
  if (o.labels !== undefined) {
    if (!tokenizer) throw new UsageError(`--labels needs the model's tokenizer: there is no tokenizer.json beside ${path.basename(model)}.`, 'Give it with --tokenizer FILE.');
    evaluation.accuracy = { ...labels, ...prompt };
  } else if (o.seed !== undefined) {
    throw new UsageError('--seed draws the held-out examples of --labels FILE: it only applies with --labels.');
  }
  const recipe: Record<string, unknown> = { version: 1, model: { path: path.resolve(model) }, evaluation };
  // A tokenizer found beside the model goes in only when perplexity or accuracy reads it; one given is always checked.
  if (tokenizer && (tokenizer.given || evaluation.perplexity || evaluation.accuracy)) recipe.tokenizer = { path: tokenizer.path };
  if (o.name !== undefined) recipe.name = o.name;
  const wantsSpeed = o.speed === true || o['prompt-tokens'] !== undefined || o['decode-tokens'] !== undefined || o.threads !== undefined || o.repeats !== undefined;
  if (o['no-cache'] === true) (recipe.evaluation as Record<string, unknown>).cache = false;
  if (wantsSpeed) {
    const speed: Record<string, unknown> = {};
    if (o['prompt-tokens'] !== undefined) speed.promptTokens = o['prompt-tokens'];
    if (o['decode-tokens'] !== undefined) speed.decodeTokens = o['decode-tokens'];
    if (o.threads !== undefined) speed.threads = o.threads;
    if (o.repeats !== undefined) speed.repeats = o.repeats;
    (recipe.evaluation as Record<string, unknown>).speed = speed;
  }
  const parsed = Recipe.safeParse(recipe);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issuePath(issue.path);
    const flag = FLAG_FOR_FIELD[field];
    throw new UsageError(flag ? `${flag}: ${issue.message.replace(/^Invalid input: /, '')}` : `${field}: ${issue.message}`);
  }
  return recipe as RecipeInput;
}

// ── output ───────────────────────────────────────────────────────────────────────────────────────────

const SUBJECT_ORDER = ['model', 'original', 'result'];

/** Metric values by subject and name: `{ model: { perplexity: 4.23, … } }`. */
export function metricValues(metrics: readonly Metric[]): Record<string, Record<string, number>> {
  const bySubject: Record<string, Record<string, number>> = {};
  for (const m of metrics) (bySubject[m.subject] ??= {})[m.name] = m.value;
  return bySubject;
}

export function experimentJson(outcome: Pick<JobOutcome, 'jobId' | 'experimentId'>, e: ExperimentDetail): Record<string, unknown> {
  return {
    experimentId: outcome.experimentId,
    jobId: outcome.jobId,
    name: e.name,
    kind: e.kind,
    status: e.status,
    modelPath: e.modelPath,
    durationMs: e.durationMs,
    values: metricValues(e.metrics),
    metrics: e.metrics,
    artefacts: e.artefacts,
    details: e.details,
  };
}

/** One row per metric, one column per subject (the model, or original beside result). */
export function metricsTable(metrics: readonly Metric[]): string {
  const subjects = [...new Set(metrics.map((m) => m.subject))].sort((a, b) => SUBJECT_ORDER.indexOf(a) - SUBJECT_ORDER.indexOf(b));
  const names = [...new Set(metrics.map((m) => m.name))];
  const cell = (name: string, subject: string): string => {
    const m = metrics.find((x) => x.name === name && x.subject === subject);
    return m ? formatMetric(m) : '';
  };
  const header = subjects.length === 1 && subjects[0] === 'model' ? ['metric', 'value'] : ['metric', ...subjects];
  const rows = names.map((n) => [metricLabel(n), ...subjects.map((s) => cell(n, s))]);
  return renderTable([header, ...rows], { header: true, rightAlign: subjects.map((_, i) => i + 1) });
}

export function experimentText(e: ExperimentDetail): string {
  if (isComparison(e.metrics)) return comparisonText(e);
  const took = e.durationMs !== null ? ` in ${formatDuration(e.durationMs / 1000)}` : '';
  const lines = [`Experiment ${e.id} · ${e.name} · ${e.status}${took}`, ''];
  const cached = e.details.cached as { from?: number | null; created?: string } | undefined;
  if (cached) lines.push(`From the evaluation cache: measured ${cached.from ? `by experiment ${cached.from} ` : ''}on ${cached.created ?? 'an earlier run'}, same model and settings.`, '');
  if (e.metrics.length) lines.push(metricsTable(e.metrics));
  for (const a of e.artefacts) lines.push(`${a.kind}: ${a.path}`);
  if (e.artefacts.length) lines.push('');
  lines.push(`See it again with: whittle history show ${e.id}`);
  return `${lines.join('\n')}\n`;
}

// ── commands ─────────────────────────────────────────────────────────────────────────────────────────

/** Runs a recipe as a job and prints the finished experiment (`json` may add to the JSON document). */
export async function runAndReport(
  submit: unknown,
  name: string | undefined,
  out: Output,
  home: string | undefined,
  json: (outcome: JobOutcome, base: Record<string, unknown>) => Record<string, unknown> = (_, base) => base,
): Promise<number> {
  const session = await openSession({ home, transport: 'memory', needsEngine: true, out });
  try {
    const outcome = await runJob(session, out, submit, name);
    const { finished, experiment } = outcome;
    if (finished.status === 'done') {
      out.result(json(outcome, experimentJson(outcome, experiment)), experimentText(experiment));
      return EXIT_OK;
    }
    const error = finished.error ?? experiment.error ?? { code: finished.status === 'cancelled' ? 'CANCELLED' : 'INTERNAL', message: `The job ${finished.status}.` };
    const shape = {
      code: error.code,
      message: finished.status === 'cancelled' ? `Experiment ${outcome.experimentId} was cancelled.` : `Experiment ${outcome.experimentId} failed: ${error.message}`,
      details: { ...error.details, experimentId: outcome.experimentId, jobId: outcome.jobId, status: finished.status },
    };
    out.error(shape);
    // A cancelled job is a failure of the run, whatever code the engine reported.
    return finished.status === 'cancelled' ? EXIT_FAILURE : exitCodeFor(shape);
  } finally {
    await session.close();
  }
}

export async function runEval(positionals: string[], o: OptionValues, out: Output, home: string | undefined): Promise<number> {
  if (o.recipe !== undefined) {
    const mixed = [...(positionals.length ? ['<model>'] : []), ...EVAL_FLAGS.filter((f) => o[f] !== undefined).map((f) => `--${f}`)];
    if (mixed.length) throw new UsageError(`--recipe cannot be combined with ${mixed.join(', ')}: the recipe file says what to evaluate.`);
    const { submit, recipe, resolved } = loadRecipeFile(String(o.recipe));
    if (recipe.steps.length) {
      throw new UsageError(`The recipe ${o.recipe} has compression steps; run it with \`whittle run ${o.recipe}\`.`);
    }
    if (resolved.length) out.info(`paths read relative to the recipe's folder: ${resolved.join(', ')}`);
    return runAndReport(applyNoCache(submit, o), o.name as string | undefined, out, home);
  }
  if (positionals.length === 0) {
    throw new UsageError('whittle eval needs <model> (an .onnx file) or --recipe FILE.', 'Usage: whittle eval <model> [--text FILE] [--tokenizer FILE] [--speed] [options]');
  }
  const recipe = recipeFromFlags(positionals[0], o);
  const parsed = Recipe.parse(recipe);
  checkRecipeFiles(parsed);
  if (parsed.evaluation.accuracy) await checkAccuracyLabels(parsed.model.path, parsed.evaluation.accuracy, parsed.tokenizer?.path);
  return runAndReport(recipe, undefined, out, home);
}

export async function runRecipeCommand(file: string, o: OptionValues, out: Output, home: string | undefined): Promise<number> {
  const { submit, resolved } = loadRecipeFile(file);
  if (resolved.length) out.info(`paths read relative to the recipe's folder: ${resolved.join(', ')}`);
  return runAndReport(applyNoCache(submit, o), o.name as string | undefined, out, home);
}
