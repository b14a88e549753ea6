/**
 * Fake quantization's straight-through gradient: QuantizeLinear → DequantizeLinear per tensor, per axis
 * and blocked (opset 21, a 4-bit grid in uint8 behind a Clip), with the scale given or computed from the weight in the graph; the
 * backward runs in onnxruntime-node and is compared with the rule written out in plain TypeScript:
 * ∂x = ∂y where x/s + zp rounds into the grid, 0 where it saturates. A fake-quantized weight inside a
 * MatMul gets the chain rule through it (∂a = g·ŵᵀ exactly, ∂w = mask ⊙ aᵀ·g).
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { differentiate } from '../../../main/engine/train/autodiff/differentiate.ts';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { intAttr, makeNode } from '../../../main/engine/onnx/graph.ts';
import type { NodeProto, TensorProto } from '../../../main/engine/onnx/proto-types.ts';
import { makeTensor } from '../../../main/engine/onnx/tensor-data.ts';
import type { MetaMap, TensorMeta } from '../../../main/engine/train/autodiff/types.ts';
import { valueInfo } from '../quantize/build-model.ts';
import { graphOf, modelOf, rng, session } from './grad-check.ts';

interface Input { name: string; dims: number[]; values: Float32Array }

/** Runs forward + backward of `nodes` seeded at `y` with R; returns y, ŵ-like extra outputs and the gradients. */
async function backward(nodes: NodeProto[], inputs: Input[], initializers: TensorProto[], meta: MetaMap, y: string, opset: number, extra: string[] = []): Promise<{ y: Float32Array; r: Float32Array; grads: Map<string, Float32Array>; extra: Map<string, Float32Array>; ops: string[] }> {
  const yMeta = meta.get(y);
  if (!yMeta) throw new Error('no meta for y');
  const random = rng(5);
  const r = Float32Array.from({ length: yMeta.shape.reduce((a, b) => a * b, 1) }, () => 2 * random() - 1);
  meta.set('seed', yMeta);
  const graph = graphOf(nodes, initializers);
  const res = differentiate({ graph, meta, wrt: inputs.map((i) => i.name), seeds: [{ tensor: y, grad: 'seed' }], opset });
  const full = graphOf([...graph.node, ...res.nodes], [...graph.initializer, ...res.initializers]);
  full.input = [...inputs.map((i) => valueInfo(i.name, DataType.float32, i.dims)), valueInfo('seed', DataType.float32, yMeta.shape)];
  const gradNames = inputs.map((i) => res.grads.get(i.name) ?? '');
  full.output = [valueInfo(y, DataType.float32, yMeta.shape), ...extra.map((e) => valueInfo(e, DataType.float32, meta.get(e)?.shape ?? [])), ...inputs.map((i, k) => valueInfo(gradNames[k], DataType.float32, i.dims))];
  const s = await session(modelOf(full, opset));
  const feeds: Record<string, ort.Tensor> = { seed: new ort.Tensor('float32', r, yMeta.shape) };
  for (const i of inputs) feeds[i.name] = new ort.Tensor('float32', i.values, i.dims);
  const out = await s.run(feeds);
  await s.release();
  return {
    y: out[y].data as Float32Array,
    r,
    grads: new Map(inputs.map((i, k) => [i.name, out[gradNames[k]].data as Float32Array])),
    extra: new Map(extra.map((e) => [e, out[e].data as Float32Array])),
    ops: res.nodes.map((n) => n.opType ?? ''),
  };
}

const qdq = (x: string, s: string, zp: string | null, attrs: ReturnType<typeof intAttr>[] = []): NodeProto[] => [
  makeNode({ opType: 'QuantizeLinear', inputs: zp ? [x, s, zp] : [x, s], outputs: ['q'], name: 'quant', attributes: attrs }),
  makeNode({ opType: 'DequantizeLinear', inputs: zp ? ['q', s, zp] : ['q', s], outputs: ['y'], name: 'dequant', attributes: attrs }),
];

/** ∂x of the straight-through rule written out: R where x/s + zp ∈ [qmin − ½, qmax + ½]. */
function expectedGrad(x: Float32Array, r: Float32Array, scaleAt: (i: number) => number, zpAt: (i: number) => number, range: [number, number]): Float32Array {
  return x.map((v, i) => {
    const u = v / scaleAt(i) + zpAt(i);
    return u >= range[0] - 0.5 && u <= range[1] + 0.5 ? r[i] : 0;
  });
}

