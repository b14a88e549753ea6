/**
 * The original beside the result of a quantize job: comparison rows with the change in percent, the
 * generations paired by prompt, the skipped weights, the output paths. Everything here reads the job's
 * metrics/details/artefacts defensively: a metric that was not measured shows as "—".
 */
import type { Artefact, Metric } from '../../preload/contract.ts';
import { isQuantizeDetails, parseStepDetails } from '../../preload/methods.ts';
import { formatBytes, formatDecimal } from './format.ts';
import { formatMetric, metricLabel } from './metrics.ts';

export interface CompareMetric {
  name: string;
  /** Which direction is an improvement; null when neither (parameters). */
  better: 'lower' | 'higher' | null;
  /** Measured against the original (the original is the reference, it has no value of its own). */
  relative?: boolean;
  label?: string;
  /**
   * A timing: each subject's value is a median over repeated runs, with the extremes as `<name>_min` and
   * `<name>_max`. A change is only judged when the two min–max ranges do not overlap.
   */
  timed?: boolean;
  /** Listed only when measured for either model (a footprint figure older results do not have). */
  whenMeasured?: boolean;
}

export const COMPARE_METRICS: readonly CompareMetric[] = [
  { name: 'perplexity', better: 'lower' },
  /** A classifier's share right and macro-F1 on held-out labelled examples (the evaluation's accuracy section). */
  { name: 'accuracy', better: 'higher', whenMeasured: true },
  { name: 'macro_f1', better: 'higher', whenMeasured: true },
  { name: 'kl_mean', better: 'lower', relative: true },
  { name: 'top1_agreement', better: 'higher', relative: true },
  { name: 'bytes_on_disk', better: 'lower', label: 'Size on disk' },
  /** The model folder's size once compressed: what zeros from unstructured pruning gain, which the size on disk does not show. */
  { name: 'bytes_compressed', better: 'lower', label: 'Size compressed', whenMeasured: true },
  { name: 'bits_per_weight', better: 'lower' },
  { name: 'prefill_ms', better: 'lower', label: 'Prefill time', timed: true },
  { name: 'decode_tokens_per_s', better: 'higher', label: 'Decode speed', timed: true },
  { name: 'parameters', better: null },
];

/** 'within-spread': a timing whose change is inside the runs' spread — no measurable difference. */
export type Verdict = 'better' | 'worse' | 'same' | 'within-spread' | null;

/** The extremes of a timing's repeated runs. */
export interface RunSpread { min: number; max: number; runs: number | null }

export interface CompareRow {
  metric: string;
  label: string;
  relative: boolean;
  original: Metric | null;
  result: Metric | null;
  /** (result − original) / original in percent; null when either is missing or the original is 0. */
  changePercent: number | null;
  verdict: Verdict;
  /** Timings: each side's min–max over its runs (null when not recorded). */
  spread: { original: RunSpread | null; result: RunSpread | null };
}

/** Changes smaller than this (in percent) count as "the same". */
const SAME_WITHIN = 0.05;

function find(metrics: readonly Metric[], name: string, subject: string): Metric | null {
  return metrics.find((m) => m.name === name && m.subject === subject) ?? null;
}

export function changePercent(original: number | null | undefined, result: number | null | undefined): number | null {
  if (original === null || original === undefined || result === null || result === undefined) return null;
  if (!Number.isFinite(original) || !Number.isFinite(result) || original === 0) return null;
  return ((result - original) / Math.abs(original)) * 100;
}

function verdictOf(change: number | null, better: CompareMetric['better']): Verdict {
  if (change === null || better === null) return null;
  if (Math.abs(change) < SAME_WITHIN) return 'same';
  return (change < 0) === (better === 'lower') ? 'better' : 'worse';
}

function spreadOf(metrics: readonly Metric[], name: string, subject: string): RunSpread | null {
  const min = find(metrics, `${name}_min`, subject);
  const max = find(metrics, `${name}_max`, subject);
  if (!min || !max || !Number.isFinite(min.value) || !Number.isFinite(max.value)) return null;
  return { min: min.value, max: max.value, runs: find(metrics, 'speed_repeats', subject)?.value ?? null };
}

/**
 * A timing's verdict: judged by direction only when the two min–max ranges are apart; overlapping ranges
 * are no measurable difference; without ranges (an older experiment) it is not judged at all.
 */
function timedVerdict(change: number | null, better: CompareMetric['better'], a: RunSpread | null, b: RunSpread | null): Verdict {
  if (change === null || !a || !b) return null;
  if (a.max >= b.min && b.max >= a.min) return 'within-spread';
  return verdictOf(change, better);
}

/** The comparison table's rows: the fixed list, present whether measured or not (absent values are shown as "—"). */
export function compareRows(metrics: readonly Metric[]): CompareRow[] {
  const listed = COMPARE_METRICS.filter((c) => !c.whenMeasured || metrics.some((m) => m.name === c.name));
  return listed.map((c) => {
    const original = find(metrics, c.name, 'original');
    const result = find(metrics, c.name, 'result');
    const change = c.relative ? null : changePercent(original?.value, result?.value);
    const spread = c.timed
      ? { original: spreadOf(metrics, c.name, 'original'), result: spreadOf(metrics, c.name, 'result') }
      : { original: null, result: null };
    return {
      metric: c.name,
      label: c.label ?? metricLabel(c.name),
      relative: c.relative ?? false,
      original,
      result,
      changePercent: change,
      verdict: c.timed ? timedVerdict(change, c.better, spread.original, spread.result) : verdictOf(change, c.better),
      spread,
    };
  });
}

