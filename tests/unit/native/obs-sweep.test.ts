/**
 * The shared optimal-brain-surgeon sweep (native-kernels/src/obs_sweep.h) and its column policies:
 *  - fast (multi-threaded, every SIMD path) vs the one-channel-at-a-time reference: identical swept
 *    weights, masks, MatMulNBits bytes and loss, for prune (unstructured, N:M), quantize (2..8 bits) and
 *    both, act-order on / off, column and mask blocks that divide each other or not;
 *  - prune mode against a plain SparseGPT (arXiv 2301.00774, Algorithm 1) written here in float32;
 *  - the N:M pattern along K and the per-block sparsity hold exactly;
 *  - SparseGPT's output error ‖(W − Ŵ)ᵀX‖² is below magnitude pruning's with the same mask counts;
 *  - quantize alone is GPTQ, byte for byte; bad policies are rejected with INVALID_INPUT.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  dequantizeBlockwise, gptqQuantize, hessianAccumulate, hessianActOrder, obsSweep, obsSweepPrepared, prepareHessian, reference, setSimdLimit,
  setThreads, type BlockwiseQuantized, type ObsPruneOptions, type ObsSweepOptions, type ObsSwept, type PreparedHessian,
} from '../../../main/engine/native/index.ts';
import { activations } from './calibration-data.ts';
import { firstMismatches, rng, simdPaths, useSimdPath } from './simd-paths.ts';

afterAll(() => {
  setSimdLimit('auto');
  setThreads(0);
});

interface Layer { k: number; n: number; rows: number; x: Float32Array; sum: Float32Array; w: Float32Array }

async function randomLayer(k: number, n: number, seed: number, dead: number[] = []): Promise<Layer> {
  const rows = Math.max(64, Math.round(1.5 * k));
  const x = activations(rows, k, seed, dead);
  const sum = new Float32Array(k * k);
  await hessianAccumulate(sum, x, rows, k);
  const next = rng(seed + 1);
  const w = Float32Array.from({ length: k * n }, () => next() + next() + next() - 1.5);
  return { k, n, rows, x, sum, w };
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function expectSameSwept(fast: ObsSwept, ref: ObsSwept, label: string): void {
  expect(firstMismatches(bytesOf(fast.weight), bytesOf(ref.weight)), label).toEqual([]);
  expect(fast.mask === null, label).toBe(ref.mask === null);
  if (fast.mask && ref.mask) expect(firstMismatches(fast.mask, ref.mask), label).toEqual([]);
  expect(fast.quantized === null, label).toBe(ref.quantized === null);
  if (fast.quantized && ref.quantized) {
    expect(firstMismatches(fast.quantized.packed, ref.quantized.packed), label).toEqual([]);
    expect(firstMismatches(bytesOf(fast.quantized.scales), bytesOf(ref.quantized.scales)), label).toEqual([]);
    if (fast.quantized.zeroPoints && ref.quantized.zeroPoints) expect(firstMismatches(fast.quantized.zeroPoints, ref.quantized.zeroPoints), label).toEqual([]);
  }
  expect(fast.loss, label).toBe(ref.loss);
  expect(fast.sqError, label).toBe(ref.sqError);
  expect(fast.dead, label).toBe(ref.dead);
}

/** ‖(W − Ŵ)ᵀ·xₜ‖² summed over calibration rows t (in double). */
function outputError(l: Layer, swept: Float32Array): number {
  const { x, w, rows, k, n } = l;
  const y = new Float64Array(n);
  let total = 0;
  for (let t = 0; t < rows; t++) {
    y.fill(0);
    for (let i = 0; i < k; i++) {
      const xv = x[t * k + i];
      if (xv !== 0) for (let j = 0; j < n; j++) y[j] += xv * (w[i * n + j] - swept[i * n + j]);
    }
    for (let j = 0; j < n; j++) total += y[j] * y[j];
  }
  return total;
}

