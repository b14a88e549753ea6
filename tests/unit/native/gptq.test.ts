/**
 * GPTQ (native-kernels/src/gptq.cc) → com.microsoft.MatMulNBits:
 *  - fast (multi-threaded, vectorized across output channels) vs the one-channel-at-a-time reference on
 *    the same prepared Hessian: identical integer codes, scales, zero points, loss and weight error, for
 *    several shapes (K not a multiple of the group included), act-order on / off, symmetric / asymmetric,
 *    2, 4 and 8 bits, and both SIMD paths;
 *  - the output is the layout of quantizeBlockwise (a diagonal Hessian gives exactly RTN's bytes);
 *  - GPTQ's output error ‖X·(W − Q)‖² on the calibration X is below RTN's at 4 bits;
 *  - dead inputs: reported and their weights zeroed; a Hessian that is not positive definite fails
 *    with INVALID_INPUT naming the layer.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  dequantizeBlockwise, gptqQuantize, gptqSweep, hessianAccumulate, hessianActOrder, prepareHessian, quantizeBlockwise, reference,
  setForceBaseline, setThreads, type BlockwiseQuantized, type GptqSweepOptions, type QuantBits,
} from '../../../main/engine/native/index.ts';
import { activations } from './calibration-data.ts';
import { firstMismatches, rng, simdPaths, useSimdPath } from './simd-paths.ts';

afterAll(() => {
  setForceBaseline(false);
  setThreads(0);
});

/** W [K, N] with bell-shaped values and per-output-channel magnitudes from 0.01 to 1. */
function randomWeight(k: number, n: number, seed: number): Float32Array {
  const next = rng(seed);
  const colScale = Array.from({ length: n }, () => 10 ** (next() * 2 - 2));
  const w = new Float32Array(k * n);
  for (let r = 0; r < k; r++) for (let c = 0; c < n; c++) w[r * n + c] = (next() + next() + next() - 1.5) * colScale[c];
  return w;
}

interface Layer { k: number; n: number; rows: number; x: Float32Array; sum: Float32Array; w: Float32Array; dead: number[] }

