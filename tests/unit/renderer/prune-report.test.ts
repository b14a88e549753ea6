import { describe, expect, it } from 'vitest';
import type { Metric } from '../../../preload/contract.ts';
import { blockChartData, pruneReportOf, removalSummary } from '../../../renderer/lib/prune-report.ts';
import { chartData, compareRows } from '../../../renderer/lib/quantize-compare.ts';
import { href, parseHash, wizardHref } from '../../../renderer/lib/route.ts';

const folder = { type: 'prune', input: '/m/model.onnx', output: '/out/model.onnx', outputDir: '/out', outputBytes: 10, modelBytes: 9 };
const weight = (name: string, block: number | null, params: number, zeros: number, target: number) => ({
  name, shape: [4, params / 4], block, role: 'mlp', params, zeros, sparsity: zeros / params, target,
});

const unstructured = {
  steps: [{
    ...folder, method: 'wanda', sparsity: 0.5, pattern: null, scope: 'layer', allocation: 'owl', achievedSparsity: 0.5, prunedParams: 96, zeros: 48, pruned: 3,
    prunedWeights: [weight('model.layers.1.mlp.up.weight', 1, 32, 20, 0.625), weight('model.layers.0.mlp.up.weight', 0, 32, 12, 0.375), weight('model.layers.0.mlp.down.weight', 0, 32, 16, 0.5)],
    blocks: [
      { block: 1, params: 32, zeros: 20, sparsity: 0.625, target: 0.625, outlierRatio: 0.01 },
      { block: null, params: 0, zeros: 0, sparsity: 0, target: 0 },
      { block: 0, params: 64, zeros: 28, sparsity: 0.4375, target: 0.4375, outlierRatio: 0.05 },
    ],
    skipped: [{ name: 'lm_head.weight', reason: 'the LM head is kept unless asked' }],
    calibration: { text: '/c.txt', samples: 8, length: 64, seed: 0 }, sequential: true, quantize: null,
    notes: ['Unstructured zeros do not shrink the file.'], warnings: [],
  }],
};

const structured = {
  steps: [{
    ...folder, method: 'structured', target: 'heads', ratio: null, count: 2, importance: 'magnitude', paramsBefore: 1000, paramsAfter: 800,
    removals: [{ block: 0, removed: [1, 3], kept: 6, params: 100 }, { block: 1, removed: [0, 2], kept: 6, params: 100 }], warnings: [],
  }],
};

describe('the prune step report', () => {
  it('reads an unstructured step: asked and reached sparsity, weights, blocks, what stayed dense', () => {
    const r = pruneReportOf(unstructured);
    expect(r?.kind).toBe('unstructured');
    if (r?.kind !== 'unstructured') return;
    expect(r).toMatchObject({ method: 'wanda', allocation: 'owl', asked: 0.5, achieved: 0.5, prunedParams: 96, zeros: 48, quantizeBits: null });
    expect(r.weights.map((w) => w.sparsity)).toEqual([0.625, 0.375, 0.5]);
    expect(r.skipped).toEqual([{ name: 'lm_head.weight', reason: 'the LM head is kept unless asked' }]);
    expect(r.notes).toHaveLength(1);
    // Blocks in order, "outside the blocks" last, in percent.
    expect(blockChartData(r)).toEqual([
      { label: '0', target: 43.75, sparsity: 43.75 }, { label: '1', target: 62.5, sparsity: 62.5 }, { label: 'other', target: 0, sparsity: 0 },
    ]);
  });

  it('reads a structured step and says what was removed', () => {
    const r = pruneReportOf(structured);
    expect(r?.kind).toBe('structured');
    if (r?.kind !== 'structured') return;
    expect(r.paramsBefore - r.paramsAfter).toBe(200);
    expect(removalSummary(r)).toBe('2 of 8 heads removed in each of 2 blocks.');
    expect(removalSummary({ ...r, target: 'layers', removals: [{ block: 3, removed: [], kept: 0, params: 50 }, { block: 5, removed: [], kept: 0, params: 50 }] })).toBe('Blocks 3, 5 removed.');
    expect(removalSummary({ ...r, removals: [] })).toBe('No head removed.');
  });

  it('is null for a job without a prune step, or with a prune step that does not match its schema', () => {
    expect(pruneReportOf({ steps: [] })).toBeNull();
    expect(pruneReportOf(null)).toBeNull();
    expect(pruneReportOf({ steps: [{ ...unstructured.steps[0], prunedWeights: 'nope' }] })).toBeNull();
  });
});

describe('size compressed in the comparison', () => {
  const m = (name: string, value: number, subject: string): Metric => ({ name, value, subject, unit: 'bytes' } as Metric);
  it('is listed, judged and charted when measured, and left out when not', () => {
    const metrics = [m('bytes_on_disk', 1_000_000, 'original'), m('bytes_on_disk', 1_000_000, 'result'), m('bytes_compressed', 900_000, 'original'), m('bytes_compressed', 600_000, 'result')];
    const row = compareRows(metrics).find((r) => r.metric === 'bytes_compressed')!;
    expect(row.label).toBe('Size compressed');
    expect(row.verdict).toBe('better');
    expect(row.changePercent).toBeCloseTo(-33.33, 2);
    expect(compareRows(metrics).find((r) => r.metric === 'bytes_on_disk')!.verdict).toBe('same');
    expect(chartData(metrics).size.map((s) => s.label)).toEqual(['Size on disk (MiB)', 'Compressed (MiB)']);
    expect(compareRows(metrics.slice(0, 2)).some((r) => r.metric === 'bytes_compressed')).toBe(false);
  });
});

describe('the prune route', () => {
  it('round-trips the path, the job and the experiment', () => {
    const h = href.prune('/m/a b.onnx', { jobId: 'j1', experimentId: 7 });
    expect(parseHash(h)).toEqual({ name: 'prune', path: '/m/a b.onnx', jobId: 'j1', experimentId: 7 });
    expect(parseHash(href.prune(''))).toEqual({ name: 'prune', path: '', jobId: null, experimentId: null });
  });

  it('opens history entries of kind prune and quantize in their wizards, others nowhere', () => {
    expect(wizardHref('prune', '/m.onnx', { experimentId: 3 })).toBe(href.prune('/m.onnx', { experimentId: 3 }));
    expect(wizardHref('quantize', '/m.onnx', { experimentId: 3 })).toBe(href.quantize('/m.onnx', { experimentId: 3 }));
    expect(wizardHref('evaluate', '/m.onnx')).toBeNull();
  });
});
