/**
 * Compare any 2–8 experiments: pure, from their history records (ExperimentDetail) alone, so the API,
 * the CLI and the reports share one answer. Types: preload/comparison.ts.
 *
 *   metrics      each run's own numbers (the compressed result, or the model it evaluated), side by side,
 *                with the change against the baseline judged by the metric's direction
 *                (preload/metric-direction.ts); timings whose repeats' min–max ranges overlap are
 *                'within-spread', not better or worse.
 *   recipeDiff   the recipe paths whose values differ (recipes read with their defaults filled in, so an
 *                unset field and its default are the same).
 *   notes        where runs measured differently: other starting model, text, tokenizer, perplexity
 *                protocol, speed settings, accuracy data, generation prompts. A metric's change against
 *                the baseline is marked not comparable when the two runs sit in different groups of a
 *                note that concerns it.
 */
import { z } from 'zod';
import type { ExperimentDetail, Metric } from '../../preload/contract.ts';
import type {
  ComparabilityAspect, ComparabilityNote, ComparedExperiment, ComparedMetric, Comparison, EvaluationFacts, GenerationRow,
  MeasuredValue, MetricCell, MetricGroup, RecipeDifference, Verdict, WeightSeries, WeightSeriesKind,
} from '../../preload/comparison.ts';
import { COMPARE_MAX, COMPARE_MIN } from '../../preload/comparison.ts';
import { judge, metricDirection, type MetricDirection } from '../../preload/metric-direction.ts';
import { PrunedWeight, QuantizedWeight, parseStepDetails, type StepDetails } from '../../preload/methods.ts';
import { stepLabel } from '../../preload/naming.ts';
import { Recipe } from '../../preload/recipe.ts';
import { WhittleError } from '../engine/errors.ts';

// ── reading records defensively ──────────────────────────────────────────────────────────────────────

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const at = (v: unknown, ...keys: string[]): unknown => keys.reduce<unknown>((o, k) => obj(o)?.[k], v);

/** Metrics measured for one model of a run, by name (a value that is not a finite number counts as not measured). */
function metricsOf(metrics: readonly Metric[], subject: string): Record<string, MeasuredValue> {
  const out: Record<string, MeasuredValue> = {};
  for (const m of metrics) if (m.subject === subject && Number.isFinite(m.value) && !(m.name in out)) out[m.name] = { value: m.value, unit: m.unit };
  return out;
}

/** A run that compressed a model reports the result; one that evaluated a model alone reports 'model'. */
function subjectOf(d: ExperimentDetail): 'result' | 'model' {
  return d.metrics.some((m) => m.subject === 'result') ? 'result' : 'model';
}

function evaluationFacts(d: ExperimentDetail, subject: 'result' | 'model'): EvaluationFacts {
  const settings = obj(at(d.details, 'settings', 'evaluation')) ?? obj(at(d.recipe, 'evaluation')) ?? {};
  const measured = obj(at(d.details, 'evaluation', subject)) ?? {};
  const ppl = obj(settings.perplexity);
  const speed = obj(settings.speed);
  const accuracy = obj(settings.accuracy);
  const samples = Array.isArray(d.details.samples) ? d.details.samples : [];
  const prompts = samples.map((s) => str(obj(s)?.prompt)).filter((p): p is string => p !== null);
  return {
    startedFrom: d.modelSha256 ?? str(at(d.details, 'original', 'sha256')),
    tokenizer: str(at(d.details, 'tokenizer', 'path')) ?? str(at(d.recipe, 'tokenizer', 'path')),
    perplexity: ppl && str(ppl.text) !== null ? {
      text: str(ppl.text)!,
      textChars: num(at(measured, 'perplexity', 'charsInText')),
      protocol: str(ppl.protocol) ?? 'documents',
      window: num(ppl.window),
      maxSamples: num(ppl.maxSamples),
      minTokens: num(ppl.minTokens),
      samples: num(at(measured, 'perplexity', 'samples')),
      predictedTokens: num(at(measured, 'perplexity', 'predictedTokens')),
    } : null,
    speed: speed ? {
      promptTokens: num(speed.promptTokens),
      decodeTokens: num(speed.decodeTokens),
      repeats: num(speed.repeats),
      threads: num(speed.threads),
      threadsUsed: num(at(measured, 'speed', 'threads')),
    } : null,
    accuracy: accuracy && str(accuracy.file) !== null ? {
      file: str(accuracy.file)!, testFile: str(accuracy.testFile), heldOut: num(accuracy.heldOut), seed: num(accuracy.seed), maxLength: num(accuracy.maxLength),
    } : null,
    generations: prompts.length > 0 ? { prompts, maxNewTokens: num(at(d.details, 'samplePrompts', 'maxNewTokens')) ?? num(at(settings, 'samples', 'maxNewTokens')) } : null,
  };
}

