/**
 * onnxruntime's MatMulNBits on Whittle's output equals a plain MatMul on the dequantized weight.
 *
 * Tolerances (relative to max |Y|):
 *   accuracy_level 0 / 1 (fp32 compute): 1e-5 — the kernel dequantizes and runs an fp32 GEMM;
 *   accuracy_level 4 (activations quantized to int8 per block at run time): 2e-2.
 * The QDQ output is compared with the MatMulNBits output under `qdq_matmulnbits_accuracy_level = 0`
 * (onnxruntime fuses DequantizeLinear + MatMul into MatMulNBits): 1e-5.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quietContext } from '../../main/engine/job-context.ts';
import { attrInt, initializerMap } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { readTensorBytes } from '../../main/engine/onnx/tensor-data.ts';
import { dequantizeBlockwise } from '../../main/engine/native/index.ts';
import { transpose2d, type BlockwiseQuantized } from '../../main/engine/quantize/layout.ts';
import { quantizeWeightOnly } from '../../main/engine/quantize/weight-only.ts';
import { QuantizeRtnStep } from '../../preload/recipe.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { dequantizeReference } from '../unit/quantize/dequantize-reference.ts';
import {
  buildModel, DataType, floatAttr, intAttr, makeNode, makeTensor, randomFloats, saveModel, singleMatMul, valueInfo,
} from '../unit/quantize/build-model.ts';

const K = 100, N = 64, M = 5;
const W = randomFloats(K * N, 11);
const X = randomFloats(M * K, 12, 2);

let tmp: ReturnType<typeof tempDir>;
let n = 0;
beforeAll(() => { tmp = tempDir('whittle-qnum-'); });
afterAll(() => tmp.cleanup());
const file = (name: string): string => path.join(tmp.dir, `${name}-${n++}`);
const step = (s: Partial<QuantizeRtnStep>): QuantizeRtnStep => QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', ...s });

async function runY(modelPath: string, qdqLevel = 0, feeds: Record<string, ort.Tensor> = { X: new ort.Tensor('float32', X, [M, K]) }): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(modelPath, { extra: { session: { qdq_matmulnbits_accuracy_level: String(qdqLevel) } } } as ort.InferenceSession.SessionOptions);
  try {
    return (await s.run(feeds)).Y.data as Float32Array;
  } finally {
    await s.release();
  }
}

function relMaxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
  return d / m;
}

/** The quantized weight of a MatMulNBits node, read back from the written file. */
async function quantizedOf(modelPath: string): Promise<BlockwiseQuantized> {
  const m = await readModel(modelPath);
  const g = m.proto.graph!;
  const node = g.node.find((x) => x.opType === 'MatMulNBits')!;
  const inits = initializerMap(g);
  const bytes = async (name: string): Promise<Uint8Array> => (await readTensorBytes(inits.get(name)!)).slice();
  const k = attrInt(node, 'K', 0), nn = attrInt(node, 'N', 0), bits = attrInt(node, 'bits', 0), blockSize = attrInt(node, 'block_size', 0);
  const s = await bytes(node.input[2]);
  return {
    packed: await bytes(node.input[1]),
    scales: new Float32Array(s.buffer, s.byteOffset, s.length / 4),
    zeroPoints: node.input[3] ? await bytes(node.input[3]) : null,
    k, n: nn, bits, blockSize, kBlocks: Math.ceil(k / blockSize),
  };
}

describe('MatMulNBits vs MatMul on the dequantized weight (K = 100, not a multiple of the block)', () => {
  for (const bits of [2, 4, 8] as const) {
    for (const symmetric of [true, false]) {
      it(`${bits}-bit ${symmetric ? 'sym' : 'asym'}, block 32: near-exact at accuracy_level 0/1, close at 4`, async () => {
        const src = file('mm.onnx');
        await saveModel(singleMatMul(W, K, N), src);
        const q0 = await quantizeWeightOnly(src, step({ bits, symmetric, accuracyLevel: 0 }), file('out'), quietContext(tmp.dir));
        const q1 = await quantizeWeightOnly(src, step({ bits, symmetric, accuracyLevel: 1 }), file('out'), quietContext(tmp.dir));
        const q4 = await quantizeWeightOnly(src, step({ bits, symmetric, accuracyLevel: 4 }), file('out'), quietContext(tmp.dir));

        const q = await quantizedOf(q0.modelPath);
        expect(q.zeroPoints === null).toBe(symmetric);
        const deq = await dequantizeBlockwise({ ...q, sqError: 0 } as never);
        // the native dequantizer and a plain one agree on the layout
        expect(Array.from(deq)).toEqual(Array.from(dequantizeReference(q)));
        const ref = file('deq.onnx');
        await saveModel(singleMatMul(deq, K, N), ref);
        const want = await runY(ref);

        expect(relMaxDiff(await runY(q0.modelPath), want)).toBeLessThan(1e-5);
        expect(relMaxDiff(await runY(q1.modelPath), want)).toBeLessThan(1e-5);
        expect(relMaxDiff(await runY(q4.modelPath), want)).toBeLessThan(2e-2);
        // and the quantized weight is close to the original (RTN error bounded by half a step per value)
        const err = q0.sqError / W.reduce((a, x) => a + x * x, 0);
        expect(err).toBeLessThan(bits === 2 ? 0.2 : bits === 4 ? 0.01 : 1e-4);
      });
    }
  }

  for (const symmetric of [true, false]) {
    for (const bits of [4, 8] as const) {
      it(`QDQ ${bits}-bit ${symmetric ? 'sym' : 'asym'} equals MatMulNBits numerically`, async () => {
        const src = file('mm.onnx');
        await saveModel(singleMatMul(W, K, N), src);
        const a = await quantizeWeightOnly(src, step({ bits, symmetric, blockSize: 16, accuracyLevel: 0 }), file('nbits'), quietContext(tmp.dir));
        const b = await quantizeWeightOnly(src, step({ bits, symmetric, blockSize: 16, format: 'qdq' }), file('qdq'), quietContext(tmp.dir));
        const m = await readModel(b.modelPath);
        const dq = m.proto.graph!.node.find((x) => x.opType === 'DequantizeLinear')!;
        expect(attrInt(dq, 'axis', -1)).toBe(0);
        expect(attrInt(dq, 'block_size', 0)).toBe(16);
        const x = initializerMap(m.proto.graph!).get(dq.input[0])!;
        expect(x.dataType).toBe(bits === 4 ? (symmetric ? DataType.int4 : DataType.uint4) : (symmetric ? DataType.int8 : DataType.uint8));
        expect(x.dims.map(Number)).toEqual([K, N]);
        expect(dq.input.length).toBe(symmetric ? 2 : 3);
        expect(relMaxDiff(await runY(b.modelPath, 0), await runY(a.modelPath))).toBeLessThan(1e-5);
      });
    }
  }
});

