/**
 * The original beside the compressed result, as the CLI prints it: one row per headline metric with the
 * original's value, the result's value and the change, then the greedy generations side by side.
 */
import type { ExperimentDetail, Metric } from '../../preload/contract.ts';
import { formatDuration, formatMetric, formatNumber, renderTable } from './format.ts';

interface Row {
  label: string;
  name: string;
  /** Only the result has it (agreement with the original). */
  pair?: boolean;
  /** A median over timed runs, with `<name>_min` / `<name>_max` beside it. */
  timed?: boolean;
}

const ROWS: readonly Row[] = [
  { label: 'perplexity', name: 'perplexity' },
  { label: 'accuracy', name: 'accuracy' },
  { label: 'macro-F1', name: 'macro_f1' },
  { label: 'KL(original ‖ result)', name: 'kl_mean', pair: true },
  { label: 'top-1 agreement', name: 'top1_agreement', pair: true },
  { label: 'size on disk', name: 'bytes_on_disk' },
  { label: 'size compressed', name: 'bytes_compressed' },
  { label: 'bits per weight', name: 'bits_per_weight' },
  { label: 'prefill time', name: 'prefill_ms', timed: true },
  { label: 'decode speed', name: 'decode_tokens_per_s', timed: true },
];

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function isComparison(metrics: readonly Metric[]): boolean {
  return metrics.some((m) => m.subject === 'original') && metrics.some((m) => m.subject === 'result');
}

/** The relative change from a to b as a signed percentage ('+9.15 %'), '' when it has no meaning. */
export function relativeChange(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || a === 0) return '';
  const change = (100 * (b - a)) / Math.abs(a);
  const text = Math.abs(change) >= 100 ? change.toFixed(0) : Math.abs(change) >= 10 ? change.toFixed(1) : change.toFixed(2);
  return `${change >= 0 ? '+' : ''}${text} %`;
}

function formatPairMetric(m: Metric): string {
  if (m.name === 'kl_mean') return `${Number.isFinite(m.value) ? (m.value === 0 ? '0' : m.value.toExponential(3)) : '—'} nats/token`;
  if (m.name === 'top1_agreement') return `${formatNumber(m.value)} %`;
  return formatMetric(m);
}

/**
 * The comparison table. A timing shows its median and its runs' range ('1,349 tokens/s (1,300–1,410)');
 * when the two ranges overlap, the change reads "no measurable difference" rather than a percentage.
 */
export function comparisonTable(metrics: readonly Metric[]): string {
  const find = (name: string, subject: string): Metric | undefined => metrics.find((m) => m.name === name && m.subject === subject);
  const range = (name: string, subject: string): { min: number; max: number } | null => {
    const min = find(`${name}_min`, subject);
    const max = find(`${name}_max`, subject);
    return min && max ? { min: min.value, max: max.value } : null;
  };
  const withRange = (m: Metric, r: { min: number; max: number } | null): string => {
    if (!r) return formatMetric(m);
    const unit = ` ${m.unit}`;
    const low = formatMetric({ ...m, value: r.min });
    const high = formatMetric({ ...m, value: r.max });
    return `${formatMetric(m)} (${low.endsWith(unit) ? low.slice(0, -unit.length) : low}–${high.endsWith(unit) ? high.slice(0, -unit.length) : high})`;
  };
  const rows: string[][] = [['', 'original', 'result', 'change']];
  for (const row of ROWS) {
    const b = find(row.name, 'result');
    if (!b) continue;
    if (row.pair) {
      rows.push([row.label, '', formatPairMetric(b), '']);
      continue;
    }
    const a = find(row.name, 'original');
    if (row.timed) {
      const ra = range(row.name, 'original');
      const rb = range(row.name, 'result');
      const overlap = ra !== null && rb !== null && ra.max >= rb.min && rb.max >= ra.min;
      rows.push([row.label, a ? withRange(a, ra) : '', withRange(b, rb), overlap ? 'no measurable difference' : relativeChange(a?.value, b.value)]);
      continue;
    }
    rows.push([row.label, a ? formatMetric(a) : '', formatMetric(b), relativeChange(a?.value, b.value)]);
  }
  return renderTable(rows, { header: true, rightAlign: [1, 2, 3] });
}

