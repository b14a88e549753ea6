/** Blocked multi-threaded SGEMM (native-kernels/src/gemm.cc), and its reference. */
import { callAsync, callSync, checkArray, checkCount, checkLength, invalid, load } from './addon.ts';

export interface GemmOptions {
  /** B is stored [N, K] and used transposed. */
  transB?: boolean;
  /** Default 1. */
  alpha?: number;
  /** Default 0. Non-zero needs `c`: C = alpha·A·B + beta·C. */
  beta?: number;
  /** Output [M, N], updated in place and returned. Without it a new array is returned. */
  c?: Float32Array;
}

interface GemmPlan {
  c: Float32Array;
  transB: boolean;
  alpha: number;
  beta: number;
}

function planGemm(a: Float32Array, b: Float32Array, m: number, n: number, k: number, opts: GemmOptions): GemmPlan {
  checkArray(a, Float32Array, 'a');
  checkArray(b, Float32Array, 'b');
  checkCount(m, 'm');
  checkCount(n, 'n');
  checkCount(k, 'k');
  const transB = opts.transB ?? false;
  const alpha = opts.alpha ?? 1;
  const beta = opts.beta ?? 0;
  if (!Number.isFinite(alpha) || !Number.isFinite(beta)) throw invalid('gemm: alpha and beta must be finite numbers.');
  checkLength(a, m * k, 'gemm: a', 'm·k');
  checkLength(b, k * n, 'gemm: b', transB ? 'n·k' : 'k·n');
  if (opts.c === undefined && beta !== 0) throw invalid('gemm: beta ≠ 0 needs an input matrix c.');
  let c: Float32Array;
  if (opts.c !== undefined) {
    checkArray(opts.c, Float32Array, 'gemm: c');
    checkLength(opts.c, m * n, 'gemm: c', 'm·n');
    c = opts.c;
  } else {
    c = new Float32Array(m * n);
  }
  return { c, transB, alpha, beta };
}

/**
 * C[M,N] = alpha · A[M,K] · B + beta · C, row-major; B is [K,N], or [N,K] used transposed with transB.
 * Without opts.c a new C is returned; with it, C is updated in place and returned.
 */
export async function gemm(a: Float32Array, b: Float32Array, m: number, n: number, k: number, opts: GemmOptions = {}): Promise<Float32Array> {
  const p = planGemm(a, b, m, n, k, opts);
  return callAsync(() => load().gemm(p.c, a, b, m, n, k, p.transB, p.alpha, p.beta));
}

/** The triple-loop reference. */
export const gemmReference = {
  gemm(a: Float32Array, b: Float32Array, m: number, n: number, k: number, opts: GemmOptions = {}): Float32Array {
    const p = planGemm(a, b, m, n, k, opts);
    callSync(() => load().gemmRef(p.c, a, b, m, n, k, p.transB, p.alpha, p.beta));
    return p.c;
  },
};