// ── what a run did, in a few words ───────────────────────────────────────────────────────────────────

/** recipeLabel of a recipe already parsed. */
export function parsedRecipeLabel(recipe: Recipe): string {
  return recipe.steps.length > 0 ? recipe.steps.map(stepLabel).join(' → ') : 'Evaluate';
}

/** 'GPTQ 4-bit g32', 'Magnitude 50% → RTN 4-bit g32' (preload/naming.ts), or 'Evaluate' for a run without steps. */
export function recipeLabel(recipe: unknown): string {
  const parsed = Recipe.safeParse(recipe);
  if (parsed.success) return parsedRecipeLabel(parsed.data);
  // A recipe this version no longer reads: its step types and methods as written.
  const steps = Array.isArray(at(recipe, 'steps')) ? (at(recipe, 'steps') as unknown[]) : [];
  const labels = steps.map((st) => [str(at(st, 'type')), str(at(st, 'method'))].filter(Boolean).join(' ')).filter(Boolean);
  return labels.length > 0 ? labels.join(' → ') : 'Evaluate';
}

// ── metrics side by side ─────────────────────────────────────────────────────────────────────────────

const GROUPS: Record<string, MetricGroup> = {};
const ORDER: string[] = [];
for (const [group, names] of [
  ['quality', ['perplexity', 'nll', 'kl_mean', 'top1_agreement', 'accuracy', 'macro_f1', 'accuracy_examples', 'predicted_tokens', 'documents', 'windows']],
  ['speed', ['decode_tokens_per_s', 'decode_tokens_per_s_min', 'decode_tokens_per_s_max', 'prefill_ms', 'prefill_ms_min', 'prefill_ms_max', 'decode_ms_per_token',
    'prefill_tokens', 'decode_tokens', 'speed_repeats', 'speed_threads', 'eval_tokens_per_s', 'tokens_per_s', 'eval_seconds']],
  ['size', ['bytes_on_disk', 'bytes_compressed', 'bits_per_weight', 'parameters', 'peak_memory_bytes']],
] as const) {
  for (const n of names) { GROUPS[n] = group; ORDER.push(n); }
}

