/** GPTQ (arXiv 2210.17323) into com.microsoft.MatMulNBits (native-kernels/src/gptq.cc: the shared sweep with the quantize policy), and the references. */
import { callAsync, callSync, checkArray, checkCount, checkLength, invalid, load, type GptqNativeResult, type GptqParams, type QuantBits, type Rounding } from './addon.ts';
import { checkBlockwiseShape, checkRounding, emptyBlockwise, type BlockwiseQuantized } from './blockwise.ts';
import { checkPercdamp, checkRowCount, type PreparedHessian } from './hessian.ts';

export interface GptqSweepOptions {
  /** Input features (rows of W [K, N]); the Hessian is [K×K]. */
  k: number;
  /** Output features. */
  n: number;
  bits: QuantBits;
  /** The group: MatMulNBits block along K, power of two 16..256. */
  blockSize: number;
  symmetric: boolean;
  /** Inputs per lazy-update block (GPTQ: 128). */
  columnBlock: number;
  /** Default 'half-even'. */
  rounding?: Rounding;
  /** Round scales to float16 before quantizing with them (a float16 model's MatMulNBits). Default false. */
  scalesFp16?: boolean;
}

export interface GptqOptions extends GptqSweepOptions {
  /** Dampening, see prepareHessian (GPTQ: 0.01). */
  percdamp: number;
  /** Sweep inputs by decreasing diag(H), with static groups (still plain MatMulNBits, no g_idx). */
  actOrder: boolean;
  /** Names the layer in error messages. */
  label?: string;
}

/**
 * A GPTQ-quantized weight: the MatMulNBits layout of quantizeBlockwise (sqError = Σ (w − dequantized)²
 * against the original weight), plus `loss` = ½ Σ_{i,channel} err², err = (w − q)/Hinv[i,i] — GPTQ's
 * Σ (w − q)²/Hinv[i,i]²/2, the output error the sweep predicts — and `dead`, the count of dead inputs.
 */
export interface GptqQuantized extends BlockwiseQuantized {
  loss: number;
  dead: number;
}

interface GptqPlan {
  result: GptqQuantized;
  params: GptqParams;
}

function planGptqShape(weight: Float32Array, opts: GptqSweepOptions, fn: string): GptqPlan {
  if (typeof opts !== 'object' || opts === null) throw invalid(`${fn}: options are required.`);
  const { k, n, bits, blockSize, symmetric, columnBlock } = opts;
  checkBlockwiseShape(k, n, bits, blockSize);
  if (typeof symmetric !== 'boolean') throw invalid('symmetric must be true or false.');
  checkCount(columnBlock, 'columnBlock', 1);
  if (!(weight instanceof Float32Array)) throw invalid(`${fn}: the weight must be a Float32Array (convert float16 with f16ToF32).`);
  checkLength(weight, k * n, `${fn}: weight`, 'k·n');
  const rounding = checkRounding(opts.rounding);
  return {
    result: { ...emptyBlockwise(k, n, bits, blockSize, symmetric), loss: 0, dead: 0 },
    params: { k, n, bits, blockSize, symmetric, fp16Scales: opts.scalesFp16 ?? false, rounding, columnBlock },
  };
}

function planGptq(weight: Float32Array, hessianSum: Float32Array, count: number, opts: GptqOptions): GptqPlan {
  const p = planGptqShape(weight, opts, 'gptqQuantize');
  checkArray(hessianSum, Float32Array, 'gptqQuantize: hessianSum');
  checkLength(hessianSum, opts.k * opts.k, 'gptqQuantize: hessianSum', 'k·k');
  p.params.count = checkRowCount(count);
  p.params.percdamp = checkPercdamp(opts.percdamp);
  if (typeof opts.actOrder !== 'boolean') throw invalid('actOrder must be true or false.');
  p.params.actOrder = opts.actOrder;
  if (opts.label !== undefined) p.params.label = String(opts.label);
  return p;
}

interface SweepPlan extends GptqPlan {
  deadMask: Uint8Array;
}