const POLICIES: { name: string; opts: Omit<ObsSweepOptions, 'k' | 'n' | 'percdamp'> }[] = [
  { name: 'unstructured 50 %, mask block = column block', opts: { actOrder: false, columnBlock: 128, prune: { sparsity: 0.5 } } },
  { name: 'unstructured 30 %, mask blocks of 16 in column blocks of 40, act-order', opts: { actOrder: true, columnBlock: 40, prune: { sparsity: 0.3, maskBlock: 16 } } },
  { name: '2:4', opts: { actOrder: false, columnBlock: 32, prune: { nm: { n: 2, m: 4 } } } },
  { name: '1:8 + 4-bit asymmetric (joint)', opts: { actOrder: false, columnBlock: 64, prune: { nm: { n: 1, m: 8 } }, quantize: { bits: 4, blockSize: 32, symmetric: false } } },
  { name: 'unstructured 50 % + 8-bit symmetric half-away (joint), act-order', opts: { actOrder: true, columnBlock: 50, prune: { sparsity: 0.5, maskBlock: 25 }, quantize: { bits: 8, blockSize: 16, symmetric: true, rounding: 'half-away' } } },
  { name: '3-bit symmetric (float output only)', opts: { actOrder: false, columnBlock: 128, quantize: { bits: 3, blockSize: 32, symmetric: true } } },
  { name: '2-bit asymmetric, act-order', opts: { actOrder: true, columnBlock: 32, quantize: { bits: 2, blockSize: 32, symmetric: false } } },
];

describe.each(simdPaths())('obsSweepPrepared fast path (%s) vs reference on the same prepared Hessian', (path) => {
  for (const [k, n] of [[96, 40], [130, 70]] as const) {
    it(`K=${k}, N=${n}: every policy gives identical swept weights, masks, packed bytes and loss`, async () => {
      useSimdPath(path);
      const layer = await randomLayer(k, n, k + n, [5]);
      for (const { name, opts } of POLICIES) {
        const order = opts.actOrder ? hessianActOrder(layer.sum, k, layer.rows) : undefined;
        const prepared = await prepareHessian(layer.sum, k, layer.rows, { percdamp: 0.01, order });
        const { actOrder: _actOrder, ...rest } = opts;
        const o = { ...rest, k, n };
        const fast = await obsSweepPrepared(layer.w, prepared, o);
        const ref = reference.obsSweepPrepared(layer.w, prepared, o);
        expectSameSwept(fast, ref, `${path} ${name}`);
        expect(fast.dead, name).toBe(1);
        expect(Number.isFinite(fast.loss) && fast.loss > 0, name).toBe(true);
        for (let j = 0; j < n; j++) expect(fast.weight[5 * n + j] === 0, `${name}: dead input`).toBe(true);
      }
    });
  }

  it('the same output on 1 thread as on all threads (joint mode, act-order)', async () => {
    useSimdPath(path);
    const layer = await randomLayer(100, 48, 7);
    const opts = POLICIES[4].opts;
    setThreads(1);
    const one = await obsSweep(layer.w, layer.sum, layer.rows, { ...opts, k: 100, n: 48, percdamp: 0.01 });
    setThreads(0);
    const all = await obsSweep(layer.w, layer.sum, layer.rows, { ...opts, k: 100, n: 48, percdamp: 0.01 });
    expectSameSwept(all, one, 'threads');
  });
});

/**
 * SparseGPT (arXiv 2301.00774, Algorithm 1, prune only) for one channel at a time in float32
 * (Math.fround after every operation), over the sweep-ordered inputs of a prepared Hessian.
 */
