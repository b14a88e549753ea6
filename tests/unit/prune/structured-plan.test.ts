// The structured pruning plan without ONNX: which parts go, how many parameters that is, and every
// bad request refused with a typed error; the byte slicing and shape rewriting of the apply against
// plain references.
import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../../main/engine/errors.ts';
import { keptIndices, rewriteHeadValues, sliceColumns, sliceRows } from '../../../main/engine/prune/structured-apply.ts';
import { angularSum, columnSquares, rowSquares } from '../../../main/engine/prune/structured-importance.ts';
import { checkStructured, lowest, planStructured, type ShapeOf, type StructuredRequest } from '../../../main/engine/prune/structured-plan.ts';
import type { ArchitectureBlock, ArchitectureMap } from '../../../main/engine/rewrite/architecture.ts';

const HIDDEN = 16, HEADS = 4, KV = 2, D = 4, MLP = 10;

function block(i: number): ArchitectureBlock {
  const w = (n: string): string => `b${i}.${n}`;
  return {
    index: i,
    attention: {
      q: w('q'), k: w('k'), v: w('v'), o: w('o'), qkv: null, heads: HEADS, kvHeads: KV, headSize: D,
      biases: { q: null, k: w('k_bias'), v: null, o: null, qkv: null },
      nodes: { attention: null, headCounts: [], rotary: [], cache: { key: null, value: null, kv: null } },
    },
    mlp: { gate: w('gate'), up: w('up'), down: w('down'), activation: 'silu', intermediate: MLP, biases: { gate: null, up: null, down: null } },
    norms: [],
    weights: [w('norm'), w('q'), w('k'), w('k_bias'), w('v'), w('o'), w('gate'), w('up'), w('down')],
    residual: { input: `s${i}`, attentionJoin: `ja${i}`, mlpJoin: `jm${i}` },
  };
}

const map = (blocks = 3): ArchitectureMap => ({
  family: 'llama', blocks: Array.from({ length: blocks }, (_, i) => block(i)), embedding: 'emb', otherEmbeddings: [], lmHead: 'emb',
  tiedEmbedding: true, finalNorm: null, normPlacement: 'pre', issues: [],
});

const shapeOf: ShapeOf = (name) => {
  const part = name.split('.')[1];
  const shapes: Record<string, number[]> = {
    q: [HIDDEN, HEADS * D], k: [HIDDEN, KV * D], v: [HIDDEN, KV * D], o: [HEADS * D, HIDDEN], k_bias: [KV * D],
    gate: [HIDDEN, MLP], up: [HIDDEN, MLP], down: [MLP, HIDDEN], norm: [HIDDEN],
  };
  return shapes[part] ?? null;
};

const error = (f: () => unknown): WhittleError => {
  try { f(); } catch (e) { expect(e).toBeInstanceOf(WhittleError); return e as WhittleError; }
  throw new Error('expected an error');
};

describe('planStructured', () => {
  it('neurons: the lowest scores of every block, and their parameters', () => {
    const scores = [0, 1, 2].map((b) => Array.from({ length: MLP }, (_, j) => ((j * 7 + b) % MLP)));
    const plan = planStructured(map(), { target: 'neurons', ratio: 0.3 }, scores, shapeOf);
    expect(plan.cuts.map((c) => c.remove)).toEqual(scores.map((s) => lowest(s, 3)));
    for (const c of plan.cuts) for (const j of c.remove) expect(scores[c.block][j]).toBeLessThan(3);
    expect(plan.removedParameters).toBe(3 * 3 * (HIDDEN + HIDDEN + HIDDEN));
  });

  it('heads go by KV group: q and o for G heads, k, v and the k bias for one', () => {
    const plan = planStructured(map(), { target: 'heads', count: 2 }, [[5, 1], [0, 9], [3, 3]], shapeOf);
    expect(plan.groupSize).toBe(2);
    expect(plan.cuts.map((c) => c.remove)).toEqual([[1], [0], [0]]);
    const perGroup = 2 * D * HIDDEN + 2 * D * HIDDEN + 2 * D * HIDDEN + D;
    expect(plan.removedParameters).toBe(3 * perGroup);
    expect(plan.cuts.map((c) => c.params)).toEqual([perGroup, perGroup, perGroup]);
  });

  it('layers: the blocks with the lowest scores across the model, all their weights', () => {
    const plan = planStructured(map(4), { target: 'layers', count: 2 }, [[0.5], [0.1], [0.9], [0.2]], shapeOf);
    expect(plan.layers).toEqual([1, 3]);
    const perBlock = block(0).weights.reduce((a, w) => a + shapeOf(w)!.reduce((x, y) => x * y, 1), 0);
    expect(plan.removedParameters).toBe(2 * perBlock);
    expect(plan.layerParams).toEqual([perBlock, perBlock]);
  });

  it('keep patterns leave a block whole', () => {
    const plan = planStructured(map(), { target: 'neurons', count: 2, keep: ['^b1\\.'] }, [0, 1, 2].map(() => Array.from({ length: MLP }, (_, j) => j)), shapeOf);
    expect(plan.cuts.map((c) => c.block)).toEqual([0, 2]);
    const layers = planStructured(map(), { target: 'layers', count: 1, keep: ['^b0\\.'] }, [[0], [1], [2]], shapeOf);
    expect(layers.layers).toEqual([1]);
  });

  it('refuses what would remove everything or nothing, before any work', () => {
    const req = (r: StructuredRequest): string => error(() => checkStructured(map(), r)).message;
    expect(req({ target: 'heads', count: 4 })).toMatch(/all 4 heads/);
    expect(req({ target: 'heads', count: 1 })).toMatch(/multiple of 2/);
    expect(req({ target: 'heads', ratio: 0.9 })).toMatch(/all 2 KV groups/);
    expect(req({ target: 'layers', count: 3 })).toMatch(/all 3 blocks/);
    expect(req({ target: 'neurons', ratio: 1 })).toMatch(/between 0 and 1/);
    expect(req({ target: 'neurons', ratio: -0.1 })).toMatch(/between 0 and 1/);
    expect(req({ target: 'neurons', ratio: 0.01 })).toMatch(/removes none/);
    expect(req({ target: 'neurons', count: MLP })).toMatch(/all 10/);
    expect(req({ target: 'neurons' })).toMatch(/exactly one of ratio/);
  });

  it('names what the map could not recognise for an unknown architecture', () => {
    const m: ArchitectureMap = { ...map(0), family: 'unknown', issues: ['no attention found (neither MatMul → Softmax → MatMul nor a com.microsoft attention op), so no transformer blocks'] };
    const e = error(() => checkStructured(m, { target: 'layers', count: 1 }));
    expect(e.code).toBe('UNSUPPORTED_MODEL');
    expect(e.message).toMatch(/could not be mapped: no attention found/);
  });

  it('refuses fused QKV for heads', () => {
    const m = map();
    m.blocks[1].attention.qkv = 'b1.qkv';
    expect(error(() => checkStructured(m, { target: 'heads', count: 2 })).message).toMatch(/fused QKV/);
  });
});

