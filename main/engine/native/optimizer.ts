/**
 * The optimizer's kernels (native-kernels/src/adamw.cc) over fp32 master weights, every trainable tensor
 * in one call:
 *
 *   adamwStep       AdamW, PyTorch's torch.optim.AdamW semantics, per element in float64 (step t ≥ 1):
 *                     g = grad · gradScale
 *                     m = β1·m + (1 − β1)·g,   v = β2·v + (1 − β2)·g²
 *                     w = w·(1 − lr·λ) − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε)
 *                   (decoupled decay, then w − lr·m̂/(√v̂ + ε)); where mask[i] = 0, w, m, v become exactly 0.
 *   gradSquaredSums Σ g² per tensor in float64, over the unmasked elements (for the global norm).
 *   addInto         dst += src per tensor (gradient accumulation over micro-batches).
 *
 * All three return promises: the addon works on a libuv thread and the shared pool; do not touch the
 * arrays until the promise settles. The AVX2 path of adamwStep gives the reference's bits exactly.
 * `optimizerReference` holds the synchronous scalar twins.
 */
import { callAsync, callSync, checkArray, invalid, load } from './addon.ts';

/** One parameter tensor of n elements, updated in place. */
export interface AdamwTensor {
  weights: Float32Array;
  grads: Float32Array;
  /** First and second moments (n each, zero at the start). */
  m: Float32Array;
  v: Float32Array;
  /** n bytes, 0 = pruned: that weight and its moments stay exactly 0. */
  mask?: Uint8Array | null;
  /** λ, decoupled weight decay for this tensor (0: none). */
  weightDecay: number;
}

export interface AdamwStepParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** t, 1-based (the bias corrections use β^t). */
  step: number;
  /** Multiplies every gradient first (1/tokens · clip factor). */
  gradScale: number;
}

interface OptimizerAddon {
  adamwStep(tensors: AdamwTensor[], params: AdamwStepParams): Promise<undefined>;
  adamwStepRef(tensors: AdamwTensor[], params: AdamwStepParams): void;
  gradSquaredSum(out: Float64Array, grads: Float32Array[], masks: (Uint8Array | null)[] | null): Promise<Float64Array>;
  gradSquaredSumRef(out: Float64Array, grads: Float32Array[], masks: (Uint8Array | null)[] | null): void;
  addInto(dst: Float32Array[], src: Float32Array[]): Promise<undefined>;
  addIntoRef(dst: Float32Array[], src: Float32Array[]): void;
}

const addon = (): OptimizerAddon => load() as unknown as OptimizerAddon;

function checkParams(p: AdamwStepParams): void {
  const finite = (x: number) => typeof x === 'number' && Number.isFinite(x);
  if (!finite(p.lr) || p.lr < 0) throw invalid(`lr must be a finite number ≥ 0, got ${String(p.lr)}.`);
  for (const name of ['beta1', 'beta2'] as const) {
    if (!finite(p[name]) || p[name] < 0 || p[name] >= 1) throw invalid(`${name} must lie in [0, 1), got ${String(p[name])}.`);
  }
  if (!finite(p.eps) || p.eps <= 0) throw invalid(`eps must be a positive number, got ${String(p.eps)}.`);
  if (!Number.isSafeInteger(p.step) || p.step < 1) throw invalid(`step must be an integer ≥ 1 (the first step is 1), got ${String(p.step)}.`);
  if (!finite(p.gradScale) || p.gradScale < 0) throw invalid(`gradScale must be a finite number ≥ 0, got ${String(p.gradScale)}.`);
}

function checkTensors(tensors: AdamwTensor[]): void {
  tensors.forEach((t, i) => {
    for (const key of ['weights', 'grads', 'm', 'v'] as const) {
      checkArray(t[key], Float32Array, `tensors[${i}].${key}`);
      if (t[key].length !== t.weights.length) {
        throw invalid(`tensors[${i}].${key} holds ${t[key].length} elements but its weights hold ${t.weights.length}.`);
      }
    }
    if (t.mask) {
      checkArray(t.mask, Uint8Array, `tensors[${i}].mask`);
      if (t.mask.length !== t.weights.length) throw invalid(`tensors[${i}].mask holds ${t.mask.length} bytes but its weights hold ${t.weights.length} elements.`);
    }
  });
}

function checkPairs(dst: Float32Array[], src: Float32Array[]): void {
  if (dst.length !== src.length) throw invalid(`dst and src must hold the same number of arrays: ${dst.length} and ${src.length}.`);
  dst.forEach((d, i) => {
    checkArray(d, Float32Array, `dst[${i}]`);
    checkArray(src[i], Float32Array, `src[${i}]`);
    if (d.length !== src[i].length) throw invalid(`src[${i}] holds ${src[i].length} elements but dst[${i}] holds ${d.length}.`);
  });
}

function checkGrads(grads: Float32Array[], masks?: (Uint8Array | null | undefined)[]): (Uint8Array | null)[] | null {
  grads.forEach((g, i) => checkArray(g, Float32Array, `grads[${i}]`));
  if (!masks) return null;
  if (masks.length !== grads.length) throw invalid(`masks must hold one entry (or null) per gradient: ${grads.length}, got ${masks.length}.`);
  return masks.map((m, i) => {
    if (!m) return null;
    checkArray(m, Uint8Array, `masks[${i}]`);
    if (m.length !== grads[i].length) throw invalid(`masks[${i}] holds ${m.length} bytes but grads[${i}] holds ${grads[i].length} elements.`);
    return m;
  });
}

/** One AdamW step over every tensor, in place (see the header). */
export async function adamwStep(tensors: AdamwTensor[], params: AdamwStepParams): Promise<void> {
  checkParams(params);
  checkTensors(tensors);
  await callAsync(() => addon().adamwStep(tensors, params));
}

/** Σ g² per tensor (float64), over the elements whose mask byte is non-zero (all, without a mask). */
export async function gradSquaredSums(grads: Float32Array[], masks?: (Uint8Array | null | undefined)[]): Promise<Float64Array> {
  const m = checkGrads(grads, masks);
  return callAsync(() => addon().gradSquaredSum(new Float64Array(grads.length), grads, m));
}

/** dst[t] += src[t] for every pair (gradient accumulation). */
export async function addInto(dst: Float32Array[], src: Float32Array[]): Promise<void> {
  checkPairs(dst, src);
  await callAsync(() => addon().addInto(dst, src));
}

/** The scalar, single-threaded references of adamwStep / gradSquaredSums / addInto. */
export const optimizerReference = {
  adamwStep(tensors: AdamwTensor[], params: AdamwStepParams): void {
    checkParams(params);
    checkTensors(tensors);
    callSync(() => addon().adamwStepRef(tensors, params));
  },
  gradSquaredSums(grads: Float32Array[], masks?: (Uint8Array | null | undefined)[]): Float64Array {
    const m = checkGrads(grads, masks);
    const out = new Float64Array(grads.length);
    callSync(() => addon().gradSquaredSumRef(out, grads, m));
    return out;
  },
  addInto(dst: Float32Array[], src: Float32Array[]): void {
    checkPairs(dst, src);
    callSync(() => addon().addIntoRef(dst, src));
  },
};