function plainSparseGpt(w0: Float32Array, prepared: PreparedHessian, k: number, n: number,
  o: { columnBlock: number; sparsity?: number; maskBlock?: number; nm?: { n: number; m: number } }): { weight: Float32Array; mask: Uint8Array; loss: number } {
  const f = Math.fround;
  const H = prepared.hinvUpper;
  const input = (i: number): number => (prepared.order ? prepared.order[i] : i);
  const dead = new Set(prepared.dead);
  const cb = Math.min(o.columnBlock, k);
  const weight = new Float32Array(k * n);
  const mask = new Uint8Array(k * n);
  let lossTotal = 0;
  for (let c = 0; c < n; c++) {
    const w = Float32Array.from({ length: k }, (_, i) => (dead.has(input(i)) ? 0 : w0[input(i) * n + c]));
    const keep = new Uint8Array(k).fill(1);
    const choose = (r0: number, r1: number): void => {
      const idx = Array.from({ length: r1 - r0 }, (_, t) => r0 + t);
      const score = (r: number): number => f(f(w[r] * w[r]) / f(H[r * k + r] * H[r * k + r]));
      idx.sort((a, b) => score(a) - score(b) || a - b);
      const pruned = o.nm ? idx.length - Math.min(o.nm.n, idx.length) : Math.round((o.sparsity ?? 0) * idx.length);
      idx.forEach((r, t) => { keep[r] = t < pruned ? 0 : 1; });
    };
    let loss = 0;
    for (let i1 = 0; i1 < k; i1 += cb) {
      const i2 = Math.min(k, i1 + cb);
      const err = new Float32Array(i2 - i1);
      for (let i = i1; i < i2; i++) {
        if (o.nm) {
          if (i % o.nm.m === 0) choose(i, Math.min(k, i + o.nm.m));
        } else if ((i - i1) % (o.maskBlock ?? 128) === 0) {
          choose(i, Math.min(i2, i + (o.maskBlock ?? 128)));
        }
        const v = keep[i] ? w[i] : 0;
        const e = f(f(w[i] - v) / H[i * k + i]);
        weight[input(i) * n + c] = v;
        mask[input(i) * n + c] = keep[i];
        err[i - i1] = e;
        loss += e * e;
        for (let j = i + 1; j < i2; j++) w[j] = f(w[j] - f(e * H[i * k + j]));
      }
      for (let j = i2; j < k; j++) {
        let sum = 0;
        for (let i = i1; i < i2; i++) sum = f(sum + f(err[i - i1] * H[i * k + j]));
        w[j] = f(w[j] - sum);
      }
    }
    lossTotal += loss;
  }
  return { weight, mask, loss: 0.5 * lossTotal };
}