describe('the apply\'s byte surgery against plain references', () => {
  const rows = 3, cols = 7;
  const m = Float32Array.from({ length: rows * cols }, (_, i) => i + 0.5);
  const bytes = new Uint8Array(m.buffer);

  it('columns and rows of a row-major matrix', () => {
    const keepCols = [0, 2, 3, 6];
    const c = new Float32Array(sliceColumns(bytes, rows, cols, 4, keepCols).buffer);
    const refC: number[] = [];
    for (let r = 0; r < rows; r++) for (const k of keepCols) refC.push(m[r * cols + k]);
    expect(Array.from(c)).toEqual(refC);
    const r2 = new Float32Array(sliceRows(bytes, cols, 4, [2, 0]).buffer);
    expect(Array.from(r2)).toEqual([...m.slice(2 * cols, 3 * cols), ...m.slice(0, cols)]);
  });

  it('kept indices of whole parts', () => {
    expect(keptIndices(3, 2, [1])).toEqual([0, 1, 4, 5]);
    expect(keptIndices(4, 1, [0, 3])).toEqual([1, 2]);
  });

  it('head counts in shape constants', () => {
    const c = { heads: 8, kvHeads: 4, headSize: 8, newHeads: 6, newKv: 3 };
    const hc = (on: 'q' | 'k' | 'o', op: string) => ({ node: 'n', op, on, constant: 'c', values: null });
    expect(rewriteHeadValues(hc('q', 'Reshape'), [0, 0, 8, 8], c)).toEqual([0, 0, 6, 8]);
    expect(rewriteHeadValues(hc('q', 'Reshape'), [0, 0, 8, 4, 2], c)).toEqual([0, 0, 6, 4, 2]);
    expect(rewriteHeadValues(hc('k', 'Reshape'), [0, 0, 4, 8], c)).toEqual([0, 0, 3, 8]);
    expect(rewriteHeadValues(hc('k', 'Reshape'), [0, 8, -1, 8], c)).toEqual([0, 6, -1, 8]);
    expect(rewriteHeadValues(hc('k', 'Concat'), [4, 2], c)).toEqual([3, 2]);
    expect(rewriteHeadValues(hc('o', 'Reshape'), [0, 0, 64], c)).toEqual([0, 0, 48]);
  });
});

describe('importance arithmetic against plain references', () => {
  it('column and row sums of squares', () => {
    const data = Float32Array.from([1, 2, 3, 4, 5, 6]);
    expect(Array.from(columnSquares({ rows: 2, cols: 3, data }))).toEqual([1 + 16, 4 + 25, 9 + 36]);
    expect(Array.from(rowSquares({ rows: 2, cols: 3, data }))).toEqual([1 + 4 + 9, 16 + 25 + 36]);
  });

  it('block influence: 1 − cos per token, summed', () => {
    const a = Float32Array.from([1, 0, 1, 1]);
    const b = Float32Array.from([1, 0, -1, -1]);
    const r = angularSum(a, b, 2);
    expect(r.tokens).toBe(2);
    expect(r.sum).toBeCloseTo(0 + 2, 12);
  });
});