function metricOrder(a: string, b: string): number {
  const ia = ORDER.indexOf(a);
  const ib = ORDER.indexOf(b);
  if (ia >= 0 || ib >= 0) return (ia < 0 ? ORDER.length : ia) - (ib < 0 ? ORDER.length : ib);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Timings measured as a median of repeats, with the extremes as `<name>_min` and `<name>_max`. */
const TIMED = new Set(['prefill_ms', 'decode_tokens_per_s']);

function spreadsOverlap(name: string, a: Record<string, MeasuredValue>, b: Record<string, MeasuredValue>): boolean {
  const lo1 = a[`${name}_min`]?.value; const hi1 = a[`${name}_max`]?.value;
  const lo2 = b[`${name}_min`]?.value; const hi2 = b[`${name}_max`]?.value;
  if (lo1 === undefined || hi1 === undefined || lo2 === undefined || hi2 === undefined) return false;
  return Math.min(lo1, hi1) <= Math.max(lo2, hi2) && Math.min(lo2, hi2) <= Math.max(lo1, hi1);
}

function verdictOf(name: string, direction: MetricDirection | null, run: Record<string, MeasuredValue>, base: Record<string, MeasuredValue>): Verdict {
  const v = judge(direction, run[name]?.value ?? null, base[name]?.value ?? null);
  if ((v === 'better' || v === 'worse') && TIMED.has(name) && spreadsOverlap(name, run, base)) return 'within-spread';
  return v;
}

// ── comparability ────────────────────────────────────────────────────────────────────────────────────

const PPL_METRICS = ['perplexity', 'nll', 'kl_mean', 'top1_agreement', 'predicted_tokens', 'documents', 'windows', 'eval_tokens_per_s', 'tokens_per_s', 'eval_seconds'];
const SPEED_METRICS = ['prefill_ms', 'prefill_ms_min', 'prefill_ms_max', 'decode_tokens_per_s', 'decode_tokens_per_s_min', 'decode_tokens_per_s_max', 'decode_ms_per_token', 'prefill_tokens', 'decode_tokens'];
/** Every figure that is a timing: the speed test's, and how fast the evaluation itself ran. */
const TIMINGS = [...SPEED_METRICS, 'eval_tokens_per_s', 'tokens_per_s', 'eval_seconds'];
const ACCURACY_METRICS = ['accuracy', 'macro_f1', 'accuracy_examples'];

interface AspectRule {
  aspect: ComparabilityAspect;
  metrics: string[];
  /** What the run used, in words; null when the aspect does not apply to it (not measured). */
  key: (e: EvaluationFacts) => string | null;
  message: (groups: number) => string;
}

const short = (sha: string): string => `${sha.slice(0, 12)}…`;
const orDefault = (v: number | null): string => (v === null ? '?' : String(v));

const RULES: AspectRule[] = [
  {
    aspect: 'model', metrics: ['kl_mean', 'top1_agreement'],
    key: (e) => (e.startedFrom ? `model ${short(e.startedFrom)}` : null),
    message: () => 'These runs started from different models: KL and top-1 agreement are each measured against its own original, so they do not compare across these groups.',
  },
  {
    aspect: 'text', metrics: PPL_METRICS,
    key: (e) => (e.perplexity ? `${e.perplexity.text}${e.perplexity.textChars !== null ? ` (${e.perplexity.textChars} characters)` : ''}` : null),
    message: () => 'Perplexity was measured on different text (another file, or the same file changed): the numbers of these groups are not like for like.',
  },
  {
    aspect: 'tokenizer', metrics: PPL_METRICS,
    key: (e) => (e.perplexity ? e.tokenizer ?? 'the tokenizer beside the model' : null),
    message: () => 'The text was tokenized with different tokenizers: perplexity per token differs in meaning between these groups.',
  },
  {
    aspect: 'protocol', metrics: PPL_METRICS,
    key: (e) => {
      const p = e.perplexity;
      if (!p) return null;
      return p.protocol === 'stream'
        ? `stream, windows of ${orDefault(p.window)} tokens, at most ${orDefault(p.maxSamples)} windows`
        : `documents, truncated to ${orDefault(p.window)} tokens, at most ${orDefault(p.maxSamples)} documents of at least ${orDefault(p.minTokens)} tokens`;
    },
    message: () => 'Perplexity was measured with a different protocol (context length, number of documents or windows): the numbers of these groups are not like for like.',
  },
  {
    aspect: 'speed', metrics: SPEED_METRICS,
    key: (e) => {
      const s = e.speed;
      if (!s) return null;
      const threads = s.threadsUsed ?? s.threads;
      return `prompt ${orDefault(s.promptTokens)} tokens, ${orDefault(s.decodeTokens)} decoded, ${threads === null || threads === 0 ? 'default threads' : `${threads} threads`}`;
    },
    message: () => 'Speed was timed with different settings (prompt length, decoded tokens or threads): these timings do not compare.',
  },
  {
    aspect: 'accuracy', metrics: ACCURACY_METRICS,
    key: (e) => {
      const a = e.accuracy;
      if (!a) return null;
      return a.testFile ? `${a.file}, tested on ${a.testFile}` : `${a.file}, held-out ${a.heldOut ?? 0.2} (seed ${a.seed ?? 0}), ≤ ${orDefault(a.maxLength)} tokens`;
    },
    message: () => 'Accuracy was measured on different labelled data or splits: these numbers do not compare.',
  },
  {
    aspect: 'generations', metrics: [],
    key: (e) => (e.generations ? `${e.generations.prompts.length} prompt(s): ${e.generations.prompts.map((p) => JSON.stringify(p)).join(', ')}${e.generations.maxNewTokens !== null ? `, ${e.generations.maxNewTokens} new tokens` : ''}` : null),
    message: () => 'The runs generated from different prompts or lengths: only the prompts they share stand side by side.',
  },
];

function notesOf(experiments: readonly ComparedExperiment[]): ComparabilityNote[] {
  const notes: ComparabilityNote[] = [];
  for (const rule of RULES) {
    const groups = new Map<string, number[]>();
    for (const e of experiments) {
      const key = rule.key(e.evaluation);
      if (key === null) continue;
      const list = groups.get(key);
      if (list) list.push(e.id); else groups.set(key, [e.id]);
    }
    if (groups.size < 2) continue;
    const list = [...groups].map(([value, ids]) => ({ ids, value }));
    const pairs: [number, number][] = [];
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) for (const a of list[i].ids) for (const b of list[j].ids) pairs.push(a < b ? [a, b] : [b, a]);
    }
    pairs.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    notes.push({ aspect: rule.aspect, severity: 'warning', metrics: rule.metrics, groups: list, pairs, message: rule.message(list.length) });
  }
  const timed = experiments.filter((e) => TIMINGS.some((name) => e.metrics[name] !== undefined));
  if (timed.length >= 2) {
    notes.push({
      aspect: 'speed', severity: 'info', metrics: TIMINGS, groups: [{ ids: timed.map((e) => e.id), value: 'timed in separate jobs' }], pairs: [],
      message: 'Each run was timed in its own job, perhaps under another load: a difference inside the repeats\' spread is no difference, and only a run\'s original beside its result was timed side by side.',
    });
  }
  return notes;
}

