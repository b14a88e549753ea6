/**
 * Mixed precision in the weight-only step: `overrides` give single weights other bits (first matching
 * pattern wins), recorded per weight in whittle.json, and the written MatMulNBits nodes carry those bits.
 * Also the one-click recipe from a sensitivity ranking (mixed-precision.ts).
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WhittleError } from '../../../main/engine/errors.ts';
import { quietContext } from '../../../main/engine/job-context.ts';
import { attrInt, initializerMap } from '../../../main/engine/onnx/graph.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { readManifest } from '../../../main/engine/rewrite/manifest.ts';
import { exactNamePattern, mixedPrecisionFromSensitivity, type SensitivityEntry } from '../../../main/engine/quantize/mixed-precision.ts';
import { bitsResolver, quantizeWeightOnly } from '../../../main/engine/quantize/weight-only.ts';
import { QuantizeRtnStep } from '../../../preload/recipe.ts';
import { tempDir } from '../../helpers/fixtures.ts';
import { buildModel, DataType, makeNode, makeTensor, randomFloats, saveModel, valueInfo } from './build-model.ts';

const K = 64, N = 48, M = 3;
const names = ['blk.0.attn.q.weight', 'blk.0.attn.k.weight', 'blk.0.mlp.up.weight'];
const weights = names.map((_, i) => randomFloats(K * N, 20 + i, 0.2));
const X = randomFloats(M * K, 7, 1);

let tmp: ReturnType<typeof tempDir>;
let count = 0;
let modelPath: string;
beforeAll(async () => {
  tmp = tempDir('whittle-overrides-');
  modelPath = path.join(tmp.dir, 'three.onnx');
  // X [M, K] → three MatMuls side by side, Y_i [M, N]
  await saveModel(buildModel({
    nodes: names.map((w, i) => makeNode({ opType: 'MatMul', inputs: ['X', w], outputs: [`Y${i}`], name: `mm${i}` })),
    initializers: names.map((w, i) => makeTensor(w, DataType.float32, [K, N], weights[i])),
    inputs: [valueInfo('X', DataType.float32, [M, K])],
    outputs: names.map((_, i) => valueInfo(`Y${i}`, DataType.float32, [M, N])),
  }), modelPath);
});
afterAll(() => tmp.cleanup());
const out = (): string => path.join(tmp.dir, `out-${count++}`);
const step = (s: Partial<QuantizeRtnStep>): QuantizeRtnStep => QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', ...s });

/** max |Y − X·W| / max |X·W| for output i of the quantized model. */
async function relError(file: string): Promise<number[]> {
  const s = await ort.InferenceSession.create(file, { extra: { session: { qdq_matmulnbits_accuracy_level: '0' } } } as ort.InferenceSession.SessionOptions);
  try {
    const r = await s.run({ X: new ort.Tensor('float32', X, [M, K]) });
    return names.map((_, i) => {
      const y = r[`Y${i}`].data as Float32Array;
      let d = 0, m = 0;
      for (let a = 0; a < M; a++) {
        for (let n = 0; n < N; n++) {
          let ref = 0;
          for (let k = 0; k < K; k++) ref += X[a * K + k] * weights[i][k * N + n];
          d = Math.max(d, Math.abs(y[a * N + n] - ref));
          m = Math.max(m, Math.abs(ref));
        }
      }
      return d / m;
    });
  } finally {
    await s.release();
  }
}

