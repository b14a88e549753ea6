/**
 * The optimal-brain-surgeon column sweep shared by GPTQ and SparseGPT (native-kernels/src/obs_sweep.h):
 * one MatMul weight W [K, N] (ONNX layout, K = d_in) swept input by input over the upper Cholesky factor
 * of its damped inverse Hessian, each input's weights set by a column policy and the error fed forward
 * to the inputs not yet swept (lazy batch updates of `columnBlock` inputs).
 *   quantize: the MatMulNBits grid of quantizeBlockwise (per group of `blockSize` inputs and output
 *             channel), any bits 2..8 — GPTQ, arXiv 2210.17323 (TECHNIQUES.md §1);
 *   prune:    SparseGPT's adaptive mask, arXiv 2301.00774 (TECHNIQUES.md §2): per output channel, the
 *             lowest w²/Hinv[i,i]² are pruned — unstructured, exactly round(sparsity · len) (ties to even) in every mask
 *             block of `maskBlock` inputs; or N:M, M − N in every M consecutive inputs;
 *   both:     SparseGPT's joint mode — pruned weights are 0, the kept ones quantized.
 * Outputs: the swept W [K, N] (pruned zeros and/or dequantized values), the mask (1 = kept), and the
 * MatMulNBits layout when quantizing to 2, 4 or 8 bits (quantizeBlockwise's layout; a pruned weight's
 * code is its group's zero point, so it dequantizes to 0; dequantizeBlockwise turns it back into floats).
 */
import {
  callAsync, callSync, checkArray, checkCount, checkLength, invalid, load, type ObsNativeResult, type ObsParams, type Rounding,
} from './addon.ts';
import { checkRounding, emptyBlockwise, type BlockwiseQuantized } from './blockwise.ts';
import { checkPercdamp, checkRowCount, type PreparedHessian } from './hessian.ts';

export interface ObsQuantizeOptions {
  /** 2..8; the MatMulNBits layout (`quantized`) needs 2, 4 or 8. */
  bits: number;
  /** The group along K: a power of two, 16..256. */
  blockSize: number;
  symmetric: boolean;
  /** Round scales to float16 before quantizing with them (a float16 model's MatMulNBits). Default false. */
  scalesFp16?: boolean;
  /** Default 'half-even'. */
  rounding?: Rounding;
}

export interface ObsPruneOptions {
  /** Unstructured: the fraction of every output channel's weights pruned in each mask block, 0..1. */
  sparsity?: number;
  /** N:M: in every M consecutive inputs (along K) of every output channel keep N. Natural order only (actOrder false); columnBlock must be a multiple of M. */
  nm?: { n: number; m: number };
  /** Inputs per mask block (unstructured; default 128). A mask block never crosses a column block. */
  maskBlock?: number;
}

export interface ObsSweepOptions {
  /** Input features (rows of W [K, N]); the Hessian is [K×K]. */
  k: number;
  /** Output features. */
  n: number;
  /** Dampening, see prepareHessian (GPTQ / SparseGPT: 0.01). */
  percdamp: number;
  /** Sweep inputs by decreasing diag(H) (quantize: static groups). */
  actOrder: boolean;
  /** Inputs per lazy-update block (GPTQ / SparseGPT: 128). */
  columnBlock: number;
  quantize?: ObsQuantizeOptions;
  prune?: ObsPruneOptions;
  /** Names the layer in error messages. */
  label?: string;
}

/** obsSweepPrepared's options: the prepared Hessian fixes the order (act-order ⇔ prepared.order) and the dampening. */
export type ObsSweepPreparedOptions = Omit<ObsSweepOptions, 'percdamp' | 'actOrder' | 'label'>;

export interface ObsSwept {
  /** The swept W [K, N], row-major: pruned weights 0, quantized ones dequantized, the others as updated by the sweep. */
  weight: Float32Array;
  /** [K, N], 1 = kept; null without the prune policy. */
  mask: Uint8Array | null;
  /** The MatMulNBits layout (quantize with 2, 4 or 8 bits), else null. */
  quantized: BlockwiseQuantized | null;
  /** ½ Σ err², err = (w − ŵ)/Hinv[i,i]: the increase of ‖(W − Ŵ)ᵀX‖² the sweep predicts, in units of H = 2XᵀX/count. */
  loss: number;
  /** Σ (w − ŵ)² against the original weight. */
  sqError: number;
  /** Inputs that never fired (their weights are zeroed). */
  dead: number;
}