function planSweep(weight: Float32Array, prepared: PreparedHessian, opts: GptqSweepOptions): SweepPlan {
  const p = planGptqShape(weight, opts, 'gptqSweep');
  if (typeof prepared !== 'object' || prepared === null) throw invalid('gptqSweep: a prepared Hessian is required.');
  checkArray(prepared.hinvUpper, Float32Array, 'gptqSweep: hinvUpper');
  checkLength(prepared.hinvUpper, opts.k * opts.k, 'gptqSweep: hinvUpper', 'k·k');
  if (prepared.order !== null) {
    if (!(prepared.order instanceof Int32Array)) throw invalid('gptqSweep: order must be an Int32Array or null.');
    checkLength(prepared.order, opts.k, 'gptqSweep: order', 'k');
  }
  if (!(prepared.dead instanceof Int32Array)) throw invalid('gptqSweep: dead must be an Int32Array.');
  const deadMask = new Uint8Array(opts.k);
  for (const i of prepared.dead) {
    if (!Number.isInteger(i) || i < 0 || i >= opts.k) throw invalid(`gptqSweep: dead input ${i} is out of range 0..${opts.k - 1}.`);
    deadMask[i] = 1;
  }
  return { ...p, deadMask };
}

function finishGptq(result: GptqQuantized, r: GptqNativeResult, dead: number): GptqQuantized {
  result.loss = r.loss;
  result.sqError = r.sqError;
  result.dead = dead;
  return result;
}

/**
 * GPTQ for one MatMul weight W [K, N] (ONNX layout, K = d_in) from its input's Hessian sum S [K×K]
 * (Σ XᵀX over `count` calibration rows, hessianAccumulate), into the MatMulNBits layout of
 * quantizeBlockwise (same scale / zero-point rule). Dead inputs → their weights zeroed; act-order sweeps
 * by decreasing diag(H) with static groups; without it each group's grid is fitted when the sweep reaches
 * it. Column blocks of `columnBlock` with the lazy batch update. Multi-threaded across output channels
 * and bit-identical to reference.gptqSweep given the same prepared Hessian. Not positive definite →
 * INVALID_INPUT (increase percdamp).
 */
export async function gptqQuantize(weight: Float32Array, hessianSum: Float32Array, count: number, opts: GptqOptions): Promise<GptqQuantized> {
  const p = planGptq(weight, hessianSum, count, opts);
  const r = await callAsync(() => load().gptqQuantize(p.result.packed, p.result.scales, p.result.zeroPoints, weight, hessianSum, p.params));
  return finishGptq(p.result, r, r.dead);
}

/** The GPTQ sweep alone, on a Hessian prepared by prepareHessian (with the order it was prepared in: act-order ⇔ static groups). */
export async function gptqSweep(weight: Float32Array, prepared: PreparedHessian, opts: GptqSweepOptions): Promise<GptqQuantized> {
  const p = planSweep(weight, prepared, opts);
  const r = await callAsync(() => load().gptqSweep(p.result.packed, p.result.scales, p.result.zeroPoints, weight, prepared.hinvUpper,
    prepared.order, p.deadMask, p.params));
  return finishGptq(p.result, r, prepared.dead.length);
}

/** One output channel at a time. */
export const gptqReference = {
  /** One output channel at a time; same codes, scales, zero points, loss and sqError as gptqSweep. */
  gptqSweep(weight: Float32Array, prepared: PreparedHessian, opts: GptqSweepOptions): GptqQuantized {
    const p = planSweep(weight, prepared, opts);
    const r = callSync(() => load().gptqSweepRef(p.result.packed, p.result.scales, p.result.zeroPoints, weight, prepared.hinvUpper,
      prepared.order, p.deadMask, p.params));
    return finishGptq(p.result, r, prepared.dead.length);
  },
  /** reference.prepareHessian + reference.gptqSweep. */
  gptqQuantize(weight: Float32Array, hessianSum: Float32Array, count: number, opts: GptqOptions): GptqQuantized {
    const p = planGptq(weight, hessianSum, count, opts);
    const r = callSync(() => load().gptqQuantizeRef(p.result.packed, p.result.scales, p.result.zeroPoints, weight, hessianSum, p.params));
    return finishGptq(p.result, r, r.dead);
  },
};
