/**
 * SGEMM fast (AVX2+FMA or baseline micro-kernel, blocked, multi-threaded) vs the naive double-accumulating
 * reference. Tolerance, per element: |fast − ref| <= (K + 4) · 2^-23 · (|alpha| · Σ_k |a_ik||b_kj| + |beta||c_ij|)
 * — the classic float32 dot-product error bound (Higham, "Accuracy and Stability of Numerical Algorithms",
 * §3.1: γ_K ≈ K·u, u = 2^-24) with room for the alpha/beta updates.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { gemm, reference, setForceBaseline } from '../../../main/engine/native/index.ts';
import { rng, simdPaths, useSimdPath } from './simd-paths.ts';

afterAll(() => setForceBaseline(false));

function randomMatrix(next: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => next() * 2 - 1);
}

interface Case { m: number; n: number; k: number; transB: boolean; alpha: number; beta: number }

/** Runs fast and reference on the same inputs; returns the worst error as a fraction of the allowed bound. */
async function worstRatio(c: Case, seed: number): Promise<number> {
  const next = rng(seed);
  const a = randomMatrix(next, c.m * c.k);
  const b = randomMatrix(next, c.k * c.n);
  const c0 = randomMatrix(next, c.m * c.n);
  const useC = c.beta !== 0;
  const fast = await gemm(a, b, c.m, c.n, c.k, { transB: c.transB, alpha: c.alpha, beta: c.beta, c: useC ? c0.slice() : undefined });
  const ref = reference.gemm(a, b, c.m, c.n, c.k, { transB: c.transB, alpha: c.alpha, beta: c.beta, c: useC ? c0.slice() : undefined });
  // Σ_k |a_ik||b_kj| from the reference GEMM on absolute values.
  const absSum = reference.gemm(a.map(Math.abs), b.map(Math.abs), c.m, c.n, c.k, { transB: c.transB });
  let worst = 0;
  for (let i = 0; i < fast.length; i++) {
    const bound = (c.k + 4) * 2 ** -23 * (Math.abs(c.alpha) * absSum[i] + (useC ? Math.abs(c.beta * c0[i]) : 0)) + 1e-30;
    const diff = Math.abs(fast[i] - ref[i]);
    if (!(diff <= bound)) throw new Error(`C[${Math.floor(i / c.n)},${i % c.n}] = ${fast[i]}, reference ${ref[i]} (bound ${bound})`);
    worst = Math.max(worst, diff / bound);
  }
  return worst;
}

const SIZES = [1, 7, 33, 65, 130];

describe.each(simdPaths())('gemm fast path (%s) vs reference', (path) => {
  it('every combination of odd sizes 1, 7, 33, 65, 130 for M, N and K, plain and transB', async () => {
    useSimdPath(path);
    let seed = 1;
    let worst = 0;
    for (const m of SIZES) {
      for (const n of SIZES) {
        for (const k of SIZES) {
          const transB = seed % 2 === 0;
          worst = Math.max(worst, await worstRatio({ m, n, k, transB, alpha: 1, beta: 0 }, seed++));
        }
      }
    }
    expect(worst).toBeLessThanOrEqual(1);
  });

  it('alpha and beta, and shapes that cross the cache blocks (K > 256, M > 96, N > 256)', async () => {
    useSimdPath(path);
    const cases: Case[] = [
      { m: 33, n: 65, k: 7, transB: false, alpha: 0.5, beta: 2 },
      { m: 65, n: 33, k: 130, transB: true, alpha: -1.25, beta: -0.5 },
      { m: 7, n: 130, k: 65, transB: false, alpha: 3, beta: 1 },
      { m: 200, n: 300, k: 513, transB: false, alpha: 1, beta: 0 },
      { m: 97, n: 257, k: 600, transB: true, alpha: 0.75, beta: 1.5 },
      { m: 1, n: 1000, k: 700, transB: true, alpha: 1, beta: 0 },
      { m: 520, n: 3, k: 260, transB: false, alpha: 2, beta: 0.25 },
    ];
    let seed = 100;
    for (const c of cases) expect(await worstRatio(c, seed++), JSON.stringify(c)).toBeLessThanOrEqual(1);
  });

  it('beta = 0 ignores what C held (NaN included); alpha = 0 or K = 0 only scales C', async () => {
    useSimdPath(path);
    const next = rng(5);
    const a = randomMatrix(next, 7 * 9);
    const b = randomMatrix(next, 9 * 5);
    const c = new Float32Array(7 * 5).fill(NaN);
    const out = await gemm(a, b, 7, 5, 9, { c, beta: 0 });
    expect(out).toBe(c);  // updated in place
    expect(out.every(Number.isFinite)).toBe(true);
    const ref = reference.gemm(a, b, 7, 5, 9);
    expect(Math.max(...out.map((x, i) => Math.abs(x - ref[i])))).toBeLessThan(1e-5);

    const c2 = Float32Array.from({ length: 35 }, (_, i) => i);
    await gemm(a.map(() => Infinity), b, 7, 5, 9, { c: c2, alpha: 0, beta: 2 });
    expect(Array.from(c2)).toEqual(Array.from({ length: 35 }, (_, i) => 2 * i));

    const c3 = Float32Array.from({ length: 6 }, (_, i) => i + 1);
    await gemm(new Float32Array(0), new Float32Array(0), 2, 3, 0, { c: c3, beta: -1 });
    expect(Array.from(c3)).toEqual([-1, -2, -3, -4, -5, -6]);
  });

  it('gives the same result with 1 thread and with all threads', async () => {
    useSimdPath(path);
    const { setThreads } = await import('../../../main/engine/native/index.ts');
    const next = rng(9);
    const a = randomMatrix(next, 150 * 300);
    const b = randomMatrix(next, 300 * 170);
    setThreads(1);
    const one = await gemm(a, b, 150, 170, 300);
    setThreads(0);
    const all = await gemm(a, b, 150, 170, 300);
    expect(Buffer.from(one.buffer).equals(Buffer.from(all.buffer))).toBe(true);
  });
});

describe('gemm argument checks', () => {
  it('rejects wrong sizes, beta without C, and C sharing memory with A', async () => {
    const a = new Float32Array(6);
    const b = new Float32Array(12);
    await expect(gemm(a, b, 2, 4, 4)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/a must hold m·k = 8/) });
    await expect(gemm(a, b, 2, 4, 3, { beta: 1 })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/beta/) });
    await expect(gemm(a, b, 2, 4, 3, { c: new Float32Array(7) })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(gemm(a, b, 2.5, 4, 3)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    const shared = new Float32Array(14);
    await expect(gemm(shared.subarray(0, 6), b, 2, 4, 3, { c: shared.subarray(6, 14) })).resolves.toBeInstanceOf(Float32Array);
    await expect(gemm(shared.subarray(0, 6), b, 2, 4, 3, { c: shared.subarray(5, 13) })).rejects.toMatchObject({
      code: 'INVALID_INPUT', message: expect.stringMatching(/share memory/),
    });
    expect(() => reference.gemm(a, b, 3, 4, 3)).toThrow(/m·k/);
  });
});