async function randomLayer(k: number, n: number, seed: number): Promise<Layer> {
  const rows = Math.max(64, Math.round(1.5 * k));
  const dead = [1, Math.floor(k / 2), k - 2];
  const x = activations(rows, k, seed, dead);
  const sum = new Float32Array(k * k);
  await hessianAccumulate(sum, x, rows, k);
  return { k, n, rows, x, sum, w: randomWeight(k, n, seed + 1), dead };
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function expectSameQuantized(fast: BlockwiseQuantized & { loss?: number }, ref: BlockwiseQuantized & { loss?: number }, label: string): void {
  expect(firstMismatches(fast.packed, ref.packed), label).toEqual([]);
  expect(firstMismatches(bytesOf(fast.scales), bytesOf(ref.scales)), label).toEqual([]);
  expect(fast.zeroPoints === null, label).toBe(ref.zeroPoints === null);
  if (fast.zeroPoints && ref.zeroPoints) expect(firstMismatches(fast.zeroPoints, ref.zeroPoints), label).toEqual([]);
  expect(fast.loss, label).toBe(ref.loss);
  expect(fast.sqError, label).toBe(ref.sqError);
}

/** ‖X·(W − Q)‖² summed over calibration rows and output channels (in double). */
function outputError(x: Float32Array, w: Float32Array, q: Float32Array, rows: number, k: number, n: number): number {
  const diff = Float64Array.from(w, (v, i) => v - q[i]);
  let total = 0;
  const y = new Float64Array(n);
  for (let t = 0; t < rows; t++) {
    y.fill(0);
    for (let i = 0; i < k; i++) {
      const xv = x[t * k + i];
      if (xv === 0) continue;
      for (let j = 0; j < n; j++) y[j] += xv * diff[i * n + j];
    }
    for (let j = 0; j < n; j++) total += y[j] * y[j];
  }
  return total;
}

const SHAPES: [number, number][] = [[64, 48], [100, 33], [256, 128], [300, 64]];

describe.each(simdPaths())('gptqSweep fast path (%s) vs reference on the same prepared Hessian', (path) => {
  for (const [k, n] of SHAPES) {
    it(`K=${k}, N=${n}: act-order × sym/asym × 2/4/8 bits × groups 32/64 (${k % 32 ? 'K not a multiple' : 'K a multiple'}): identical codes, scales, zero points, loss`, async () => {
      useSimdPath(path);
      const layer = await randomLayer(k, n, k * 7 + n);
      for (const actOrder of [false, true]) {
        const order = actOrder ? hessianActOrder(layer.sum, k, layer.rows) : undefined;
        const prepared = await prepareHessian(layer.sum, k, layer.rows, { percdamp: 0.01, order });
        expect(Array.from(prepared.dead)).toEqual(layer.dead);
        let variant = 0;
        for (const symmetric of [true, false]) {
          for (const bits of [2, 4, 8] as QuantBits[]) {
            const blockSize = variant++ % 2 === 0 ? 32 : 64;
            const columnBlock = [128, 32, 50][variant % 3];  // the GPTQ default, a divisor of the group, and neither
            const rounding = variant % 4 === 3 ? 'half-away' as const : 'half-even' as const;
            const opts: GptqSweepOptions = { k, n, bits, blockSize, symmetric, columnBlock, rounding };
            const label = JSON.stringify({ actOrder, ...opts });
            const fast = await gptqSweep(layer.w, prepared, opts);
            const ref = reference.gptqSweep(layer.w, prepared, opts);
            expectSameQuantized(fast, ref, label);
            expect(fast.dead, label).toBe(layer.dead.length);
            expect(Number.isFinite(fast.loss) && fast.loss > 0, label).toBe(true);
            // dead inputs' weights are zeroed and get no error feedback (their Hinv row and column are 0): they dequantize to exactly 0
            const deq = await dequantizeBlockwise(fast);
            for (const i of layer.dead) for (let j = 0; j < n; j++) expect(deq[i * n + j] === 0, label).toBe(true);  // ±0
          }
        }
      }
    });
  }

  it('the same bytes on 1 thread as on all threads', async () => {
    useSimdPath(path);
    const layer = await randomLayer(300, 64, 99);
    const opts = { k: 300, n: 64, bits: 4 as const, blockSize: 32, symmetric: false, columnBlock: 128, percdamp: 0.01, actOrder: true };
    setThreads(1);
    const one = await gptqQuantize(layer.w, layer.sum, layer.rows, opts);
    setThreads(0);
    const all = await gptqQuantize(layer.w, layer.sum, layer.rows, opts);
    expectSameQuantized(all, one, 'threads');
  });
});

describe('gptqQuantize', () => {
  it('is prepareHessian (act-order: hessianActOrder) followed by gptqSweep, byte for byte', async () => {
    const layer = await randomLayer(100, 33, 5);
    for (const actOrder of [false, true]) {
      const opts = { k: 100, n: 33, bits: 4 as const, blockSize: 32, symmetric: true, columnBlock: 128 };
      const order = actOrder ? hessianActOrder(layer.sum, 100, layer.rows) : undefined;
      const prepared = await prepareHessian(layer.sum, 100, layer.rows, { percdamp: 0.01, order });
      const direct = await gptqQuantize(layer.w, layer.sum, layer.rows, { ...opts, percdamp: 0.01, actOrder });
      expectSameQuantized(direct, await gptqSweep(layer.w, prepared, opts), `actOrder=${actOrder}`);
      expect(direct.dead).toBe(3);
      const ref = reference.gptqQuantize(layer.w, layer.sum, layer.rows, { ...opts, percdamp: 0.01, actOrder });
      expect(ref.dead).toBe(3);
      expect(ref.packed.length).toBe(direct.packed.length);
    }
  });

  it('with a diagonal Hessian (no error feedback) gives exactly quantizeBlockwise (RTN): same layout and rule', async () => {
    const k = 100, n = 33;
    const w = randomWeight(k, n, 3);
    const sum = new Float32Array(k * k);
    for (let i = 0; i < k; i++) sum[i * k + i] = 1 + i;
    for (const symmetric of [true, false]) {
      for (const bits of [2, 4, 8] as QuantBits[]) {
        const g = await gptqQuantize(w, sum, 10, { k, n, bits, blockSize: 32, symmetric, columnBlock: 128, percdamp: 0.01, actOrder: false });
        const r = await quantizeBlockwise(w, { k, n, bits, blockSize: 32, symmetric });
        expectSameQuantized({ ...g, loss: undefined }, { ...r, loss: undefined }, `sym=${symmetric} bits=${bits}`);
      }
    }
  });

  it('4 bits: the output error ‖X·(W − Q)‖² on the calibration data is lower than RTN\'s (act-order on and off)', async () => {
    const k = 256, n = 96;
    const layer = await randomLayer(k, n, 42);
    for (const symmetric of [true, false]) {
      const rtn = await dequantizeBlockwise(await quantizeBlockwise(layer.w, { k, n, bits: 4, blockSize: 32, symmetric }));
      const rtnError = outputError(layer.x, layer.w, rtn, layer.rows, k, n);
      for (const actOrder of [false, true]) {
        const g = await gptqQuantize(layer.w, layer.sum, layer.rows, { k, n, bits: 4, blockSize: 32, symmetric, columnBlock: 128, percdamp: 0.01, actOrder });
        const gptqError = outputError(layer.x, layer.w, await dequantizeBlockwise(g), layer.rows, k, n);
        expect(gptqError, `sym=${symmetric} actOrder=${actOrder}: GPTQ ${gptqError} vs RTN ${rtnError}`).toBeLessThan(0.5 * rtnError);
      }
    }
  });

  it('loss predicts the output error: ‖X·(W − Q)‖² ≈ rows · loss (GPTQ: Σ err² = (w − q)ᵀ·H·(w − q), H = 2XᵀX/rows) within 10 % at percdamp 1e-5', async () => {
    const k = 128, n = 40;
    const layer = await randomLayer(k, n, 17);
    for (const actOrder of [false, true]) {
      const g = await gptqQuantize(layer.w, layer.sum, layer.rows, { k, n, bits: 4, blockSize: 32, symmetric: false, columnBlock: 32, percdamp: 1e-5, actOrder });
      const actual = outputError(layer.x, layer.w, await dequantizeBlockwise(g), layer.rows, k, n);
      expect(Math.abs(actual / (layer.rows * g.loss) - 1), `actOrder=${actOrder}: ${actual} vs ${layer.rows * g.loss}`).toBeLessThan(0.1);
    }
  });

  it('a Hessian that is not positive definite → INVALID_INPUT naming the layer; bad arguments rejected before any work', async () => {
    const sum = Float32Array.from([1, 2, 2, 1]);
    const w = new Float32Array(2 * 16).fill(0.5);
    const opts = { k: 2, n: 16, bits: 4 as const, blockSize: 16, symmetric: true, columnBlock: 128, percdamp: 0.01, actOrder: false, label: 'layer.q_proj' };
    await expect(gptqQuantize(w, sum, 10, opts)).rejects.toMatchObject({
      code: 'INVALID_INPUT', message: expect.stringMatching(/^The Hessian of layer\.q_proj is not positive definite .*; increase percdamp\.$/),
    });
    await expect(gptqQuantize(w, sum, 0, opts)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(gptqQuantize(w, new Float32Array(3), 10, opts)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(gptqQuantize(w, sum, 10, { ...opts, columnBlock: 0 })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(gptqQuantize(w, sum, 10, { ...opts, blockSize: 24 })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    const nan = w.slice();
    nan[3] = NaN;
    await expect(gptqQuantize(nan, Float32Array.from([2, 0, 0, 2]), 10, opts)).rejects.toMatchObject({
      code: 'INVALID_INPUT', message: expect.stringContaining('NaN'),
    });
  });
});