interface ObsPlan {
  deadMask: Uint8Array | null;
  swept: Float32Array;
  mask: Uint8Array | null;
  quantized: BlockwiseQuantized | null;
  params: ObsParams;
}

/** The Hessian side: a sum to prepare (count, percdamp, actOrder) or a prepared factor. */
type HessianInput = { sum: Float32Array; count: number } | { prepared: PreparedHessian };

function planObs(weight: Float32Array, hessian: HessianInput, opts: ObsSweepOptions | ObsSweepPreparedOptions): ObsPlan {
  const fn = 'prepared' in hessian ? 'obsSweepPrepared' : 'obsSweep';
  if (typeof opts !== 'object' || opts === null) throw invalid(`${fn}: options are required.`);
  const { k, n, columnBlock } = opts;
  checkCount(k, 'k', 1);
  checkCount(n, 'n', 1);
  checkCount(columnBlock, 'columnBlock', 1);
  if (!(weight instanceof Float32Array)) throw invalid(`${fn}: the weight must be a Float32Array (convert float16 with f16ToF32).`);
  checkLength(weight, k * n, `${fn}: weight`, 'k·n');
  let actOrder: boolean;
  let deadMask: Uint8Array | null = null;
  const params: ObsParams = { k, n, columnBlock, count: 1, percdamp: 0, actOrder: false, quantize: false, prune: false };
  if ('prepared' in hessian) {
    const { prepared } = hessian;
    if (typeof prepared !== 'object' || prepared === null) throw invalid(`${fn}: a prepared Hessian is required.`);
    checkArray(prepared.hinvUpper, Float32Array, `${fn}: hinvUpper`);
    checkLength(prepared.hinvUpper, k * k, `${fn}: hinvUpper`, 'k·k');
    if (prepared.order !== null) {
      if (!(prepared.order instanceof Int32Array)) throw invalid(`${fn}: order must be an Int32Array or null.`);
      checkLength(prepared.order, k, `${fn}: order`, 'k');
    }
    if (!(prepared.dead instanceof Int32Array)) throw invalid(`${fn}: dead must be an Int32Array.`);
    deadMask = new Uint8Array(k);
    for (const i of prepared.dead) {
      if (!Number.isInteger(i) || i < 0 || i >= k) throw invalid(`${fn}: dead input ${i} is out of range 0..${k - 1}.`);
      deadMask[i] = 1;
    }
    actOrder = prepared.order !== null;
  } else {
    const o = opts as ObsSweepOptions;
    checkArray(hessian.sum, Float32Array, `${fn}: hessianSum`);
    checkLength(hessian.sum, k * k, `${fn}: hessianSum`, 'k·k');
    if (typeof o.actOrder !== 'boolean') throw invalid('actOrder must be true or false.');
    actOrder = o.actOrder;
    Object.assign(params, { count: checkRowCount(hessian.count), percdamp: checkPercdamp(o.percdamp), actOrder });
    if (o.label !== undefined) params.label = String(o.label);
  }
  const { quantize: q, prune: p } = opts;
  if (q === undefined && p === undefined) throw invalid('obsSweep: choose a column policy: quantize, prune, or both.');
  let quantized: BlockwiseQuantized | null = null;
  if (q !== undefined) {
    if (typeof q !== 'object' || q === null) throw invalid('obsSweep: quantize must be an object.');
    const { bits, blockSize, symmetric } = q;
    if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 2 || bits > 8) throw invalid(`bits must be an integer from 2 to 8, got ${String(bits)}.`);
    if (typeof blockSize !== 'number' || !Number.isInteger(blockSize) || blockSize < 16 || blockSize > 256 || (blockSize & (blockSize - 1)) !== 0) {
      throw invalid(`blockSize must be a power of two from 16 to 256, got ${String(blockSize)}.`);
    }
    if (typeof symmetric !== 'boolean') throw invalid('symmetric must be true or false.');
    const rounding = checkRounding(q.rounding);
    Object.assign(params, { quantize: true, bits, blockSize, symmetric, fp16Scales: q.scalesFp16 ?? false, rounding });
    if (bits === 2 || bits === 4 || bits === 8) quantized = emptyBlockwise(k, n, bits, blockSize, symmetric);
  }
  if (p !== undefined) {
    if (typeof p !== 'object' || p === null) throw invalid('obsSweep: prune must be an object.');
    params.prune = true;
    if (p.nm !== undefined) {
      if (p.sparsity !== undefined) throw invalid('prune: give either sparsity or nm, not both.');
      const { n: keep, m } = p.nm;
      checkCount(m, 'prune.nm.m', 2);
      checkCount(keep, 'prune.nm.n', 1);
      if (keep >= m) throw invalid(`prune.nm: n must be below m, got ${keep}:${m}.`);
      if (actOrder) throw invalid('N:M pruning needs the natural input order: turn actOrder off.');
      if (columnBlock % m !== 0) throw invalid(`N:M pruning needs columnBlock to be a multiple of m (${m}), got ${columnBlock}.`);
      Object.assign(params, { nmN: keep, nmM: m });
    } else {
      const { sparsity } = p;
      if (typeof sparsity !== 'number' || !(sparsity >= 0 && sparsity <= 1)) throw invalid(`prune.sparsity must be a number from 0 to 1, got ${String(sparsity)}.`);
      params.sparsity = sparsity;
      params.maskBlock = checkCount(p.maskBlock ?? 128, 'prune.maskBlock', 1);
    }
  }
  return { deadMask, swept: new Float32Array(k * n), mask: params.prune ? new Uint8Array(k * n) : null, quantized, params };
}

