import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Metric } from '../../../preload/contract.ts';
import { bestUnderBudget, chartObjectives, dominates, paretoFront, withinBudget, type Objective, type ParetoPoint } from '../../../preload/pareto.ts';
import { WhittleError } from '../../../main/engine/errors.ts';
import { openHistory, type History } from '../../../main/history/index.ts';
import { paretoSet } from '../../../main/history/pareto.ts';
import { tempDir } from '../../helpers/fixtures.ts';

function point(id: number, over: Partial<ParetoPoint> = {}): ParetoPoint {
  return {
    id, name: `run ${id}`, kind: 'quantize', method: 'RTN 4-bit g32', created: '2026-01-01T00:00:00Z', original: false,
    bytes: null, bitsPerWeight: null, perplexity: null, kl: null, decodeTokensPerS: null, prefillMs: null, evaluation: null, depth: 1, ...over,
  };
}

const sizeAndPerplexity = chartObjectives('bytes', 'perplexity');
const ids = (points: readonly ParetoPoint[]) => points.map((p) => p.id);

describe('dominance and the front', () => {
  it('a point dominates another when no worse on every axis and better on one', () => {
    const a = point(1, { bytes: 100, perplexity: 5 });
    const b = point(2, { bytes: 200, perplexity: 5 });
    const c = point(3, { bytes: 50, perplexity: 9 });
    expect(dominates(a, b, sizeAndPerplexity)).toBe(true);
    expect(dominates(b, a, sizeAndPerplexity)).toBe(false);
    expect(dominates(a, c, sizeAndPerplexity)).toBe(false);
    expect(dominates(c, a, sizeAndPerplexity)).toBe(false);
    expect(dominates(a, point(4, { bytes: 100, perplexity: 5 }), sizeAndPerplexity)).toBe(false);
  });

  it('honours a higher-is-better objective', () => {
    const speed: Objective<ParetoPoint>[] = [{ value: (p) => p.bytes, direction: 'lower' }, { value: (p) => p.decodeTokensPerS, direction: 'higher' }];
    expect(dominates(point(1, { bytes: 100, decodeTokensPerS: 900 }), point(2, { bytes: 100, decodeTokensPerS: 800 }), speed)).toBe(true);
    expect(dominates(point(1, { bytes: 100, decodeTokensPerS: 700 }), point(2, { bytes: 100, decodeTokensPerS: 800 }), speed)).toBe(false);
  });

  it('keeps the points nobody beats on both axes, sorted by size', () => {
    const points = [
      point(1, { bytes: 1000, perplexity: 3.9 }), // the original: largest, best
      point(2, { bytes: 470, perplexity: 4.3 }),
      point(3, { bytes: 470, perplexity: 4.1 }), // beats 2
      point(4, { bytes: 300, perplexity: 6 }),
      point(5, { bytes: 1100, perplexity: 33 }), // beaten by everything
      point(6, { bytes: 600, perplexity: 4.2 }), // beaten by 3
    ];
    expect(ids(paretoFront(points, sizeAndPerplexity))).toEqual([4, 3, 1]);
  });

  it('keeps both of two equal points (neither dominates the other)', () => {
    const points = [point(1, { bytes: 470, perplexity: 4.1 }), point(2, { bytes: 470, perplexity: 4.1 }), point(3, { bytes: 500, perplexity: 4.1 })];
    expect(ids(paretoFront(points, sizeAndPerplexity)).sort()).toEqual([1, 2]);
  });

  it('leaves out points missing an axis: they neither stand on the front nor push others off it', () => {
    const points = [
      point(1, { bytes: 470, perplexity: 4.1 }),
      point(2, { bytes: 100, perplexity: null }),
      point(3, { bytes: null, perplexity: 1 }),
      point(4, { bytes: 470, perplexity: Number.NaN }),
      point(5, { bitsPerWeight: 4, perplexity: 5, bytes: 700 }),
    ];
    expect(ids(paretoFront(points, sizeAndPerplexity))).toEqual([1]);
    expect(ids(paretoFront(points, chartObjectives('bitsPerWeight', 'perplexity')))).toEqual([5]);
    expect(paretoFront([], sizeAndPerplexity)).toEqual([]);
  });
});

