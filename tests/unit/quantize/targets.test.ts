import { describe, expect, it } from 'vitest';
import { planTargets, EMBEDDING_REASON } from '../../../main/engine/quantize/targets.ts';
import { buildModel, DataType, floatAttr, intAttr, makeNode, makeTensor, valueInfo } from './build-model.ts';

const f32 = (name: string, dims: number[]) => makeTensor(name, DataType.float32, dims, new Float32Array(dims.reduce((a, b) => a * b, 1)));

/** X[?, 64] → a chain of nodes over several weights, covering every skip rule once. */
function zoo() {
  return buildModel({
    nodes: [
      makeNode({ opType: 'Gather', inputs: ['embed', 'ids'], outputs: ['X'], name: 'embed_gather' }),
      makeNode({ opType: 'MatMul', inputs: ['X', 'w_ok'], outputs: ['a'], name: 'mm_ok' }),
      makeNode({ opType: 'MatMul', inputs: ['a', 'w_shared'], outputs: ['b1'], name: 'mm_s1' }),
      makeNode({ opType: 'MatMul', inputs: ['a', 'w_shared'], outputs: ['b2'], name: 'mm_s2' }),
      makeNode({ opType: 'Transpose', inputs: ['embed'], outputs: ['embed_t'], name: 'tie', attributes: [] }),
      makeNode({ opType: 'MatMul', inputs: ['b1', 'embed_t'], outputs: ['logits'], name: 'lm' }),
      makeNode({ opType: 'MatMul', inputs: ['a', 'lm_head.weight'], outputs: ['c'], name: 'mm_keep' }),
      makeNode({ opType: 'MatMul', inputs: ['a', 'w_int8'], outputs: ['d'], name: 'mm_int' }),
      makeNode({ opType: 'MatMul', inputs: ['a', 'w_3d'], outputs: ['e'], name: 'mm_3d' }),
      makeNode({ opType: 'MatMul', inputs: ['a', 'w_small'], outputs: ['f'], name: 'mm_small' }),
      makeNode({ opType: 'Gemm', inputs: ['X', 'g_t', 'g_bias'], outputs: ['g'], name: 'gemm_t', attributes: [intAttr('transB', 1), floatAttr('alpha', 0.5)] }),
      makeNode({ opType: 'Gemm', inputs: ['X', 'g_ta'], outputs: ['h'], name: 'gemm_ta', attributes: [intAttr('transA', 1)] }),
      makeNode({ opType: 'MatMul', inputs: ['a', 'b2'], outputs: ['act'], name: 'act_x_act' }),
    ],
    initializers: [
      f32('embed', [100, 64]), f32('w_ok', [64, 64]), f32('w_shared', [64, 64]), f32('lm_head.weight', [64, 100]),
      makeTensor('w_int8', DataType.int8, [64, 32], new Int8Array(64 * 32)), f32('w_3d', [2, 64, 64]), f32('w_small', [16, 8]),
      f32('g_t', [48, 64]), f32('g_bias', [48]), f32('g_ta', [64, 64]),
    ],
    inputs: [valueInfo('ids', DataType.int64, ['batch', 'seq'])],
    outputs: [valueInfo('logits', DataType.float32, ['batch', 'seq', 100])],
  });
}

describe('planTargets', () => {
  it('chooses plain MatMul and Gemm(transB) weights and gives a reason for every other weight', () => {
    const plan = planTargets(zoo().graph!, { blockSize: 32, keep: [/lm_head/] });
    expect(plan.targets.map((t) => t.weight)).toEqual(['w_ok', 'g_t']);
    const gemm = plan.targets[1];
    expect(gemm).toMatchObject({ op: 'Gemm', k: 64, n: 48, transposed: true, alpha: 0.5, shape: [48, 64] });
    expect(plan.targets[0]).toMatchObject({ op: 'MatMul', k: 64, n: 64, transposed: false, alpha: 1, dtype: 'float32' });

    const reasons = Object.fromEntries(plan.skipped.map((s) => [s.name, s.reason]));
    expect(reasons.embed).toMatch(EMBEDDING_REASON);
    expect(reasons.embed).toMatch(/shared by 2 nodes \(Gather, Transpose\)/);
    expect(reasons.w_shared).toBe('shared by 2 nodes (MatMul, MatMul); shared weights are kept');
    expect(reasons['lm_head.weight']).toMatch(/keep pattern \(\/lm_head\/\)/);
    expect(reasons.w_int8).toMatch(/int8 is not float/);
    expect(reasons.w_3d).toMatch(/3-D weight/);
    expect(reasons.w_small).toBe('K = 16 is smaller than one block (32)');
    expect(reasons.g_ta).toMatch(/transA = 1/);
    expect(Object.keys(reasons)).not.toContain('b2');
  });

  it('reports a tied embedding behind a Transpose when the Gather is not there', () => {
    const m = buildModel({
      nodes: [
        makeNode({ opType: 'Transpose', inputs: ['E'], outputs: ['Et'] }),
        makeNode({ opType: 'MatMul', inputs: ['X', 'Et'], outputs: ['Y'] }),
      ],
      initializers: [f32('E', [128, 64])],
      inputs: [valueInfo('X', DataType.float32, [1, 64])],
      outputs: [valueInfo('Y', DataType.float32, [1, 128])],
    });
    const plan = planTargets(m.graph!, { blockSize: 32, keep: [] });
    expect(plan.targets).toEqual([]);
    expect(plan.skipped).toEqual([{ name: 'E', op: 'MatMul', shape: [128, 64], dtype: 'float32', reason: 'weight behind a Transpose (tied embeddings)' }]);
  });

  it('counts MatMulNBits nodes as already quantized', () => {
    const m = buildModel({
      nodes: [makeNode({ opType: 'MatMulNBits', domain: 'com.microsoft', inputs: ['X', 'q', 's'], outputs: ['Y'] })],
      initializers: [makeTensor('q', DataType.uint8, [8, 2, 16], new Uint8Array(256)), f32('s', [8, 2])],
      inputs: [valueInfo('X', DataType.float32, [1, 64])],
      outputs: [valueInfo('Y', DataType.float32, [1, 8])],
    });
    const plan = planTargets(m.graph!, { blockSize: 32, keep: [] });
    expect(plan).toEqual({ targets: [], skipped: [], alreadyQuantized: 1 });
  });
});
