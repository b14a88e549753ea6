/** The layer-input Hessian shared by GPTQ and SparseGPT (native-kernels/src/hessian.cc), and the references. */
import { callAsync, callSync, checkArray, checkCount, checkLength, invalid, load, type PrepareParams } from './addon.ts';

function checkAccumulate(h: Float32Array, x: Float32Array, n: number, d: number): void {
  checkArray(h, Float32Array, 'hessianAccumulate: h');
  checkArray(x, Float32Array, 'hessianAccumulate: x');
  checkCount(n, 'hessianAccumulate: n');
  checkCount(d, 'hessianAccumulate: d', 1);
  checkLength(h, d * d, 'hessianAccumulate: h', 'd·d');
  checkLength(x, n * d, 'hessianAccumulate: x', 'n·d');
}

/**
 * H[d×d] += Xᵀ·X for a batch X [n×d] (row-major float32): H is float32, both triangles updated in place
 * (by the same increments, so a symmetric H stays exactly symmetric). Multi-threaded SYRK.
 */
export async function hessianAccumulate(h: Float32Array, x: Float32Array, n: number, d: number): Promise<void> {
  checkAccumulate(h, x, n, d);
  await callAsync(() => load().hessianAccumulate(h, x, n, d));
}

export interface PrepareHessianOptions {
  /** Dampening: H += percdamp · mean(diag H) · I (GPTQ: 0.01). ≥ 0. */
  percdamp: number;
  /** Sweep order: order[a] = the input at position a (a permutation of 0..d−1), e.g. hessianActOrder. */
  order?: Int32Array;
  /** Names the layer in error messages ("the Hessian of <label> is not positive definite"). */
  label?: string;
}

export interface PreparedHessian {
  /** U [d×d] row-major, upper triangular (zero below the diagonal), Uᵀ·U = H⁻¹, rows and columns in sweep order. */
  hinvUpper: Float32Array;
  /** Dead inputs (S[i,i] == 0), ascending: their weights must be zeroed. */
  dead: Int32Array;
  /** The order it was prepared in (null: natural order). */
  order: Int32Array | null;
}

interface PreparePlan {
  hinvUpper: Float32Array;
  deadMask: Uint8Array;
  order: Int32Array | null;
  params: PrepareParams;
}

export function checkPercdamp(percdamp: unknown): number {
  if (typeof percdamp !== 'number' || !Number.isFinite(percdamp) || percdamp < 0) {
    throw invalid(`percdamp must be a finite number ≥ 0, got ${String(percdamp)}.`);
  }
  return percdamp;
}

export function checkRowCount(count: unknown): number {
  if (typeof count !== 'number' || !Number.isFinite(count) || count <= 0) {
    throw invalid(`count (the calibration rows summed into the Hessian) must be a positive number, got ${String(count)}.`);
  }
  return count;
}

function planPrepare(sum: Float32Array, d: number, count: number, opts: PrepareHessianOptions): PreparePlan {
  checkArray(sum, Float32Array, 'prepareHessian: sum');
  checkCount(d, 'prepareHessian: d', 1);
  checkLength(sum, d * d, 'prepareHessian: sum', 'd·d');
  checkRowCount(count);
  if (typeof opts !== 'object' || opts === null) throw invalid('prepareHessian: options are required.');
  const percdamp = checkPercdamp(opts.percdamp);
  const order = opts.order ?? null;
  if (order !== null) {
    if (!(order instanceof Int32Array)) throw invalid('prepareHessian: order must be an Int32Array.');
    checkLength(order, d, 'prepareHessian: order', 'd');
  }
  const params: PrepareParams = { count, percdamp };
  if (order) params.order = order;
  if (opts.label !== undefined) params.label = String(opts.label);
  return { hinvUpper: new Float32Array(d * d), deadMask: new Uint8Array(d), order, params };
}

function finishPrepare(p: PreparePlan, deadCount: number): PreparedHessian {
  const dead = new Int32Array(deadCount);
  let j = 0;
  for (let i = 0; i < p.deadMask.length; i++) if (p.deadMask[i]) dead[j++] = i;
  return { hinvUpper: p.hinvUpper, dead, order: p.order };
}

/**
 * The shared Hessian core (GPTQ and SparseGPT): from S = Σ XᵀX over `count` rows, H = 2/count · S;
 * dead inputs (S[i,i] = 0) get H[i,i] = 1 and are reported; H += percdamp · mean(diag H) · I; optionally
 * permuted (opts.order); returns U, the upper Cholesky factor of H⁻¹ (float64 inside: one blocked
 * Cholesky of the reversed H and one triangular inverse, multi-threaded). A damped H that is not
 * positive definite → INVALID_INPUT "The Hessian of <label> is not positive definite …; increase percdamp."
 */
export async function prepareHessian(sum: Float32Array, d: number, count: number, opts: PrepareHessianOptions): Promise<PreparedHessian> {
  const p = planPrepare(sum, d, count, opts);
  const dead = await callAsync(() => load().prepareHessian(p.hinvUpper, p.deadMask, sum, d, p.params));
  return finishPrepare(p, dead);
}

/** GPTQ's act-order: inputs by decreasing diag(H) (dead inputs count as 1), ties in input order. Synchronous, O(d log d). */
export function hessianActOrder(sum: Float32Array, d: number, count: number): Int32Array {
  checkArray(sum, Float32Array, 'hessianActOrder: sum');
  checkCount(d, 'hessianActOrder: d', 1);
  checkLength(sum, d * d, 'hessianActOrder: sum', 'd·d');
  checkRowCount(count);
  const order = new Int32Array(d);
  callSync(() => load().hessianActOrder(order, sum, d, count));
  return order;
}

/** Plain double-precision references. */
export const hessianReference = {
  /** H[i,j] += Σ_t x[t,i]·x[t,j], each sum taken in double. */
  hessianAccumulate(h: Float32Array, x: Float32Array, n: number, d: number): void {
    checkAccumulate(h, x, n, d);
    callSync(() => load().hessianAccumulateRef(h, x, n, d));
  },
  /** GPTQ's literal sequence in double: chol(H) → cholesky_inverse → chol(·, upper). */
  prepareHessian(sum: Float32Array, d: number, count: number, opts: PrepareHessianOptions): PreparedHessian {
    const p = planPrepare(sum, d, count, opts);
    const dead = callSync(() => load().prepareHessianRef(p.hinvUpper, p.deadMask, sum, d, p.params));
    return finishPrepare(p, dead);
  },
};