function finishObs(p: ObsPlan, r: ObsNativeResult): ObsSwept {
  if (p.quantized) p.quantized.sqError = r.sqError;
  return { weight: p.swept, mask: p.mask, quantized: p.quantized, loss: r.loss, sqError: r.sqError, dead: r.dead };
}

/**
 * The sweep for one MatMul weight W [K, N] from its input's Hessian sum S [K×K] (Σ XᵀX over `count`
 * calibration rows, hessianAccumulate): prepareHessian (act-order: hessianActOrder), then the sweep with
 * the column policy of `opts`, multi-threaded across output channels and bit-identical to
 * reference.obsSweep. With `quantize` alone it is gptqQuantize (same codes). Not positive definite →
 * INVALID_INPUT (increase percdamp).
 */
export async function obsSweep(weight: Float32Array, hessianSum: Float32Array, count: number, opts: ObsSweepOptions): Promise<ObsSwept> {
  const p = planObs(weight, { sum: hessianSum, count }, opts);
  const q = p.quantized;
  const r = await callAsync(() => load().obsSweep(p.swept, p.mask, q?.packed ?? null, q?.scales ?? null, q?.zeroPoints ?? null, weight, hessianSum, p.params));
  return finishObs(p, r);
}

/** The sweep alone, on a Hessian prepared by prepareHessian (with the order it was prepared in: act-order ⇔ prepared.order). */
export async function obsSweepPrepared(weight: Float32Array, prepared: PreparedHessian, opts: ObsSweepPreparedOptions): Promise<ObsSwept> {
  const p = planObs(weight, { prepared }, opts);
  const q = p.quantized;
  const r = await callAsync(() => load().obsSweepPrepared(p.swept, p.mask, q?.packed ?? null, q?.scales ?? null, q?.zeroPoints ?? null, weight,
    prepared.hinvUpper, prepared.order, p.deadMask as Uint8Array, p.params));
  return finishObs(p, r);
}

/** One output channel at a time, masks chosen by a full sort; same outputs as obsSweep. */
export const obsReference = {
  obsSweep(weight: Float32Array, hessianSum: Float32Array, count: number, opts: ObsSweepOptions): ObsSwept {
    const p = planObs(weight, { sum: hessianSum, count }, opts);
    const q = p.quantized;
    const r = callSync(() => load().obsSweepRef(p.swept, p.mask, q?.packed ?? null, q?.scales ?? null, q?.zeroPoints ?? null, weight, hessianSum, p.params));
    return finishObs(p, r);
  },
  obsSweepPrepared(weight: Float32Array, prepared: PreparedHessian, opts: ObsSweepPreparedOptions): ObsSwept {
    const p = planObs(weight, { prepared }, opts);
    const q = p.quantized;
    const r = callSync(() => load().obsSweepPreparedRef(p.swept, p.mask, q?.packed ?? null, q?.scales ?? null, q?.zeroPoints ?? null, weight,
      prepared.hinvUpper, prepared.order, p.deadMask as Uint8Array, p.params));
    return finishObs(p, r);
  },
};