describe('Gemm', () => {
  it('transB = 1, alpha and beta·C: quantized Gemm equals the float Gemm on the dequantized weight', async () => {
    const Wt = transpose2d(W, K, N); // [N, K]
    const C = randomFloats(N, 13);
    const gemm = (weight: Float32Array) => buildModel({
      nodes: [makeNode({ opType: 'Gemm', inputs: ['X', 'Wt', 'C'], outputs: ['Y'], name: 'gemm', attributes: [intAttr('transB', 1), floatAttr('alpha', 0.5), floatAttr('beta', 2)] })],
      initializers: [makeTensor('Wt', DataType.float32, [N, K], weight), makeTensor('C', DataType.float32, [N], C)],
      inputs: [valueInfo('X', DataType.float32, [M, K])],
      outputs: [valueInfo('Y', DataType.float32, [M, N])],
    });
    const src = file('gemm.onnx');
    await saveModel(gemm(Wt), src);
    const r = await quantizeWeightOnly(src, step({ bits: 4, accuracyLevel: 0 }), file('gemm-out'), quietContext(tmp.dir));
    expect(r.quantized.map((w) => w.name)).toEqual(['Wt']);
    const m = await readModel(r.modelPath);
    expect(m.proto.graph!.node.map((x) => x.opType)).toEqual(['MatMulNBits', 'Mul', 'Add']);

    // reference: the same Gemm with the dequantized weight (alpha was folded into the scales: undo it)
    const q = await quantizedOf(r.modelPath);
    const deq = dequantizeReference({ ...q, scales: q.scales.map((s) => s / 0.5) });
    const ref = file('gemm-ref.onnx');
    await saveModel(gemm(transpose2d(deq, K, N)), ref);
    expect(relMaxDiff(await runY(r.modelPath), await runY(ref))).toBeLessThan(1e-5);
  });
});

describe('shared weights', () => {
  it('a weight read by two MatMuls is skipped with a reason; the others quantize', async () => {
    const model = buildModel({
      nodes: [
        makeNode({ opType: 'MatMul', inputs: ['X', 'W1'], outputs: ['h'], name: 'a' }),
        makeNode({ opType: 'MatMul', inputs: ['h', 'S'], outputs: ['y1'], name: 'b' }),
        makeNode({ opType: 'MatMul', inputs: ['h', 'S'], outputs: ['y2'], name: 'c' }),
        makeNode({ opType: 'Add', inputs: ['y1', 'y2'], outputs: ['Y'], name: 'd' }),
      ],
      initializers: [makeTensor('W1', DataType.float32, [K, N], W), makeTensor('S', DataType.float32, [N, N], randomFloats(N * N, 5))],
      inputs: [valueInfo('X', DataType.float32, [M, K])],
      outputs: [valueInfo('Y', DataType.float32, [M, N])],
    });
    const src = file('shared.onnx');
    await saveModel(model, src);
    const r = await quantizeWeightOnly(src, step({}), file('shared-out'), quietContext(tmp.dir));
    expect(r.quantized.map((w) => w.name)).toEqual(['W1']);
    expect(r.skipped).toEqual([{ name: 'S', op: 'MatMul', shape: [N, N], dtype: 'float32', reason: 'shared by 2 nodes (MatMul, MatMul); shared weights are kept' }]);
    const y = await runY(r.modelPath);
    expect(y.every(Number.isFinite)).toBe(true);
  });
});