describe('obsSweep, prune policy', () => {
  it('matches a plain float32 SparseGPT exactly (unstructured, act-order, N:M)', async () => {
    const k = 72, n = 12;
    const layer = await randomLayer(k, n, 3, [10]);
    const cases = [
      { actOrder: false, columnBlock: 32, sparsity: 0.5, maskBlock: 32 },
      { actOrder: true, columnBlock: 24, sparsity: 0.4, maskBlock: 10 },
      { actOrder: false, columnBlock: 16, nm: { n: 2, m: 4 } },
    ];
    for (const c of cases) {
      const order = c.actOrder ? hessianActOrder(layer.sum, k, layer.rows) : undefined;
      const prepared = reference.prepareHessian(layer.sum, k, layer.rows, { percdamp: 0.01, order });
      const prune = c.nm ? { nm: c.nm } : { sparsity: c.sparsity, maskBlock: c.maskBlock };
      const got = reference.obsSweepPrepared(layer.w, prepared, { k, n, columnBlock: c.columnBlock, prune });
      const want = plainSparseGpt(layer.w, prepared, k, n, { columnBlock: c.columnBlock, ...prune });
      const label = JSON.stringify(c);
      expect(firstMismatches(got.mask as Uint8Array, want.mask), label).toEqual([]);
      expect(firstMismatches(bytesOf(got.weight), bytesOf(want.weight)), label).toEqual([]);
      expect(got.loss, label).toBe(want.loss);
    }
  });

  it('N:M holds exactly along K: every M consecutive inputs of every output channel keep N, the rest are 0', async () => {
    const k = 100, n = 24;  // K not a multiple of M: the last group is short
    const layer = await randomLayer(k, n, 11);
    for (const [keep, m] of [[2, 4], [1, 8], [3, 8]]) {
      const r = await obsSweep(layer.w, layer.sum, layer.rows, { k, n, percdamp: 0.01, actOrder: false, columnBlock: 4 * m, prune: { nm: { n: keep, m } } });
      const mask = r.mask as Uint8Array;
      for (let c = 0; c < n; c++) {
        for (let g = 0; g < k; g += m) {
          let kept = 0, nonzero = 0;
          for (let i = g; i < Math.min(k, g + m); i++) {
            kept += mask[i * n + c];
            nonzero += r.weight[i * n + c] !== 0 ? 1 : 0;
            if (!mask[i * n + c]) expect(r.weight[i * n + c]).toBe(0);
          }
          expect(kept, `${keep}:${m} channel ${c} group ${g}`).toBe(Math.min(keep, Math.min(k, g + m) - g));
          expect(nonzero).toBeLessThanOrEqual(keep);
        }
      }
    }
  });

  it('unstructured: exactly round(sparsity · len) (ties to even) pruned per output channel in every mask block', async () => {
    const roundHalfEven = (x: number): number => (Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x));
    const k = 90, n = 20;
    const layer = await randomLayer(k, n, 12);
    for (const [sparsity, columnBlock, maskBlock] of [[0.5, 128, 128], [0.25, 40, 16], [0.7, 30, 30]]) {
      const r = await obsSweep(layer.w, layer.sum, layer.rows, { k, n, percdamp: 0.01, actOrder: false, columnBlock, prune: { sparsity, maskBlock } });
      const mask = r.mask as Uint8Array;
      const cb = Math.min(columnBlock, k);
      for (let c = 0; c < n; c++) {
        for (let i1 = 0; i1 < k; i1 += cb) {
          const i2 = Math.min(k, i1 + cb);
          for (let b = i1; b < i2; b += maskBlock) {
            const len = Math.min(i2, b + maskBlock) - b;
            let pruned = 0;
            for (let i = b; i < b + len; i++) pruned += 1 - mask[i * n + c];
            expect(pruned, `sparsity ${sparsity} channel ${c} block ${b}`).toBe(roundHalfEven(sparsity * len));
          }
        }
      }
    }
  });

  it('the output error ‖(W − Ŵ)ᵀX‖² is below magnitude pruning\'s with the same counts, and loss predicts it', async () => {
    const k = 128, n = 48;
    const layer = await randomLayer(k, n, 21);
    for (const prune of [{ sparsity: 0.5, maskBlock: 32 }, { nm: { n: 2, m: 4 } }] as ObsPruneOptions[]) {
      const r = await obsSweep(layer.w, layer.sum, layer.rows, { k, n, percdamp: 1e-4, actOrder: false, columnBlock: 32, prune });
      // magnitude pruning: per channel, in the same blocks, the same number of smallest |w| set to 0, the rest untouched
      const span = prune.nm ? prune.nm.m : (prune.maskBlock as number);
      const magnitude = layer.w.slice();
      for (let c = 0; c < n; c++) {
        for (let b = 0; b < k; b += span) {
          const idx = Array.from({ length: span }, (_, t) => b + t).sort((x, y) => Math.abs(layer.w[x * n + c]) - Math.abs(layer.w[y * n + c]));
          const count = prune.nm ? span - prune.nm.n : Math.round((prune.sparsity as number) * span);
          for (const i of idx.slice(0, count)) magnitude[i * n + c] = 0;
        }
      }
      const sparse = outputError(layer, r.weight);
      const naive = outputError(layer, magnitude);
      expect(sparse, `${JSON.stringify(prune)}: SparseGPT ${sparse} vs magnitude ${naive}`).toBeLessThan(0.8 * naive);
      expect(Math.abs(sparse / (layer.rows * r.loss) - 1), `loss ${layer.rows * r.loss} vs ${sparse}`).toBeLessThan(0.1);
    }
  });
});

