/**
 * The Hessian core (native-kernels/src/hessian.cc):
 *  - hessianAccumulate (H += XᵀX, tiled SYRK) vs the naive double loop, within the float32 dot-product
 *    bound |fast − ref| <= (n + 4) · 2^-23 · (Σ_t |x_ti·x_tj| + |h_ij|) (Higham §3.1, as the GEMM test);
 *    three batches vs one within twice that; H stays exactly symmetric.
 *  - prepareHessian (reversed Cholesky + triangular inverse, float64, blocked) vs the reference (GPTQ's
 *    literal chol → cholesky_inverse → chol, unblocked) within |fast − ref| <= 2^-20 · max|U| + 2^-22·|ref|
 *    (both are float64 computations of the same U, rounded once to float32; the slack covers one float32
 *    rounding step either way and float64 error grown by cond(H) ≤ ~1e4 with 1 % damping), and against a
 *    direct float64 check: Uᵀ·U·H = I within 1e-3 (U is rounded to float32: relative error 2^-24 · cond(H)).
 *  - dead inputs, act-order, the not-positive-definite error.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  hessianAccumulate, hessianActOrder, prepareHessian, reference, setForceBaseline, setThreads,
} from '../../../main/engine/native/index.ts';
import { activations } from './calibration-data.ts';
import { rng, simdPaths, useSimdPath } from './simd-paths.ts';

afterAll(() => {
  setForceBaseline(false);
  setThreads(0);
});

function checkAccumulateBound(fast: Float32Array, ref: Float32Array, x: Float32Array, h0: Float32Array, n: number, d: number, factor: number): void {
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let abs = 0;
      for (let t = 0; t < n; t++) abs += Math.abs(x[t * d + i] * x[t * d + j]);
      const bound = factor * (n + 4) * 2 ** -23 * (abs + Math.abs(h0[i * d + j])) + 1e-30;
      const diff = Math.abs(fast[i * d + j] - ref[i * d + j]);
      if (!(diff <= bound)) throw new Error(`H[${i},${j}] = ${fast[i * d + j]}, reference ${ref[i * d + j]} (bound ${bound})`);
    }
  }
}

function expectSymmetric(h: Float32Array, d: number): void {
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) if (h[i * d + j] !== h[j * d + i]) throw new Error(`H[${i},${j}] ≠ H[${j},${i}]`);
}

/** A symmetric starting H (so that accumulating onto existing content is covered). */
function startingH(d: number, seed: number): Float32Array {
  const next = rng(seed);
  const h = new Float32Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j <= i; j++) h[i * d + j] = h[j * d + i] = next() * 2 - 1;
  return h;
}

describe.each(simdPaths())('hessianAccumulate fast path (%s) vs reference', (path) => {
  it('d in 1, 7, 100, 193, 400 (tiles of 192) × n in 1, 50, 300 (slices of 256): within the dot-product bound, symmetric', async () => {
    useSimdPath(path);
    for (const d of [1, 7, 100, 193, 400]) {
      for (const n of [1, 50, 300]) {
        if (d === 400 && n === 300) continue;  // the reference's O(n·d²) in JavaScript-facing sync code stays small
        const x = activations(n, d, d * 1000 + n, d > 5 ? [3] : []);
        const h0 = startingH(d, d + n);
        const fast = h0.slice();
        const ref = h0.slice();
        await hessianAccumulate(fast, x, n, d);
        reference.hessianAccumulate(ref, x, n, d);
        checkAccumulateBound(fast, ref, x, h0, n, d, 1);
        expectSymmetric(fast, d);
        if (d > 5) {
          for (let j = 0; j < d; j++) expect(fast[3 * d + j]).toBe(h0[3 * d + j]);  // the dead input adds nothing
        }
      }
    }
  });
});