/** "1,290–1,410 tok/s over 5 runs": a timing's spread in the metric's own unit. */
export function formatRunSpread(m: Metric | null, spread: RunSpread | null): string {
  if (!m || !spread) return '';
  const low = formatMetric({ ...m, value: spread.min });
  const high = formatMetric({ ...m, value: spread.max });
  const unit = / (\S+)$/.exec(high)?.[1] ?? '';
  const lowNumber = unit && low.endsWith(` ${unit}`) ? low.slice(0, -unit.length - 1) : low;
  return `${lowNumber}–${high}${spread.runs !== null ? ` over ${spread.runs} run${spread.runs === 1 ? '' : 's'}` : ''}`;
}

/** The change column's text: the percentage, or for a timing within its spread "no measurable difference". */
export function formatRowChange(row: Pick<CompareRow, 'changePercent' | 'verdict'>): string {
  return row.verdict === 'within-spread' ? 'no measurable difference' : formatChange(row.changePercent);
}

export function formatCompareValue(m: Metric | null): string {
  return m ? formatMetric(m) : '—';
}

/** +9.46 % / −56.6 % / ±0 % with a real minus sign. */
export function formatChange(change: number | null): string {
  if (change === null) return '—';
  if (Math.abs(change) < SAME_WITHIN) return '±0 %';
  const digits = Math.abs(change) >= 100 ? 0 : Math.abs(change) >= 10 ? 1 : 2;
  const text = formatDecimal(Math.abs(change), digits);
  return `${change > 0 ? '+' : '−'}${text} %`;
}

/** A size reduction as a ratio: 1_090_282 → 461_602 is "2.36× smaller". */
export function formatRatio(before: number, after: number): string {
  if (!(before > 0) || !(after > 0)) return '—';
  const r = before / after;
  return r >= 1 ? `${formatDecimal(r, 2)}× smaller` : `${formatDecimal(1 / r, 2)}× larger`;
}

/** "1.04 MiB → 451 KiB (2.36× smaller, −57.7 %)". */
export function formatEstimate(before: number, after: number): string {
  return `${formatBytes(before)} → ${formatBytes(after)} (${formatRatio(before, after)}, ${formatChange(changePercent(before, after))})`;
}

/**
 * How the speeds were timed, from the details of a comparison (`evaluation.result.speed`):
 * "Speed: original and result timed interleaved in this job, 5 runs each after a warm-up, 2 threads, cpu".
 */
export function speedSetting(details: Record<string, unknown> | null | undefined): string | null {
  const evaluation = details && isRecord(details.evaluation) ? details.evaluation : null;
  const result = evaluation && isRecord(evaluation.result) ? evaluation.result : null;
  const speed = result && isRecord(result.speed) ? result.speed : null;
  if (!speed || typeof speed.repeats !== 'number') return null;
  const interleaved = Array.isArray(speed.order) && new Set(speed.order).size > 1;
  const threads = typeof speed.threads === 'number' ? `, ${speed.threads} thread${speed.threads === 1 ? '' : 's'}` : '';
  const provider = typeof speed.provider === 'string' ? `, ${speed.provider}` : '';
  const how = interleaved ? 'original and result timed interleaved in this job' : 'timed in this job';
  return `Speed: ${how}, median of ${speed.repeats} run${speed.repeats === 1 ? '' : 's'} each after a warm-up${threads}${provider}.`;
}

// ── generations ─────────────────────────────────────────────────────────────────────────────────────