/** The warning aspects under which runs `a` and `b` measured `metric` differently. */
function differences(notes: readonly ComparabilityNote[], metric: string, a: number, b: number): ComparabilityAspect[] {
  if (a === b) return [];
  const out: ComparabilityAspect[] = [];
  for (const n of notes) {
    if (n.severity !== 'warning' || !n.metrics.includes(metric)) continue;
    if (n.pairs.some(([x, y]) => (x === a && y === b) || (x === b && y === a))) out.push(n.aspect);
  }
  return out;
}

// ── recipes ──────────────────────────────────────────────────────────────────────────────────────────

/** The recipe with its defaults filled in (so unset and default agree); as stored when it does not parse. */
function normalRecipe(recipe: unknown): unknown {
  const parsed = Recipe.safeParse(recipe);
  return parsed.success ? parsed.data : recipe;
}

/** Every leaf of a JSON value by path (`steps[0].bits`); empty objects and arrays are leaves. */
export function flattenJson(value: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(value) && value.length > 0) {
    value.forEach((v, i) => flattenJson(v, `${prefix}[${i}]`, out));
  } else if (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value as Obj)) if (v !== undefined) flattenJson(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix || '$', JSON.stringify(value ?? null));
  }
  return out;
}

/** The paths whose values differ between recipes, in first-seen order; each value as JSON text, null where absent. */
export function diffRecipes(recipes: readonly unknown[]): RecipeDifference[] {
  const flat = recipes.map((r) => flattenJson(r));
  const paths: string[] = [];
  const seen = new Set<string>();
  for (const f of flat) for (const p of f.keys()) if (!seen.has(p)) { seen.add(p); paths.push(p); }
  const out: RecipeDifference[] = [];
  for (const path of paths) {
    const values = flat.map((f) => f.get(path) ?? null);
    if (values.some((v) => v !== values[0])) out.push({ path, values });
  }
  return out;
}