describe('obsSweep, quantize policy', () => {
  it('is GPTQ byte for byte (codes, scales, zero points, loss), and its swept weight is the dequantized layout', async () => {
    const k = 100, n = 33;
    const layer = await randomLayer(k, n, 5, [2]);
    for (const actOrder of [false, true]) {
      for (const symmetric of [true, false]) {
        const quantize = { bits: 4 as const, blockSize: 32, symmetric };
        const g = await gptqQuantize(layer.w, layer.sum, layer.rows, { k, n, ...quantize, columnBlock: 50, percdamp: 0.01, actOrder });
        const r = await obsSweep(layer.w, layer.sum, layer.rows, { k, n, columnBlock: 50, percdamp: 0.01, actOrder, quantize });
        const label = `actOrder=${actOrder} symmetric=${symmetric}`;
        const q = r.quantized as BlockwiseQuantized;
        expect(firstMismatches(q.packed, g.packed), label).toEqual([]);
        expect(firstMismatches(bytesOf(q.scales), bytesOf(g.scales)), label).toEqual([]);
        if (!symmetric) expect(firstMismatches(q.zeroPoints as Uint8Array, g.zeroPoints as Uint8Array), label).toEqual([]);
        expect(r.loss, label).toBe(g.loss);
        expect(r.sqError, label).toBe(g.sqError);
        expect(r.mask, label).toBeNull();
        expect(firstMismatches(bytesOf(r.weight), bytesOf(await dequantizeBlockwise(g))), label).toEqual([]);
      }
    }
  });

  it('3 bits (no MatMulNBits layout): every group of every channel takes at most 8 values; joint mode: pruned weights are 0 and the kept ones on the grid', async () => {
    const k = 64, n = 16;
    const layer = await randomLayer(k, n, 8);
    const r = await obsSweep(layer.w, layer.sum, layer.rows, { k, n, columnBlock: 64, percdamp: 0.01, actOrder: false, quantize: { bits: 3, blockSize: 32, symmetric: false } });
    expect(r.quantized).toBeNull();
    for (let c = 0; c < n; c++) {
      for (let g = 0; g < k; g += 32) {
        const values = new Set<number>();
        for (let i = g; i < g + 32; i++) values.add(r.weight[i * n + c]);
        expect(values.size).toBeLessThanOrEqual(8);
      }
    }
    const joint = await obsSweep(layer.w, layer.sum, layer.rows, {
      k, n, columnBlock: 64, percdamp: 0.01, actOrder: false, quantize: { bits: 4, blockSize: 32, symmetric: true }, prune: { sparsity: 0.5, maskBlock: 64 },
    });
    const deq = await dequantizeBlockwise(joint.quantized as BlockwiseQuantized);
    const mask = joint.mask as Uint8Array;
    for (let e = 0; e < k * n; e++) {
      expect(deq[e] === joint.weight[e], `element ${e}`).toBe(true);  // ±0 for pruned weights
      if (!mask[e]) expect(joint.weight[e] === 0).toBe(true);
    }
  });
});

describe('obsSweep, arguments', () => {
  it('rejects a missing or contradictory policy with INVALID_INPUT before any work', async () => {
    const k = 32, n = 16;
    const layer = await randomLayer(k, n, 2);
    const base = { k, n, percdamp: 0.01, actOrder: false, columnBlock: 32 };
    const bad: ObsSweepOptions[] = [
      base,
      { ...base, prune: { sparsity: 1.5 } },
      { ...base, actOrder: true, prune: { nm: { n: 2, m: 4 } } },
      { ...base, columnBlock: 30, prune: { nm: { n: 2, m: 4 } } },
      { ...base, prune: { nm: { n: 4, m: 4 } } },
      { ...base, quantize: { bits: 9, blockSize: 32, symmetric: true } },
      { ...base, quantize: { bits: 4, blockSize: 24, symmetric: true } },
    ];
    for (const opts of bad) {
      await expect(obsSweep(layer.w, layer.sum, layer.rows, opts), JSON.stringify(opts)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    }
    await expect(obsSweep(layer.w, new Float32Array(3), layer.rows, { ...base, prune: { sparsity: 0.5 } })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});
