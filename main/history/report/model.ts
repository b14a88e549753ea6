/**
 * What a report shows, independent of its format: one experiment (its result beside the original it was
 * made from), or a comparison of 2–8 (compare.ts) against a baseline run. html.ts, markdown.ts and
 * csv.ts render it.
 */
import type { ExperimentDetail, LineageTree } from '../../../preload/contract.ts';
import type { ComparabilityNote, Comparison, GenerationRow, RecipeDifference, Verdict, WeightSeries } from '../../../preload/comparison.ts';
import { judge, metricDirection, type MetricDirection } from '../../../preload/metric-direction.ts';
import { formatBytes } from '../../../preload/units.ts';
import { metricLabel } from '../../cli/format.ts';
import { compareExperiment, compareExperiments, generationsOf, seriesOf } from '../compare.ts';

/** A column of the metrics table: a run, or the original model of a single run. */
export interface ReportColumn { label: string; id: number | null }

export interface ReportMetric {
  name: string;
  label: string;
  unit: string;
  direction: MetricDirection | null;
  /** One per column. */
  values: (number | null)[];
  /** Change against the first column, in percent of it (null for the first column, or without both values). */
  percent: (number | null)[];
  verdicts: Verdict[];
  /** False where the change is not like for like (measured on other text, protocol or settings). */
  comparable: boolean[];
}

export interface ReportData {
  title: string;
  /** ISO time the report was made, and the Whittle version that made it. */
  generated: string;
  version: string;
  experiments: ExperimentDetail[];
  /** A short method label per experiment ('GPTQ 4-bit g32'). */
  methods: string[];
  columns: ReportColumn[];
  metrics: ReportMetric[];
  notes: ComparabilityNote[];
  recipeDiff: RecipeDifference[];
  generations: GenerationRow[];
  series: WeightSeries[];
  /** Single-experiment reports: the tree the experiment belongs to. */
  lineage: LineageTree | null;
}

export interface ReportOptions {
  generated?: string;
  version?: string;
  lineage?: LineageTree | null;
  /** The run the others are measured against (default the first). */
  baseline?: number;
}

function single(d: ExperimentDetail): Pick<ReportData, 'columns' | 'metrics' | 'methods'> {
  const e = compareExperiment(d);
  const hasOriginal = Object.keys(e.original).length > 0;
  const columns: ReportColumn[] = hasOriginal
    ? [{ label: 'original', id: null }, { label: e.subject === 'result' ? 'result' : 'model', id: d.id }]
    : [{ label: e.subject === 'result' ? 'result' : 'model', id: d.id }];
  const names = [...new Set([...Object.keys(e.original), ...Object.keys(e.metrics)])];
  const metrics = names.map((name): ReportMetric => {
    const unit = e.metrics[name]?.unit ?? e.original[name]?.unit ?? '';
    const direction = metricDirection(name, unit);
    const values = hasOriginal ? [e.original[name]?.value ?? null, e.metrics[name]?.value ?? null] : [e.metrics[name]?.value ?? null];
    const ref = values[0];
    return {
      name, label: metricLabel(name), unit, direction, values,
      percent: values.map((v, i) => (i === 0 || v === null || ref === null || ref === 0 ? null : (100 * (v - ref)) / Math.abs(ref))),
      verdicts: values.map((v, i) => (i === 0 ? null : judge(direction, v, ref))),
      comparable: values.map(() => true),
    };
  });
  return { columns, metrics, methods: [e.method] };
}

function compared(c: Comparison): Pick<ReportData, 'columns' | 'metrics' | 'methods'> {
  // The baseline goes first: every change is read against the first column.
  const order = [c.ids.indexOf(c.baseline), ...c.ids.map((_, i) => i).filter((i) => c.ids[i] !== c.baseline)];
  const columns = order.map((i) => ({ label: `#${c.experiments[i].id} ${c.experiments[i].name}`, id: c.experiments[i].id }));
  const metrics = c.metrics.map((m): ReportMetric => ({
    name: m.name, label: metricLabel(m.name), unit: m.unit, direction: m.direction,
    values: order.map((i) => m.cells[i].value),
    percent: order.map((i, k) => (k === 0 ? null : m.cells[i].percent)),
    verdicts: order.map((i, k) => (k === 0 ? null : m.cells[i].verdict)),
    comparable: order.map((i) => m.cells[i].comparable),
  }));
  return { columns, metrics, methods: c.experiments.map((e) => e.method) };
}

/** The report of `details`: one experiment, or a comparison of 2–8 in the order given. */
export function reportData(details: readonly ExperimentDetail[], options: ReportOptions = {}): ReportData {
  const base = {
    generated: options.generated ?? new Date().toISOString(),
    version: options.version ?? 'unknown',
    experiments: [...details],
  };
  if (details.length === 1) {
    const d = details[0];
    return {
      ...base, ...single(d), title: `${d.name} · experiment ${d.id}`,
      // Its own generations and per-weight figures (sensitivity, GPTQ loss, sparsity), as in a comparison.
      notes: [], recipeDiff: [], generations: generationsOf([d]), series: seriesOf([d]), lineage: options.lineage ?? null,
    };
  }
  const c = compareExperiments(details, options.baseline);
  return {
    ...base, ...compared(c), title: `Comparison of experiments ${c.ids.join(', ')}`,
    notes: c.notes, recipeDiff: c.recipeDiff, generations: c.generations, series: c.series, lineage: null,
  };
}

/** A value as people read it: bytes in binary units (preload/units.ts), others with 4 significant digits. */
export function formatValue(value: number | null, unit: string): string {
  if (value === null || !Number.isFinite(value)) return '—';
  if (unit === 'bytes') return formatBytes(value);
  const text = Number.isInteger(value) && Math.abs(value) < 1e15 ? value.toLocaleString('en-US') : Number(value.toPrecision(4)).toString();
  return unit && unit !== 'bits' && unit !== 'tokens' ? `${text} ${unit}` : text;
}

export function formatPercent(p: number | null): string {
  if (p === null || !Number.isFinite(p)) return '';
  return `${p > 0 ? '+' : p < 0 ? '−' : '±'}${Math.abs(p).toFixed(Math.abs(p) < 10 ? 1 : 0)} %`;
}
