/**
 * float64 blocked Cholesky and lower-triangular inverse (native-kernels/src/linalg.cc, multi-threaded,
 * AVX2+FMA or baseline micro-kernel) vs the unblocked references, on sizes around the block (128) and
 * tile (128) edges. Tolerance: |fast − ref| <= 1e-11 · max|ref| — both are backward stable in float64
 * (Higham, "Accuracy and Stability of Numerical Algorithms", §10.1 and §8.2) and the test matrices are
 * well conditioned (A = B·Bᵀ/d + I, cond(A) < 10), so the two agree to ~1e-14 of the largest entry.
 * Also checked directly: L·Lᵀ = A and L·L⁻¹ = I within 1e-11.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { choleskyLower, invertLower, reference, setForceBaseline, setThreads } from '../../../main/engine/native/index.ts';
import { rng, simdPaths, useSimdPath } from './simd-paths.ts';

afterAll(() => {
  setForceBaseline(false);
  setThreads(0);
});

/** A = B·Bᵀ/d + I, B [d×d] uniform in [−1, 1]: symmetric positive definite, eigenvalues in [1, ~5]. */
function spd(d: number, seed: number): Float64Array {
  const next = rng(seed);
  const b = Float64Array.from({ length: d * d }, () => next() * 2 - 1);
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let p = 0; p < d; p++) s += b[i * d + p] * b[j * d + p];
      a[i * d + j] = a[j * d + i] = s / d + (i === j ? 1 : 0);
    }
  }
  return a;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

function expectClose(fast: Float64Array, ref: Float64Array, what: string): void {
  const bound = 1e-11 * maxAbs(ref);
  for (let i = 0; i < ref.length; i++) {
    if (!(Math.abs(fast[i] - ref[i]) <= bound)) throw new Error(`${what}[${i}] = ${fast[i]}, reference ${ref[i]} (bound ${bound})`);
  }
}

/** max |(L·Lᵀ)[i,j] − A[i,j]| over the lower triangle. */
function reconstructionError(l: Float64Array, a: Float64Array, d: number): number {
  let worst = 0;
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let p = 0; p <= j; p++) s += l[i * d + p] * l[j * d + p];
      worst = Math.max(worst, Math.abs(s - a[i * d + j]));
    }
  }
  return worst;
}

/** max |(L·M)[i,j] − δ_ij| for lower-triangular L and M. */
function inverseError(l: Float64Array, m: Float64Array, d: number): number {
  let worst = 0;
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let p = j; p <= i; p++) s += l[i * d + p] * m[p * d + j];
      worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
    }
  }
  return worst;
}

const SIZES = [1, 5, 127, 128, 129, 300, 517];

describe.each(simdPaths())('choleskyLower / invertLower fast path (%s) vs reference', (path) => {
  it(`sizes ${SIZES.join(', ')}: same factor and inverse within 1e-11 of the largest entry; L·Lᵀ = A, L·L⁻¹ = I`, async () => {
    useSimdPath(path);
    for (const d of SIZES) {
      const a = spd(d, d);
      const fastL = a.slice();
      const refL = a.slice();
      expect(await choleskyLower(fastL, d), `d=${d}`).toBe(-1);
      expect(reference.choleskyLower(refL, d), `d=${d}`).toBe(-1);
      expectClose(fastL, refL, `L (d=${d})`);
      for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) expect(fastL[i * d + j]).toBe(0);
      expect(reconstructionError(fastL, a, d), `d=${d}`).toBeLessThan(1e-11);

      const fastM = await invertLower(fastL.slice(), d);
      const refM = reference.invertLower(refL.slice(), d);
      expectClose(fastM, refM, `L⁻¹ (d=${d})`);
      for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) expect(fastM[i * d + j]).toBe(0);
      expect(inverseError(fastL, fastM, d), `d=${d}`).toBeLessThan(1e-11);
    }
  });
});

describe('choleskyLower', () => {
  it('gives the same result on 1 thread as on all threads (the tiles own disjoint parts of A)', async () => {
    const d = 300;
    const a = spd(d, 7);
    setThreads(1);
    const one = a.slice();
    await choleskyLower(one, d);
    const oneInv = await invertLower(one.slice(), d);
    setThreads(0);
    const all = a.slice();
    await choleskyLower(all, d);
    const allInv = await invertLower(all.slice(), d);
    expect(Buffer.from(all.buffer).equals(Buffer.from(one.buffer))).toBe(true);
    expect(Buffer.from(allInv.buffer).equals(Buffer.from(oneInv.buffer))).toBe(true);
  });

  it('reports the first pivot that is not positive, as the reference does (in the first block and beyond it)', async () => {
    for (const [d, bad] of [[10, 4], [300, 200]] as const) {
      const a = spd(d, 3);
      // Make input `bad` a copy of input `bad − 1` (singular, pivot 0 up to rounding), then push it below.
      for (let j = 0; j < d; j++) {
        a[bad * d + j] = a[(bad - 1) * d + j];
        a[j * d + bad] = a[j * d + bad - 1];
      }
      a[bad * d + bad] = a[(bad - 1) * d + bad - 1] - 0.5;
      expect(await choleskyLower(a.slice(), d)).toBe(bad);
      expect(reference.choleskyLower(a.slice(), d)).toBe(bad);
    }
  });

  it('rejects arrays of the wrong type or size', async () => {
    await expect(choleskyLower(new Float64Array(5), 2)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(invertLower(new Float32Array(4) as unknown as Float64Array, 2)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});
