/**
 * The GPTQ quantizer as the step uses it: one weight with the Hessian of correlated inputs. GPTQ must
 * give a lower output error ‖X·W − X·Ŵ‖² than RTN on the same grid (the point of the method), fp16
 * weights must come out with fp16-exact scales, and the Hessian memory estimate must be Σ d² floats.
 */
import { describe, expect, it } from 'vitest';
import { dequantizeBlockwise, f32ToF16, quantizeBlockwise, reference } from '../../../main/engine/native/index.ts';
import { floatToHalf, halfToFloat } from '../../../main/engine/onnx/tensor-data.ts';
import { gptqQuantizer, hessianBytes, type HessianStats } from '../../../main/engine/quantize/gptq.ts';
import type { QuantTarget } from '../../../main/engine/quantize/targets.ts';
import { randomFloats } from './build-model.ts';

const K = 96, N = 40, ROWS = 512;

/** X [ROWS, K] with strongly correlated features (a low-rank mix plus noise), as real activations are. */
function correlatedInputs(): Float32Array {
  const R = 6;
  const z = randomFloats(ROWS * R, 3, 1);
  const mix = randomFloats(R * K, 4, 1);
  const noise = randomFloats(ROWS * K, 5, 0.05);
  const x = new Float32Array(ROWS * K);
  for (let r = 0; r < ROWS; r++) {
    for (let k = 0; k < K; k++) {
      let v = noise[r * K + k];
      for (let j = 0; j < R; j++) v += z[r * R + j] * mix[j * K + k];
      x[r * K + k] = v;
    }
  }
  return x;
}

/** Σ xᵀx [K, K] in float64, stored float32 (the plain reference for what calibration accumulates). */
function gram(x: Float32Array): Float32Array {
  const h = new Float64Array(K * K);
  for (let r = 0; r < ROWS; r++) for (let i = 0; i < K; i++) { const xi = x[r * K + i]; for (let j = 0; j < K; j++) h[i * K + j] += xi * x[r * K + j]; }
  return Float32Array.from(h);
}

/** ‖X·(W − Ŵ)‖² in float64. */
function outputError(x: Float32Array, w: Float32Array, wq: Float32Array): number {
  let total = 0;
  for (let r = 0; r < ROWS; r++) {
    for (let n = 0; n < N; n++) {
      let d = 0;
      for (let k = 0; k < K; k++) d += x[r * K + k] * (w[k * N + n] - wq[k * N + n]);
      total += d * d;
    }
  }
  return total;
}

const target = (dtype: 'float32' | 'float16'): QuantTarget => ({
  weight: 'W', node: { input: ['X', 'W'], output: ['Y'], attribute: [], metadataProps: [], deviceConfigurations: [] },
  op: 'MatMul', shape: [K, N], dtype, k: K, n: N, transposed: false, alpha: 1,
});

describe('gptqQuantizer', () => {
  const x = correlatedInputs();
  const h: HessianStats = { tensor: 'X', d: K, rows: ROWS, hessian: gram(x), weights: ['W'] };
  const w = randomFloats(K * N, 9, 0.5);
  const settings = { blockSize: 32, symmetric: false, percdamp: 0.01, actOrder: false, columnBlock: 128 };

  for (const bits of [4, 2] as const) {
    for (const actOrder of [false, true]) {
      it(`${bits}-bit${actOrder ? ', act-order' : ''}: lower output error than RTN, loss and dead inputs reported`, async () => {
        const q = await gptqQuantizer(new Map([['W', h]]), { ...settings, actOrder }).quantize(target('float32'), w, bits);
        const rtn = await quantizeBlockwise(w, { k: K, n: N, bits, blockSize: 32, symmetric: false });
        expect(q.q.packed.length).toBe(rtn.packed.length);
        expect(q.q.zeroPoints?.length).toBe(rtn.zeroPoints?.length);
        const eG = outputError(x, w, await dequantizeBlockwise(q.q));
        const eR = outputError(x, w, await dequantizeBlockwise(rtn));
        console.log(`${bits}-bit${actOrder ? ' act-order' : ''}: ‖XΔW‖² GPTQ ${eG.toExponential(3)} vs RTN ${eR.toExponential(3)} (${(eG / eR).toFixed(3)}×)`);
        expect(eG).toBeLessThan(0.9 * eR);
        expect(q.facts?.loss).toBeGreaterThan(0);
        expect(q.facts?.deadInputs).toBe(0);
      });
    }
  }

  it('fp16 weights: fp32 math, scales exactly representable in fp16', async () => {
    const w16 = await f32ToF16(w);
    const q = await gptqQuantizer(new Map([['W', h]]), settings).quantize(target('float16'), w16, 4);
    expect(Array.from(q.q.scales).every((s) => halfToFloat(floatToHalf(s)) === s)).toBe(true);
    const back = reference.f16ToF32(w16);
    const rtn = await quantizeBlockwise(w16, { k: K, n: N, bits: 4, blockSize: 32, symmetric: false, weightIsFp16: true });
    expect(outputError(x, back, await dequantizeBlockwise(q.q))).toBeLessThan(outputError(x, back, await dequantizeBlockwise(rtn)));
  });

  it('refuses a Hessian of the wrong width', async () => {
    const bad: HessianStats = { ...h, d: K - 1 };
    await expect(gptqQuantizer(new Map([['W', bad]]), settings).quantize(target('float32'), w, 4)).rejects.toThrow(/has 95 features; the weight has K = 96/);
  });
});

describe('hessianBytes', () => {
  it('is Σ d² float32 over the distinct inputs', () => {
    expect(hessianBytes([{ d: 64 }, { d: 172 }])).toBe((64 * 64 + 172 * 172) * 4);
    // a 7B Llama: 32 layers with inputs 4096 (attention), 4096 (o_proj), 4096 (MLP), 11008 (down_proj) wide
    const llama7b = Array.from({ length: 32 }).flatMap(() => [{ d: 4096 }, { d: 4096 }, { d: 4096 }, { d: 11008 }]);
    expect(hessianBytes(llama7b) / 2 ** 30).toBeCloseTo(20.445, 3);
  });
});