/** How the speeds of a comparison were timed, from its details: one line, or '' without a speed measurement. */
export function speedSettingText(details: Record<string, unknown>): string {
  const evaluation = isRecord(details.evaluation) ? details.evaluation : null;
  const result = evaluation && isRecord(evaluation.result) ? evaluation.result : null;
  const speed = result && isRecord(result.speed) ? result.speed : null;
  if (!speed || typeof speed.repeats !== 'number') return '';
  return `Speed: original and result timed interleaved in this job; median (min–max) of ${speed.repeats} run(s) each after a warm-up; `
    + `${String(speed.threads)} thread(s), ${String(speed.provider ?? 'cpu')}.`;
}

interface SideBySide { prompt: string; original: string; result: string }

function oneLine(text: string, width = 110): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

/** The generations of a comparison (details.samples), original above result. */
export function samplesText(details: Record<string, unknown>): string {
  const samples = details.samples;
  if (!Array.isArray(samples) || samples.length === 0) return '';
  const lines = ['Greedy generations (original / result):'];
  for (const s of samples as SideBySide[]) {
    if (typeof s?.prompt !== 'string') continue;
    lines.push(`  "${s.prompt}"`, `    original: ${oneLine(String(s.original))}`, `    result:   ${oneLine(String(s.result))}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The output folder a compression delivered: the last step's 'folder' artefact (earlier steps' come first). */
export function outputFolder(e: Pick<ExperimentDetail, 'artefacts'>): string | null {
  return e.artefacts.findLast((a) => a.kind === 'folder')?.path ?? null;
}

/** The model a compression delivered: the last step's 'model' artefact. */
export function outputModel(e: Pick<ExperimentDetail, 'artefacts'>): string | null {
  return e.artefacts.findLast((a) => a.kind === 'model')?.path ?? null;
}

const count = (v: unknown): number | null => (typeof v === 'number' ? v : Array.isArray(v) ? v.length : null);

/** One line per step of a finished recipe: the method, its main settings and what it did. */
export function stepSummaries(details: Record<string, unknown>): string[] {
  const steps = Array.isArray(details.steps) ? details.steps.filter(isRecord) : [];
  return steps.map((s) => {
    if (s.type === 'sensitivity') {
      const list = Array.isArray(s.sensitivity) ? s.sensitivity.filter(isRecord) : [];
      const top = list[0];
      return `sensitivity: ${list.length} candidate(s)${top ? `; most sensitive ${String(top.name)} (KL ${Number(top.kl).toExponential(3)} nats/token)` : ''}`;
    }
    const method = String(s.method ?? s.type);
    const skipped = count(s.skipped) ?? 0;
    const parts: string[] = [];
    if (method === 'rtn' || method === 'gptq') {
      parts.push(`${s.bits}-bit, block ${s.blockSize}, ${s.symmetric ? 'symmetric' : 'asymmetric'}, ${s.format}`);
      const eight = Array.isArray(s.quantizedWeights) ? s.quantizedWeights.filter((w) => isRecord(w) && w.bits !== s.bits).length : 0;
      if (eight > 0) parts.push(`${eight} weight(s) at other bits`);
      if (method === 'gptq') parts.push(`percdamp ${s.percdamp}${s.actOrder ? ', act-order' : ''}`);
    } else if (method === 'fp16') {
      parts.push(`${count(s.converted) ?? 0} tensor(s) to float16, ${count(s.keptFp32) ?? 0} kept in float32, ${count(s.fp32Nodes) ?? 0} node(s) computing in float32`);
    } else if (method === 'int8-dynamic') {
      parts.push(`${s.format}, ${s.perChannel ? 'per channel' : 'per tensor'}`);
    } else if (s.type === 'prune' && method !== 'structured') {
      const achieved = typeof s.achievedSparsity === 'number' ? `${(100 * s.achievedSparsity).toFixed(2)} % zeros` : '';
      parts.push(`${s.pattern ?? `${(100 * Number(s.sparsity)).toFixed(1)} %`}, ${s.allocation} allocation${s.sequential === false ? ', one pass' : ''}; ${achieved} in ${count(s.prunedWeights) ?? 0} weight(s), ${skipped} left dense`);
      if (isRecord(s.quantize)) parts.push(`kept weights at ${s.quantize.bits} bits, block ${s.quantize.blockSize}`);
    } else if (s.type === 'train' || s.type === 'distill') {
      const fmt = (v: unknown): string => (typeof v === 'number' ? v.toFixed(4) : '–');
      const held = s.evalLossBefore !== undefined ? `; held-out loss ${fmt(s.evalLossBefore)} → ${fmt(s.evalLossAfter)}` : '';
      const resumed = typeof s.resumedFromStep === 'number' ? `, resumed at step ${s.resumedFromStep}` : '';
      if (s.type === 'distill' && isRecord(s.student) && isRecord(s.teacher)) {
        const kept = Array.isArray(s.student.keptBlocks) ? ` (teacher blocks ${s.student.keptBlocks.join(', ')})` : '';
        parts.push(`student of ${String(s.student.blocks)} block(s)${kept}, ${String(s.student.parameters)} parameters; teacher ${String(s.teacher.blocks)} block(s), ${String(s.teacher.parameters)} parameters`);
        const pct = (v: unknown): string => (typeof v === 'number' ? `${(100 * v).toFixed(1)} %` : '–');
        if (s.agreementAfter !== undefined) parts.push(`teacher–student agreement ${pct(s.agreementBefore)} → ${pct(s.agreementAfter)}`);
      }
      parts.push(`${s.steps} step(s)${resumed}; loss ${fmt(s.firstLoss)} → ${fmt(s.finalLoss)}${held}; ${typeof s.tokensPerSecond === 'number' ? s.tokensPerSecond.toFixed(0) : '–'} tokens/s`);
      if (Array.isArray(s.warnings)) for (const w of s.warnings) parts.push(`WARNING: ${String(w)}`);
    } else if (method === 'int8-static') {
      parts.push(`${s.rangeMethod}${s.rangeMethod === 'percentile' ? ` ${s.percentile}` : ''} ranges, ${s.activationType} activations, ${count(s.skippedNodes) ?? 0} node(s) left in float`);
    }
    const calibration = isRecord(s.calibration) ? `; calibration ${s.calibration.samples} × ${s.calibration.length} tokens` : '';
    const quantized = count(s.quantized);
    const did = quantized !== null ? `; ${quantized} weight(s) quantized, ${skipped} left as they were` : '';
    return `${method}: ${parts.join('; ')}${calibration}${did}`;
  });
}

/** A finished compression experiment for people: the table, the generations, where the result is. */
export function comparisonText(e: ExperimentDetail): string {
  const took = e.durationMs !== null ? ` in ${formatDuration(e.durationMs / 1000)}` : '';
  const lines = [`Experiment ${e.id} · ${e.name} · ${e.status}${took}`, ...stepSummaries(e.details), '', comparisonTable(e.metrics)];
  const speed = speedSettingText(e.details);
  if (speed) lines.push(speed);
  const samples = samplesText(e.details);
  if (samples) lines.push(samples);
  const folder = outputFolder(e);
  if (folder) lines.push(`output folder: ${folder}`);
  for (const a of e.artefacts) if (a.kind !== 'folder') lines.push(`${a.kind}: ${a.path}`);
  lines.push('', `See it again with: whittle history show ${e.id}`);
  return `${lines.join('\n')}\n`;
}