export interface SamplePair { prompt: string; original: string | null; result: string | null }

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The continuation after the prompt, as it reads after it. A generation is a completion string, or an
 * object with the full decoded `text` (preferred: its spacing is the tokenizer's) or a `completion`.
 * A completion decoded on its own loses its leading space with SentencePiece tokenizers, so between a
 * prompt ending in a word and a completion starting with one a space is put back.
 */
export function continuation(prompt: string, g: unknown): string | null {
  if (isRecord(g) && typeof g.text === 'string' && g.text.startsWith(prompt)) return g.text.slice(prompt.length);
  const completion = typeof g === 'string' ? g : isRecord(g) && typeof g.completion === 'string' ? g.completion : null;
  if (completion === null) return null;
  return /[\p{L}\p{N}]$/u.test(prompt) && /^[\p{L}\p{N}]/u.test(completion) ? ` ${completion}` : completion;
}

/**
 * Generations paired by prompt. Reads `details.samples = [{ prompt, original, result }]`, or else the
 * per-subject lists `details.evaluation.{original,result}.samples = [{ prompt, completion }]`.
 */
export function samplePairs(details: Record<string, unknown> | null | undefined): SamplePair[] {
  if (!details) return [];
  if (Array.isArray(details.samples)) {
    return details.samples.filter(isRecord).map((s) => {
      const prompt = typeof s.prompt === 'string' ? s.prompt : '';
      return { prompt, original: continuation(prompt, s.original), result: continuation(prompt, s.result) };
    });
  }
  const evaluation = isRecord(details.evaluation) ? details.evaluation : null;
  const list = (subject: string): unknown[] => {
    const d = evaluation && isRecord(evaluation[subject]) ? evaluation[subject] : null;
    return d && Array.isArray(d.samples) ? d.samples : [];
  };
  const original = list('original');
  const result = list('result');
  const n = Math.max(original.length, result.length);
  const pairs: SamplePair[] = [];
  for (let i = 0; i < n; i++) {
    const o = original[i];
    const r = result[i];
    const prompt = (isRecord(o) && typeof o.prompt === 'string' ? o.prompt : isRecord(r) && typeof r.prompt === 'string' ? r.prompt : '');
    pairs.push({ prompt, original: continuation(prompt, o), result: continuation(prompt, r) });
  }
  return pairs;
}

// ── the quantize step's own report ──────────────────────────────────────────────────────────────────

export interface StepReport {
  /** The quantize step's method ('rtn', 'fp16', …), when it says. */
  method: string | null;
  quantized: number | null;
  skipped: { name: string; reason: string }[];
  outputDir: string | null;
}

/** What the job's quantize step reports (its details, parsed by their schema): weights quantized, skipped and why, the output folder. */
export function stepReport(details: unknown): StepReport {
  const step = parseStepDetails(details).find(isQuantizeDetails);
  if (!step) return { method: null, quantized: null, skipped: [], outputDir: null };
  // FP16 reports the tensors it converted rather than weights quantized.
  if (step.key === 'quantize:fp16') return { method: step.method, quantized: step.converted, skipped: [], outputDir: step.outputDir };
  if (step.key === 'quantize:qat') return { method: step.method, quantized: step.quantized, skipped: [], outputDir: step.outputDir };
  return { method: step.method, quantized: step.quantized, skipped: step.skipped.map((s) => ({ name: s.name, reason: s.reason })), outputDir: step.outputDir };
}

/**
 * The weight-only steps' warnings (many weights skipped for a reason the user can change), in step order;
 * FP16's own warnings show in its method details.
 */
export function stepWarnings(details: unknown): string[] {
  return parseStepDetails(details).flatMap((s) => (s.key === 'quantize:rtn' || s.key === 'quantize:gptq' || s.key === 'distill' ? s.warnings ?? [] : []));
}

/** The output folder (artefact kind 'folder', else the model's folder, else the step's report). */
export function outputFolder(artefacts: readonly Artefact[], details?: unknown): string | null {
  // The last step's folder: a recipe of several steps lists each step's, in order.
  const folder = artefacts.findLast((a) => a.kind === 'folder');
  if (folder) return folder.path;
  const model = artefacts.findLast((a) => a.kind === 'model');
  if (model) return model.path.replace(/[\\/][^\\/]*$/, '') || model.path;
  return stepReport(details).outputDir;
}

export function outputModel(artefacts: readonly Artefact[]): Artefact | null {
  return artefacts.findLast((a) => a.kind === 'model') ?? null;
}

/** Bars for the chart: one group per quantity, original beside result (absent values left out). */
const MIB = 2 ** 20;

/**
 * A value axis for a few positive measurements that does not start at zero, so that a change of a few
 * percent is visible: from half the spread below the smallest to a quarter above the largest, on round
 * steps (a tenth of the spread's order of magnitude), never below zero.
 */
export function zoomedDomain(values: readonly number[]): [number, number] {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return [0, 1];
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  // Equal values still get a visible band: 2 % of their size.
  const span = Math.max(hi - lo, Math.abs(hi) * 0.02, 1e-12);
  const step = 10 ** Math.floor(Math.log10(span));
  const round = (v: number): number => Number(v.toPrecision(12));
  return [round(Math.max(0, Math.floor((lo - span / 2) / step) * step)), round(Math.ceil((hi + span / 4) / step) * step)];
}

export function chartData(metrics: readonly Metric[]): { size: { label: string; original: number; result: number }[]; perplexity: { label: string; original: number; result: number }[] } {
  const size = { o: find(metrics, 'bytes_on_disk', 'original'), r: find(metrics, 'bytes_on_disk', 'result') };
  const packed = { o: find(metrics, 'bytes_compressed', 'original'), r: find(metrics, 'bytes_compressed', 'result') };
  const ppl = { o: find(metrics, 'perplexity', 'original'), r: find(metrics, 'perplexity', 'result') };
  return {
    size: [
      ...(size.o && size.r ? [{ label: 'Size on disk (MiB)', original: size.o.value / MIB, result: size.r.value / MIB }] : []),
      ...(packed.o && packed.r ? [{ label: 'Compressed (MiB)', original: packed.o.value / MIB, result: packed.r.value / MIB }] : []),
    ],
    perplexity: ppl.o && ppl.r ? [{ label: 'Perplexity', original: ppl.o.value, result: ppl.r.value }] : [],
  };
}