describe('bits overrides', () => {
  it('first matching pattern wins; others keep the step bits', () => {
    const bitsOf = bitsResolver(4, [{ pattern: 'attn\\.q', bits: 8 }, { pattern: 'attn', bits: 2 }]);
    expect(bitsOf('blk.0.attn.q.weight')).toBe(8);
    expect(bitsOf('blk.0.attn.k.weight')).toBe(2);
    expect(bitsOf('blk.0.mlp.up.weight')).toBe(4);
  });

  it('a pattern matching one weight gives it 8 bits while the rest are 4 (MatMulNBits attributes, whittle.json)', async () => {
    const dir = out();
    const r = await quantizeWeightOnly(modelPath, step({ bits: 4, blockSize: 32, overrides: [{ pattern: '^blk\\.0\\.attn\\.k\\.weight$', bits: 8 }] }), dir, quietContext(tmp.dir));
    expect(r.quantized.map((w) => [w.name, w.bits])).toEqual([[names[0], 4], [names[1], 8], [names[2], 4]]);

    const g = (await readModel(r.modelPath)).proto.graph!;
    const inits = initializerMap(g);
    const nodes = g.node.filter((n) => n.opType === 'MatMulNBits');
    expect(nodes.length).toBe(3);
    for (const [i, w] of names.entries()) {
      const node = nodes.find((n) => n.input[1].startsWith(w))!;
      const bits = i === 1 ? 8 : 4;
      expect(attrInt(node, 'bits', 0)).toBe(bits);
      expect(node.input[1]).toBe(`${w}_Q${bits}`);
      expect(inits.get(node.input[1])!.dims.map(Number)).toEqual([N, K / 32, (32 * bits) / 8]);
    }
    const manifest = await readManifest(dir);
    expect(manifest.weights.map((w) => w.bits)).toEqual([4, 8, 4]);

    // the 8-bit weight is much closer to the float product than the 4-bit ones
    const err = await relError(r.modelPath);
    expect(err[1]).toBeLessThan(0.02);
    expect(err[0]).toBeGreaterThan(3 * err[1]);
    expect(err[2]).toBeGreaterThan(3 * err[1]);
  });

  it('the QDQ format writes each weight with its own bits (int8 beside int4)', async () => {
    const r = await quantizeWeightOnly(modelPath, step({ bits: 4, format: 'qdq', overrides: [{ pattern: 'mlp', bits: 8 }] }), out(), quietContext(tmp.dir));
    const g = (await readModel(r.modelPath)).proto.graph!;
    const inits = initializerMap(g);
    const types = g.node.filter((n) => n.opType === 'DequantizeLinear').map((n) => inits.get(n.input[0])!.dataType);
    expect(types.sort()).toEqual([DataType.uint4, DataType.uint4, DataType.uint8].sort());
    expect((await relError(r.modelPath)).every((e) => e < 0.2)).toBe(true);
  });

  it('bad patterns and 2-bit overrides in the QDQ format fail before any work', async () => {
    const bad = await quantizeWeightOnly(modelPath, step({ overrides: [{ pattern: '(', bits: 8 }] }), out(), quietContext(tmp.dir)).catch((e) => e);
    expect(bad).toBeInstanceOf(WhittleError);
    expect(bad.code).toBe('INVALID_INPUT');
    expect(bad.message).toMatch(/override pattern '\(' is not a valid regular expression/);
    const two = await quantizeWeightOnly(modelPath, step({ format: 'qdq', overrides: [{ pattern: 'q', bits: 2 }] }), out(), quietContext(tmp.dir)).catch((e) => e);
    expect(two.code).toBe('INVALID_INPUT');
    expect(two.message).toMatch(/QDQ format has no 2-bit type/);
  });
});

describe('mixedPrecisionFromSensitivity', () => {
  const list: SensitivityEntry[] = [
    { name: 'a.weight', kl: 0.01, bits: 4, params: 10, weights: ['a.weight'] },
    { name: 'block 1', kl: 0.05, bits: 4, params: 20, weights: ['l.1.q', 'l.1.k'] },
    { name: 'w(x)+', kl: 0.03, bits: 4, params: 10, weights: ['w(x)+'] },
  ];

  it('the k most sensitive become exact-name 8-bit overrides or keep patterns', () => {
    const r = mixedPrecisionFromSensitivity(list, 2, '8bit');
    expect(r).toEqual({ overrides: [{ pattern: '^l\\.1\\.q$', bits: 8 }, { pattern: '^l\\.1\\.k$', bits: 8 }, { pattern: '^w\\(x\\)\\+$', bits: 8 }] });
    expect(mixedPrecisionFromSensitivity(list, 1, 'float')).toEqual({ keep: ['^l\\.1\\.q$', '^l\\.1\\.k$'] });
    expect(mixedPrecisionFromSensitivity(list, 0, 'float')).toEqual({ keep: [] });
  });

  it('exact-name patterns match their name only', () => {
    const re = new RegExp(exactNamePattern('model.layers.1.mlp.up_proj.weight_t'));
    expect(re.test('model.layers.1.mlp.up_proj.weight_t')).toBe(true);
    expect(re.test('model.layers.11.mlp.up_proj.weight_t')).toBe(false);
    expect(re.test('model_layers_1_mlp_up_proj_weight_t')).toBe(false);
  });
});