// ── generations and per-weight series ────────────────────────────────────────────────────────────────

export function generationsOf(details: readonly ExperimentDetail[]): GenerationRow[] {
  const prompts: string[] = [];
  const byRun = details.map((d) => {
    const map = new Map<string, { text: string | null; original: string | null }>();
    for (const s of Array.isArray(d.details.samples) ? d.details.samples : []) {
      const prompt = str(obj(s)?.prompt);
      if (prompt === null || map.has(prompt)) continue;
      if (!prompts.includes(prompt)) prompts.push(prompt);
      map.set(prompt, { text: str(obj(s)?.result) ?? str(obj(s)?.completion), original: str(obj(s)?.original) });
    }
    return map;
  });
  return prompts.map((prompt) => ({
    prompt,
    original: byRun.map((m) => m.get(prompt)?.original ?? null).find((t) => t !== null) ?? null,
    texts: byRun.map((m) => m.get(prompt)?.text ?? null),
  }));
}

interface SeriesSpec { kind: WeightSeriesKind; label: string; unit: string; direction: MetricDirection; read: (steps: StepDetails[]) => { name: string; value: number }[] | null }

const realValue = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);

/** The per-weight rows (`quantizedWeights`, `prunedWeights`) of the first step that reports them. */
function weightRows<S extends z.ZodType>(steps: readonly StepDetails[], field: string, row: S): z.infer<S>[] | null {
  for (const step of steps) {
    const rows = z.array(row).safeParse((step as Record<string, unknown>)[field]);
    if (rows.success) return rows.data;
  }
  return null;
}

const SERIES: SeriesSpec[] = [
  {
    kind: 'sensitivity', label: 'Sensitivity (KL when only this weight is quantized)', unit: 'nats', direction: 'lower',
    read: (steps) => {
      const s = steps.find((x) => x.key === 'sensitivity');
      return s && s.key === 'sensitivity' ? s.sensitivity.map((r) => ({ name: r.name, value: r.kl })) : null;
    },
  },
  {
    kind: 'gptq-loss', label: 'GPTQ loss ‖XW − XŴ‖²', unit: '', direction: 'lower',
    read: (steps) => {
      const s = steps.find((x) => x.key === 'quantize:gptq');
      return s && s.key === 'quantize:gptq' ? s.quantizedWeights.filter((w) => realValue(w.loss)).map((w) => ({ name: w.name, value: w.loss! })) : null;
    },
  },
  {
    kind: 'quantization-error', label: 'Quantization error ‖W − Ŵ‖²', unit: '', direction: 'lower',
    read: (steps) => {
      const rows = weightRows(steps, 'quantizedWeights', QuantizedWeight);
      return rows && rows.filter((w) => realValue(w.sqError)).map((w) => ({ name: w.name, value: w.sqError }));
    },
  },
  {
    kind: 'sparsity', label: 'Sparsity (share of zeros)', unit: '', direction: 'lower',
    read: (steps) => {
      const rows = weightRows(steps, 'prunedWeights', PrunedWeight);
      return rows && rows.map((w) => ({ name: w.name, value: w.sparsity }));
    },
  },
  {
    kind: 'sparsegpt-loss', label: 'SparseGPT loss ½ Σ err²', unit: '', direction: 'lower',
    read: (steps) => {
      const rows = weightRows(steps, 'prunedWeights', PrunedWeight)?.filter((w) => realValue(w.loss)).map((w) => ({ name: w.name, value: w.loss! }));
      return rows && rows.length > 0 ? rows : null;
    },
  },
];

export function seriesOf(details: readonly ExperimentDetail[]): WeightSeries[] {
  const steps = details.map((d) => parseStepDetails(d.details));
  const out: WeightSeries[] = [];
  for (const spec of SERIES) {
    const runs = details.map((d, i) => ({ id: d.id, rows: spec.read(steps[i]) })).filter((r): r is { id: number; rows: { name: string; value: number }[] } => r.rows !== null && r.rows.length > 0);
    if (runs.length === 0) continue;
    const weights: string[] = [];
    const seen = new Set<string>();
    for (const r of runs) for (const row of r.rows) if (!seen.has(row.name)) { seen.add(row.name); weights.push(row.name); }
    const values = runs.map((r) => {
      const byName = new Map(r.rows.map((row) => [row.name, row.value]));
      return weights.map((w) => byName.get(w) ?? null);
    });
    out.push({ kind: spec.kind, label: spec.label, unit: spec.unit, direction: spec.direction, weights, ids: runs.map((r) => r.id), values });
  }
  return out;
}