describe('the best under a budget', () => {
  const points = [
    point(1, { original: true, bytes: 1_090_000, perplexity: 3.9, kl: 0, decodeTokensPerS: 1200 }),
    point(2, { bytes: 473_000, perplexity: 4.3, kl: 0.08, decodeTokensPerS: 2000 }),
    point(3, { bytes: 473_000, perplexity: 4.1, kl: 0.06, decodeTokensPerS: null }),
    point(4, { bytes: 300_000, perplexity: 6.5, kl: 0.4, decodeTokensPerS: 2600 }),
    point(5, { bytes: 1_100_000, perplexity: 33, kl: 2.2, decodeTokensPerS: 1100 }),
  ];

  it('picks the lowest perplexity within a size limit', () => {
    expect(bestUnderBudget(points, { maxBytes: 500_000 }, 'perplexity')?.id).toBe(3);
    expect(bestUnderBudget(points, { maxBytes: 400_000 }, 'perplexity')?.id).toBe(4);
    expect(bestUnderBudget(points, {}, 'perplexity')?.id).toBe(1);
    expect(bestUnderBudget(points, { maxBytes: 100 }, 'perplexity')).toBeNull();
  });

  it('needs a limited figure measured: a run without speed cannot meet a speed limit', () => {
    expect(withinBudget(points[2], { minTokensPerS: 1 })).toBe(false);
    expect(withinBudget(points[2], { maxBytes: 500_000 })).toBe(true);
    expect(bestUnderBudget(points, { maxBytes: 500_000, minTokensPerS: 1500 }, 'perplexity')?.id).toBe(2);
  });

  it('optimises the goal asked for: smallest within a quality limit, fastest within a size limit', () => {
    // 2 and 3 are the same size: the tie goes to the one that measured a speed.
    expect(bestUnderBudget(points, { maxPerplexity: 4.5 }, 'bytes')?.id).toBe(2);
    expect(bestUnderBudget(points, { maxPerplexity: 7 }, 'bytes')?.id).toBe(4);
    expect(bestUnderBudget(points, { maxKl: 0.1 }, 'speed')?.id).toBe(2);
    expect(bestUnderBudget(points, { maxBitsPerWeight: 8 }, 'perplexity')).toBeNull();
  });

  it('breaks a tie on the goal by size, then speed, then the older run', () => {
    const tied = [point(7, { bytes: 500, perplexity: 4, decodeTokensPerS: 100 }), point(8, { bytes: 400, perplexity: 4, decodeTokensPerS: 50 }), point(9, { bytes: 400, perplexity: 4, decodeTokensPerS: 90 })];
    expect(bestUnderBudget(tied, {}, 'perplexity')?.id).toBe(9);
    expect(bestUnderBudget([point(11, { bytes: 1, perplexity: 4 }), point(10, { bytes: 1, perplexity: 4 })], {}, 'perplexity')?.id).toBe(10);
  });
});