const values = (n: number, spread: number, seed: number): Float32Array => { const random = rng(seed); return Float32Array.from({ length: n }, () => (2 * random() - 1) * spread); };

describe('fake quantization: straight-through gradients', () => {
  it('per tensor, uint8: the gradient passes inside the grid and is zero where values saturate', async () => {
    const x = values(24, 10, 1); // scale 0.05, zp 128: the grid covers [−6.4, 6.35]
    const meta: MetaMap = new Map([['x', { dtype: DataType.float32, shape: [4, 6] }], ['s', { dtype: DataType.float32, shape: [] }], ['zp', { dtype: DataType.uint8, shape: [] }], ['q', { dtype: DataType.uint8, shape: [4, 6] }], ['y', { dtype: DataType.float32, shape: [4, 6] }]]);
    const got = await backward(qdq('x', 's', 'zp'), [{ name: 'x', dims: [4, 6], values: x }], [makeTensor('s', DataType.float32, [], Float32Array.of(0.05)), makeTensor('zp', DataType.uint8, [], Uint8Array.of(128))], meta, 'y', 18);
    const want = expectedGrad(x, got.r, () => 0.05, () => 128, [0, 255]);
    expect(Array.from(got.grads.get('x') ?? [])).toEqual(Array.from(want));
    const zeros = want.filter((v) => v === 0).length;
    expect(zeros).toBeGreaterThan(3);
    expect(zeros).toBeLessThan(20);
  });

  it('per axis, int8 along axis 1 with a zero point per channel', async () => {
    const x = values(12, 2, 2);
    const s = [0.004, 0.01, 0.02], zp = [-20, 0, 60];
    const meta: MetaMap = new Map([['x', { dtype: DataType.float32, shape: [4, 3] }], ['s', { dtype: DataType.float32, shape: [3] }], ['zp', { dtype: DataType.int8, shape: [3] }], ['q', { dtype: DataType.int8, shape: [4, 3] }], ['y', { dtype: DataType.float32, shape: [4, 3] }]]);
    const got = await backward(qdq('x', 's', 'zp', [intAttr('axis', 1)]), [{ name: 'x', dims: [4, 3], values: x }], [makeTensor('s', DataType.float32, [3], Float32Array.from(s)), makeTensor('zp', DataType.int8, [3], Int8Array.from(zp))], meta, 'y', 18);
    const want = expectedGrad(x, got.r, (i) => s[i % 3], (i) => zp[i % 3], [-128, 127]);
    expect(Array.from(got.grads.get('x') ?? [])).toEqual(Array.from(want));
    expect(want.some((v) => v === 0)).toBe(true);
    expect(want.some((v) => v !== 0)).toBe(true);
  });

  it('blocked along K (opset 21, block 2, a partial last block, negative scales), a 4-bit grid held in uint8 by a Clip to [0, 15]', async () => {
    const K = 5, N = 3, bs = 2, kb = 3;
    const x = values(K * N, 1, 3);
    const s = Float32Array.from([-0.05, 0.1, 0.08, 0.2, -0.15, 0.05, 0.1, 0.1, -0.3]);
    const zp = [8, 8, 3, 8, 10, 8, 0, 8, 15];
    const u8 = (shape: number[]): TensorMeta => ({ dtype: DataType.uint8, shape });
    const meta: MetaMap = new Map([['x', { dtype: DataType.float32, shape: [K, N] }], ['s', { dtype: DataType.float32, shape: [kb, N] }], ['zp', u8([kb, N])], ['q8', u8([K, N])], ['lo', u8([])], ['hi', u8([])], ['q', u8([K, N])], ['y', { dtype: DataType.float32, shape: [K, N] }]]);
    const attrs = [intAttr('axis', 0), intAttr('block_size', bs)];
    const nodes = [
      makeNode({ opType: 'QuantizeLinear', inputs: ['x', 's', 'zp'], outputs: ['q8'], name: 'quant', attributes: attrs }),
      makeNode({ opType: 'Clip', inputs: ['q8', 'lo', 'hi'], outputs: ['q'], name: 'clip' }),
      makeNode({ opType: 'DequantizeLinear', inputs: ['q', 's', 'zp'], outputs: ['y'], name: 'dequant', attributes: attrs }),
    ];
    const inits = [makeTensor('s', DataType.float32, [kb, N], s), makeTensor('zp', DataType.uint8, [kb, N], Uint8Array.from(zp)), makeTensor('lo', DataType.uint8, [], Uint8Array.of(0)), makeTensor('hi', DataType.uint8, [], Uint8Array.of(15))];
    const got = await backward(nodes, [{ name: 'x', dims: [K, N], values: x }], inits, meta, 'y', 21);
    const at = (i: number): number => Math.floor(Math.floor(i / N) / bs) * N + (i % N);
    const want = expectedGrad(x, got.r, (i) => s[at(i)], (i) => zp[at(i)], [0, 15]);
    expect(Array.from(got.grads.get('x') ?? [])).toEqual(Array.from(want));
    expect(want.filter((v) => v === 0).length).toBeGreaterThan(0);
    expect(want.filter((v) => v !== 0).length).toBeGreaterThan(0);
    // y is the 4-bit grid's value: (clamp(round(x/s) + zp, 0, 15) − zp)·s
    const y = x.map((v, i) => { const q = Math.min(15, Math.max(0, Math.round(v / s[at(i)]) + zp[at(i)])); return (q - zp[at(i)]) * s[at(i)]; });
    for (let i = 0; i < y.length; i++) expect(got.y[i]).toBeCloseTo(y[i], 6);
  });

  it('a scale computed from the weight in the graph gets no gradient (no rule needed for its ops); through a MatMul the chain rule holds', async () => {
    // ŵ = DQ(Q(w, s(w))) with s(w) = max|w| / 127 per tensor (int8, no zero point); y = a·ŵ.
    const M = 3, K = 4, N = 5;
    const a = values(M * K, 1, 4), w = values(K * N, 0.5, 5);
    const f32 = (shape: number[]): TensorMeta => ({ dtype: DataType.float32, shape });
    const nodes = [
      makeNode({ opType: 'Abs', inputs: ['w'], outputs: ['absw'], name: 'abs' }),
      makeNode({ opType: 'ReduceMax', inputs: ['absw'], outputs: ['maxw'], name: 'max', attributes: [intAttr('keepdims', 0)] }),
      makeNode({ opType: 'Div', inputs: ['maxw', 'c127'], outputs: ['s'], name: 'scale' }),
      makeNode({ opType: 'QuantizeLinear', inputs: ['w', 's'], outputs: ['q'], name: 'quant', attributes: [intAttr('output_dtype', DataType.int8)] }),
      makeNode({ opType: 'DequantizeLinear', inputs: ['q', 's'], outputs: ['what'], name: 'dequant' }),
      makeNode({ opType: 'MatMul', inputs: ['a', 'what'], outputs: ['y'], name: 'mm' }),
    ];
    const meta: MetaMap = new Map([['a', f32([M, K])], ['w', f32([K, N])], ['absw', f32([K, N])], ['maxw', f32([])], ['c127', f32([])], ['s', f32([])], ['q', { dtype: DataType.int8, shape: [K, N] }], ['what', f32([K, N])], ['y', f32([M, N])]]);
    const got = await backward(nodes, [{ name: 'a', dims: [M, K], values: a }, { name: 'w', dims: [K, N], values: w }], [makeTensor('c127', DataType.float32, [], Float32Array.of(127))], meta, 'y', 21, ['what']);
    expect(got.ops).not.toContain('ReduceMax');
    const what = got.extra.get('what') ?? new Float32Array(0);
    // ŵ is on the int8 grid of max|w|/127 and differs from w.
    const step = Math.max(...w.map(Math.abs)) / 127;
    expect(what.every((v) => Math.abs(v / step - Math.round(v / step)) < 1e-3)).toBe(true);
    expect(what.some((v, i) => v !== w[i])).toBe(true);
    // ∂a = R·ŵᵀ, ∂w = aᵀ·R (every value lies inside the grid).
    const ga = got.grads.get('a') ?? new Float32Array(0), gw = got.grads.get('w') ?? new Float32Array(0);
    for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) {
      let v = 0;
      for (let n = 0; n < N; n++) v += got.r[i * N + n] * what[k * N + n];
      expect(ga[i * K + k]).toBeCloseTo(v, 5);
    }
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) {
      let v = 0;
      for (let i = 0; i < M; i++) v += a[i * K + k] * got.r[i * N + n];
      expect(gw[k * N + n]).toBeCloseTo(v, 5);
    }
  });
});
