/**
 * What a prune job's step reports, as the result page shows it: the sparsity asked and reached, every
 * pruned weight's and every block's sparsity (unstructured), or what was removed from each block and the
 * parameters before and after (structured). Read from the step's details, parsed by their schema.
 */
import { parseStepDetails, type StepDetails } from '../../preload/methods.ts';

export interface SparsityRow {
  name: string;
  /** The transformer block, or null outside the blocks (embedding, LM head). */
  block: number | null;
  params: number;
  zeros: number;
  /** zeros / params, 0..1. */
  sparsity: number;
  /** What was asked of it, 0..1. */
  target: number;
}

export interface UnstructuredReport {
  kind: 'unstructured';
  method: 'magnitude' | 'wanda' | 'sparsegpt';
  pattern: string | null;
  allocation: 'uniform' | 'owl';
  asked: number;
  achieved: number;
  prunedParams: number;
  zeros: number;
  weights: (SparsityRow & { shape: number[]; role: string })[];
  blocks: (SparsityRow & { outlierRatio: number | null })[];
  skipped: { name: string; reason: string }[];
  quantizeBits: number | null;
  notes: string[];
  warnings: string[];
}

export interface StructuredReport {
  kind: 'structured';
  target: 'heads' | 'neurons' | 'layers';
  importance: string;
  paramsBefore: number;
  paramsAfter: number;
  removals: { block: number | null; removed: number[]; kept: number; params: number }[];
  warnings: string[];
}

/** The first prune step's report in a job's details, or null when it has none. */
export function pruneReportOf(details: unknown): UnstructuredReport | StructuredReport | null {
  const step = parseStepDetails(details).find((s): s is Extract<StepDetails, { key: `prune:${string}` }> => s.key.startsWith('prune:'));
  if (!step) return null;
  if (step.key === 'prune:structured') {
    const s = step;
    return {
      kind: 'structured', target: s.target, importance: s.importance, paramsBefore: s.paramsBefore, paramsAfter: s.paramsAfter,
      removals: s.removals.map((r) => ({ block: r.block, removed: [...r.removed], kept: r.kept, params: r.params })), warnings: [...s.warnings],
    };
  }
  const s = step;
  return {
    kind: 'unstructured', method: s.method, pattern: s.pattern, allocation: s.allocation, asked: s.sparsity, achieved: s.achievedSparsity,
    prunedParams: s.prunedParams, zeros: s.zeros,
    weights: s.prunedWeights.map((w) => ({ name: w.name, block: w.block, params: w.params, zeros: w.zeros, sparsity: w.sparsity, target: w.target, shape: [...w.shape], role: w.role })),
    blocks: s.blocks.map((b) => ({ name: b.block === null ? 'outside the blocks' : `block ${b.block}`, block: b.block, params: b.params, zeros: b.zeros, sparsity: b.sparsity, target: b.target, outlierRatio: b.outlierRatio ?? null })),
    skipped: s.skipped.map((k) => ({ name: k.name, reason: k.reason })),
    quantizeBits: s.quantize ? s.quantize.bits : null,
    notes: [...s.notes], warnings: [...s.warnings],
  };
}

/** Bars for the per-block chart: asked and reached sparsity in percent, blocks in order (outside the blocks last). */
export function blockChartData(report: UnstructuredReport): { label: string; target: number; sparsity: number }[] {
  return [...report.blocks]
    .sort((a, b) => (a.block ?? Number.MAX_SAFE_INTEGER) - (b.block ?? Number.MAX_SAFE_INTEGER))
    .map((b) => ({ label: b.block === null ? 'other' : String(b.block), target: b.target * 100, sparsity: b.sparsity * 100 }));
}

/** "2 of 8 heads removed in each of 4 blocks" / "blocks 3, 5 removed" — what structured pruning did, in words. */
export function removalSummary(report: StructuredReport): string {
  const unit = report.target === 'heads' ? 'head' : report.target === 'neurons' ? 'neuron' : 'block';
  if (report.target === 'layers') {
    const blocks = report.removals.flatMap((r) => (r.block === null ? r.removed : [r.block]));
    return blocks.length === 0 ? 'No block removed.' : `Block${blocks.length === 1 ? '' : 's'} ${blocks.join(', ')} removed.`;
  }
  const per = report.removals.filter((r) => r.removed.length > 0);
  if (per.length === 0) return `No ${unit} removed.`;
  const counts = new Set(per.map((r) => `${r.removed.length}/${r.removed.length + r.kept}`));
  if (counts.size === 1) {
    const [removed, total] = [...counts][0].split('/');
    return `${removed} of ${total} ${unit}s removed in each of ${per.length} block${per.length === 1 ? '' : 's'}.`;
  }
  const removed = per.reduce((n, r) => n + r.removed.length, 0);
  return `${removed} ${unit}s removed across ${per.length} blocks.`;
}
