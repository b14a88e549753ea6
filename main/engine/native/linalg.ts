/** float64 linear algebra, the Hessian core's building blocks (native-kernels/src/linalg.cc), and the references. */
import { callAsync, callSync, checkCount, checkLength, invalid, load } from './addon.ts';

function checkSquare(a: Float64Array, d: number, fn: string): void {
  if (!(a instanceof Float64Array)) throw invalid(`${fn}: a must be a Float64Array.`);
  checkCount(d, `${fn}: d`);
  checkLength(a, d * d, `${fn}: a`, 'd·d');
}

/**
 * A[d×d] = L·Lᵀ in place (row-major float64; the lower triangle is read, L overwrites it and the strict
 * upper triangle is zeroed). Blocked and multi-threaded. Resolves with -1 when A is positive definite,
 * otherwise with the index of the first pivot that is not positive (A is then left partly factored).
 */
export async function choleskyLower(a: Float64Array, d: number): Promise<number> {
  checkSquare(a, d, 'choleskyLower');
  return callAsync(() => load().choleskyLower(a, d));
}

/** L → L⁻¹ in place for a lower-triangular L[d×d] (float64, zero strict upper triangle, non-zero diagonal). */
export async function invertLower(a: Float64Array, d: number): Promise<Float64Array> {
  checkSquare(a, d, 'invertLower');
  return callAsync(() => load().invertLower(a, d));
}

/** Unblocked references. */
export const linalgReference = {
  /** Unblocked Cholesky (same contract as choleskyLower). */
  choleskyLower(a: Float64Array, d: number): number {
    checkSquare(a, d, 'choleskyLower');
    return callSync(() => load().choleskyLowerRef(a, d));
  },
  /** Forward-substitution inverse (same contract as invertLower). */
  invertLower(a: Float64Array, d: number): Float64Array {
    checkSquare(a, d, 'invertLower');
    callSync(() => load().invertLowerRef(a, d));
    return a;
  },
};
