/**
 * The original beside the result of a quantize job: comparison rows with the change in percent, the
 * generations paired by prompt, the skipped weights, the output paths. Everything here reads the job's
 * metrics/details/artefacts defensively: a metric that was not measured shows as "—".
 */
import type { Artefact, Metric } from '../../preload/contract.ts';
import { parseStepDetails } from '../../preload/methods.ts';
import { formatBytes, formatDecimal } from './format.ts';
import { formatMetric, metricLabel } from './metrics.ts';

export interface CompareMetric {
  name: string;
  /** Which direction is an improvement; null when neither (parameters). */
  better: 'lower' | 'higher' | null;
  /** Measured against the original (the original is the reference, it has no value of its own). */
  relative?: boolean;
  label?: string;
}

export const COMPARE_METRICS: readonly CompareMetric[] = [
  { name: 'perplexity', better: 'lower' },
  { name: 'kl_mean', better: 'lower', relative: true },
  { name: 'top1_agreement', better: 'higher', relative: true },
  { name: 'bytes_on_disk', better: 'lower', label: 'Size on disk' },
  { name: 'bits_per_weight', better: 'lower' },
  { name: 'prefill_ms', better: 'lower', label: 'Prefill time' },
  { name: 'decode_tokens_per_s', better: 'higher', label: 'Decode speed' },
  { name: 'parameters', better: null },
];

export type Verdict = 'better' | 'worse' | 'same' | null;

export interface CompareRow {
  metric: string;
  label: string;
  relative: boolean;
  original: Metric | null;
  result: Metric | null;
  /** (result − original) / original in percent; null when either is missing or the original is 0. */
  changePercent: number | null;
  verdict: Verdict;
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

/** The comparison table's rows: the fixed list, always present (absent values are shown as "—"). */
export function compareRows(metrics: readonly Metric[]): CompareRow[] {
  return COMPARE_METRICS.map((c) => {
    const original = find(metrics, c.name, 'original');
    const result = find(metrics, c.name, 'result');
    const change = c.relative ? null : changePercent(original?.value, result?.value);
    return {
      metric: c.name,
      label: c.label ?? metricLabel(c.name),
      relative: c.relative ?? false,
      original,
      result,
      changePercent: change,
      verdict: verdictOf(change, c.better),
    };
  });
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

/** "1.09 MB → 462 kB (2.36× smaller, −57.7 %)". */
export function formatEstimate(before: number, after: number): string {
  return `${formatBytes(before)} → ${formatBytes(after)} (${formatRatio(before, after)}, ${formatChange(changePercent(before, after))})`;
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
  const step = parseStepDetails(details).find((s) => s.type === 'quantize');
  if (!step || step.key === 'sensitivity') return { method: null, quantized: null, skipped: [], outputDir: null };
  // FP16 reports the tensors it converted rather than weights quantized.
  if (step.key === 'quantize:fp16') return { method: step.method, quantized: step.converted, skipped: [], outputDir: step.outputDir };
  return { method: step.method, quantized: step.quantized, skipped: step.skipped.map((s) => ({ name: s.name, reason: s.reason })), outputDir: step.outputDir };
}

/** The output folder (artefact kind 'folder', else the model's folder, else the step's report). */
export function outputFolder(artefacts: readonly Artefact[], details?: unknown): string | null {
  const folder = artefacts.find((a) => a.kind === 'folder');
  if (folder) return folder.path;
  const model = artefacts.find((a) => a.kind === 'model');
  if (model) return model.path.replace(/[\\/][^\\/]*$/, '') || model.path;
  return stepReport(details).outputDir;
}

export function outputModel(artefacts: readonly Artefact[]): Artefact | null {
  return artefacts.find((a) => a.kind === 'model') ?? null;
}

/** Bars for the chart: one group per quantity, original beside result (absent values left out). */
export function chartData(metrics: readonly Metric[]): { size: { label: string; original: number; result: number }[]; perplexity: { label: string; original: number; result: number }[] } {
  const size = { o: find(metrics, 'bytes_on_disk', 'original'), r: find(metrics, 'bytes_on_disk', 'result') };
  const ppl = { o: find(metrics, 'perplexity', 'original'), r: find(metrics, 'perplexity', 'result') };
  return {
    size: size.o && size.r ? [{ label: 'Size on disk (MB)', original: size.o.value / 1e6, result: size.r.value / 1e6 }] : [],
    perplexity: ppl.o && ppl.r ? [{ label: 'Perplexity', original: ppl.o.value, result: ppl.r.value }] : [],
  };
}