describe('paretoSet (the points of one original model in a history)', () => {
  let scratch: ReturnType<typeof tempDir>;
  let h: History;
  beforeEach(() => {
    scratch = tempDir('whittle-pareto-');
    h = openHistory({ home: scratch.dir });
  });
  afterEach(() => {
    h.close();
    scratch.cleanup();
  });

  const ORIGINAL = 'a1'.repeat(32);
  const m = (name: string, value: number, subject: string): Metric => ({ name, value, unit: name === 'bytes_on_disk' ? 'bytes' : '', subject });

  /** A finished run; its output recorded as the job service does now (`recordOutput`), or only in its details as older runs have it. */
  function run(o: { sha: string; steps: unknown[]; metrics: Metric[]; output?: string; recorded?: boolean; status?: 'done' | 'failed'; window?: number }): number {
    const evaluation = { perplexity: { text: '/data/eval.txt', protocol: 'documents', window: o.window ?? 256, maxSamples: 40, minTokens: 16 } };
    const id = h.createExperiment({ name: `run`, kind: o.steps.length ? 'quantize' : 'evaluate', recipe: { version: 1, model: { path: '/m.onnx' }, steps: o.steps, evaluation }, modelPath: `/models/${o.sha.slice(0, 4)}.onnx`, modelSha256: o.sha, status: 'running' });
    h.addMetrics(id, o.metrics);
    h.setDetails(id, { settings: { evaluation }, ...(o.output && !o.recorded ? { result: { path: '/out/model.onnx', sha256: o.output, contentSha256: o.output } } : {}) });
    h.finish(id, o.status ?? 'done');
    if (o.output && o.recorded) h.recordOutput(id, o.output);
    return id;
  }
  const compressed = (ppl: number, bytes: number, kl: number): Metric[] => [
    m('perplexity', 3.9, 'original'), m('bytes_on_disk', 1_090_000, 'original'),
    m('perplexity', ppl, 'result'), m('bytes_on_disk', bytes, 'result'), m('kl_mean', kl, 'result'),
  ];

  it('gathers the runs of the original and of models made from it, with the original as a point', () => {
    const PRUNED = 'c3'.repeat(32);
    const rtn = run({ sha: ORIGINAL, steps: [{ type: 'quantize', method: 'rtn', bits: 4 }], metrics: compressed(4.3, 473_000, 0.08), output: 'b2'.repeat(32) });
    const prune = run({ sha: ORIGINAL, steps: [{ type: 'prune', method: 'magnitude', sparsity: 0.5 }], metrics: compressed(33, 1_100_000, 2.2), output: PRUNED, recorded: true, window: 128 });
    const child = run({ sha: PRUNED, steps: [{ type: 'quantize', method: 'rtn', bits: 8 }], metrics: compressed(34, 600_000, 0.01), output: 'd4'.repeat(32) });
    run({ sha: ORIGINAL, steps: [{ type: 'quantize', method: 'rtn', bits: 2 }], metrics: compressed(99, 300_000, 3), status: 'failed' });
    run({ sha: 'e5'.repeat(32), steps: [{ type: 'quantize', method: 'rtn', bits: 4 }], metrics: compressed(5, 400_000, 0.1) });

    const set = paretoSet(h, ORIGINAL);
    expect(set.model).toEqual({ sha256: ORIGINAL, path: '/models/a1a1.onnx' });
    const byId = set.points.filter((p) => !p.original).map((p) => [p.id, p.method, p.perplexity, p.bytes, p.kl, p.depth]);
    expect(byId).toEqual([
      [rtn, 'RTN 4-bit g32', 4.3, 473_000, 0.08, 1],
      [prune, 'Magnitude 50%', 33, 1_100_000, 2.2, 1],
      // Its KL is against the pruned model, not the original: left out.
      [child, 'RTN 8-bit g32', 34, 600_000, null, 2],
    ]);
    const original = set.points.find((p) => p.original)!;
    expect(original).toMatchObject({ perplexity: 3.9, bytes: 1_090_000, kl: 0, method: 'Original' });
    // The original's point comes from the RTN run (same id): two runs at 256 tokens, one at 128.
    expect(set.evaluations.map((e) => e.ids)).toEqual([[rtn, child], [prune]]);
    expect(set.evaluations[1].key).toContain('128 tokens');

    // From the derived model, the view climbs to the same original.
    expect(paretoSet(h, PRUNED).model.sha256).toBe(ORIGINAL);
    expect(paretoSet(h, PRUNED).points.map((p) => p.id)).toEqual(set.points.map((p) => p.id));
  });

  it('prefers an evaluation of the original alone for its point', () => {
    run({ sha: ORIGINAL, steps: [{ type: 'quantize', method: 'rtn', bits: 4 }], metrics: compressed(4.3, 473_000, 0.08) });
    const evaluated = run({ sha: ORIGINAL, steps: [], metrics: [m('perplexity', 3.95, 'model'), m('bytes_on_disk', 1_090_000, 'model')] });
    const original = paretoSet(h, ORIGINAL).points.find((p) => p.original)!;
    expect(original).toMatchObject({ id: evaluated, perplexity: 3.95 });
  });

  it('says so when no finished run used the model', () => {
    try {
      paretoSet(h, 'f6'.repeat(32));
      throw new Error('expected NOT_FOUND');
    } catch (e) {
      expect(e).toBeInstanceOf(WhittleError);
      expect((e as WhittleError).code).toBe('NOT_FOUND');
    }
  });
});