describe('hessianAccumulate', () => {
  it('three batches give the one-batch sum (within twice the bound) and n = 0 changes nothing', async () => {
    const d = 150;
    const n = 420;
    const x = activations(n, d, 11);
    const once = new Float32Array(d * d);
    await hessianAccumulate(once, x, n, d);
    const thrice = new Float32Array(d * d);
    for (const [t0, t1] of [[0, 100], [100, 357], [357, 420]]) {
      await hessianAccumulate(thrice, x.subarray(t0 * d, t1 * d), t1 - t0, d);
    }
    checkAccumulateBound(thrice, once, x, new Float32Array(d * d), n, d, 2);
    expectSymmetric(thrice, d);
    const before = thrice.slice();
    await hessianAccumulate(thrice, new Float32Array(0), 0, d);
    expect(thrice).toEqual(before);
  });

  it('rejects mismatched sizes with INVALID_INPUT before any work', async () => {
    await expect(hessianAccumulate(new Float32Array(9), new Float32Array(7), 2, 3)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(hessianAccumulate(new Float32Array(8), new Float32Array(6), 2, 3)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});

/** H = 2/count · S, dead diag → 1, damped, permuted: the matrix U must invert (in float64). */
function dampedHessian(sum: Float32Array, d: number, count: number, percdamp: number, order: Int32Array | null): Float64Array {
  const h = new Float64Array(d * d);
  let mean = 0;
  for (let i = 0; i < d; i++) mean += sum[i * d + i] === 0 ? 1 : (2 / count) * sum[i * d + i];
  mean /= d;
  const at = (a: number): number => (order ? order[a] : a);
  for (let a = 0; a < d; a++) {
    for (let b = 0; b < d; b++) {
      const i = at(a), j = at(b);
      h[a * d + b] = (2 / count) * sum[i * d + j];
    }
    const i = at(a);
    h[a * d + a] = (sum[i * d + i] === 0 ? 1 : (2 / count) * sum[i * d + i]) + percdamp * mean;
  }
  return h;
}

/** max |(Uᵀ·U·H)[i,j] − δ_ij|. */
function inverseResidual(u: Float32Array, h: Float64Array, d: number): number {
  const hinv = new Float64Array(d * d);  // Uᵀ·U
  for (let a = 0; a < d; a++) {
    for (let b = 0; b < d; b++) {
      let s = 0;
      for (let p = 0; p <= Math.min(a, b); p++) s += u[p * d + a] * u[p * d + b];
      hinv[a * d + b] = s;
    }
  }
  let worst = 0;
  for (let a = 0; a < d; a++) {
    for (let b = 0; b < d; b++) {
      let s = 0;
      for (let p = 0; p < d; p++) s += hinv[a * d + p] * h[p * d + b];
      worst = Math.max(worst, Math.abs(s - (a === b ? 1 : 0)));
    }
  }
  return worst;
}

describe.each(simdPaths())('prepareHessian fast path (%s)', (path) => {
  it('d in 1, 64, 129, 300 (blocks of 128), natural and act-order: U matches the reference and inverts H; dead inputs reported', async () => {
    useSimdPath(path);
    for (const d of [1, 64, 129, 300]) {
      const dead = d > 10 ? [0, 5, d - 1] : [];
      const rows = 2 * d + 7;
      const x = activations(rows, d, d, dead);
      const sum = new Float32Array(d * d);
      reference.hessianAccumulate(sum, x, rows, d);
      for (const actOrder of [false, true]) {
        const order = actOrder ? hessianActOrder(sum, d, rows) : undefined;
        const fast = await prepareHessian(sum, d, rows, { percdamp: 0.01, order });
        const ref = reference.prepareHessian(sum, d, rows, { percdamp: 0.01, order });
        const label = `d=${d} actOrder=${actOrder}`;
        expect(Array.from(fast.dead), label).toEqual(dead);
        expect(Array.from(ref.dead), label).toEqual(dead);
        expect(fast.order, label).toBe(order ?? null);
        let maxU = 0;
        for (const v of ref.hinvUpper) maxU = Math.max(maxU, Math.abs(v));
        for (let a = 0; a < d; a++) {
          for (let b = 0; b < d; b++) {
            const f = fast.hinvUpper[a * d + b], r = ref.hinvUpper[a * d + b];
            if (b < a) {
              expect(f).toBe(0);
              continue;
            }
            const bound = 2 ** -20 * maxU + 2 ** -22 * Math.abs(r);
            if (!(Math.abs(f - r) <= bound)) throw new Error(`${label}: U[${a},${b}] = ${f}, reference ${r} (bound ${bound})`);
          }
          expect(fast.hinvUpper[a * d + a]).toBeGreaterThan(0);
        }
        expect(inverseResidual(fast.hinvUpper, dampedHessian(sum, d, rows, 0.01, order ?? null), d), label).toBeLessThan(1e-3);
      }
    }
  });
});

describe('prepareHessian', () => {
  it('act-order sorts by decreasing diag(H), dead inputs counting as 1, ties in input order', () => {
    const d = 6;
    const sum = new Float32Array(d * d);
    const diag = [4, 0, 9, 4, 1, 0];  // count 2 → H diag = S diag; dead (0) → 1
    diag.forEach((v, i) => { sum[i * d + i] = v; });
    expect(Array.from(hessianActOrder(sum, d, 2))).toEqual([2, 0, 3, 1, 4, 5]);
  });

  it('is identical on 1 thread and on all threads', async () => {
    const d = 300;
    const x = activations(500, d, 5, [7]);
    const sum = new Float32Array(d * d);
    await hessianAccumulate(sum, x, 500, d);
    setThreads(1);
    const one = await prepareHessian(sum, d, 500, { percdamp: 0.01 });
    setThreads(0);
    const all = await prepareHessian(sum, d, 500, { percdamp: 0.01 });
    expect(Buffer.from(all.hinvUpper.buffer).equals(Buffer.from(one.hinvUpper.buffer))).toBe(true);
  });

  it('a Hessian that is not positive definite after damping → INVALID_INPUT naming the layer and asking for more percdamp', async () => {
    // S = [[1, 2], [2, 1]] is indefinite (eigenvalues 3 and −1); 1 % damping cannot fix it.
    const sum = Float32Array.from([1, 2, 2, 1]);
    const message = /^The Hessian of model\.layers\.0\.mlp\.down_proj is not positive definite .*; increase percdamp\.$/;
    await expect(prepareHessian(sum, 2, 10, { percdamp: 0.01, label: 'model.layers.0.mlp.down_proj' }))
      .rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(message) });
    expect(() => reference.prepareHessian(sum, 2, 10, { percdamp: 0.01, label: 'model.layers.0.mlp.down_proj' })).toThrow(message);
    // Large enough damping makes it positive definite: mean diag = 0.2, H + 2·0.2·I has eigenvalues 1.0, 0.2.
    await expect(prepareHessian(sum, 2, 10, { percdamp: 2 })).resolves.toMatchObject({ dead: new Int32Array(0) });
  });

  it('rejects bad arguments: count 0, negative percdamp, an order that is not a permutation, NaN in the sum', async () => {
    const sum = Float32Array.from([2, 0, 0, 2]);
    await expect(prepareHessian(sum, 2, 0, { percdamp: 0.01 })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(prepareHessian(sum, 2, 4, { percdamp: -1 })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(prepareHessian(sum, 2, 4, { percdamp: 0.01, order: Int32Array.from([1, 1]) }))
      .rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('permutation') });
    await expect(prepareHessian(Float32Array.from([2, NaN, NaN, 2]), 2, 4, { percdamp: 0.01 }))
      .rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('NaN or infinite') });
  });
});