// ── the comparison ───────────────────────────────────────────────────────────────────────────────────

/** Checks the ids of a comparison: 2–8 distinct experiments, the baseline among them. */
export function checkCompareIds(ids: readonly number[], baseline?: number): void {
  const distinct = new Set(ids);
  if (distinct.size !== ids.length) throw new WhittleError('INVALID_INPUT', `An experiment is named twice in ${ids.join(', ')}: name each experiment once.`, { ids });
  if (ids.length < COMPARE_MIN || ids.length > COMPARE_MAX) {
    throw new WhittleError('INVALID_INPUT', `A comparison holds ${COMPARE_MIN} to ${COMPARE_MAX} experiments; ${ids.length} were named. Pick between ${COMPARE_MIN} and ${COMPARE_MAX}.`, { ids });
  }
  if (baseline !== undefined && !distinct.has(baseline)) {
    throw new WhittleError('INVALID_INPUT', `The baseline ${baseline} is not one of the compared experiments (${ids.join(', ')}). Pick one of them as the baseline.`, { ids, baseline });
  }
}

export function compareExperiment(d: ExperimentDetail): ComparedExperiment {
  const subject = subjectOf(d);
  return {
    id: d.id, name: d.name, kind: d.kind, status: d.status, created: d.created, modelPath: d.modelPath, modelSha256: d.modelSha256,
    method: recipeLabel(d.recipe),
    subject,
    metrics: metricsOf(d.metrics, subject),
    original: subject === 'result' ? metricsOf(d.metrics, 'original') : {},
    evaluation: evaluationFacts(d, subject),
    tags: d.tags,
    notes: d.notes,
  };
}

/**
 * The comparison of `details` (in the order given) against the baseline run (default: the first).
 * Throws INVALID_INPUT for fewer than 2 or more than 8 runs, a run named twice, or a baseline not among them.
 */
export function compareExperiments(details: readonly ExperimentDetail[], baselineId?: number): Comparison {
  const ids = details.map((d) => d.id);
  checkCompareIds(ids, baselineId);
  const baseline = baselineId ?? ids[0];
  const experiments = details.map(compareExperiment);
  const notes = notesOf(experiments);
  const base = experiments[ids.indexOf(baseline)];

  const names = new Map<string, string>();
  for (const e of experiments) for (const [name, m] of Object.entries(e.metrics)) if (!names.has(name)) names.set(name, m.unit);
  const metrics: ComparedMetric[] = [...names].sort(([a], [b]) => metricOrder(a, b)).map(([name, unit]) => {
    const direction = metricDirection(name, unit);
    const reference = base.metrics[name]?.value ?? null;
    const cells = experiments.map((e): MetricCell => {
      const value = e.metrics[name]?.value ?? null;
      const difference = value !== null && reference !== null ? value - reference : null;
      const reasons = value !== null && reference !== null ? differences(notes, name, e.id, baseline) : [];
      return {
        id: e.id, value, difference,
        percent: difference !== null && reference !== null && reference !== 0 ? (100 * difference) / Math.abs(reference) : null,
        verdict: e.id === baseline ? null : verdictOf(name, direction, e.metrics, base.metrics),
        comparable: reasons.length === 0,
        reasons,
      };
    });
    return { name, unit, direction, group: GROUPS[name] ?? 'other', cells };
  });

  return {
    baseline, ids, experiments, metrics,
    recipeDiff: diffRecipes(details.map((d) => normalRecipe(d.recipe))),
    notes,
    generations: generationsOf(details),
    series: seriesOf(details),
  };
}
