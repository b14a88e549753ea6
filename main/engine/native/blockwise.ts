/** Block-wise round-to-nearest quantization into com.microsoft.MatMulNBits and back (native-kernels/src/blockwise.cc), and the references. */
import {
  callAsync, callSync, checkArray, checkCount, checkLength, invalid, load, type BlockwiseParams, type QuantBits, type Rounding,
} from './addon.ts';

export type { QuantBits, Rounding } from './addon.ts';

export interface BlockwiseOptions {
  /** Rows of the weight: input features (MatMulNBits K). */
  k: number;
  /** Columns of the weight: output features (MatMulNBits N). */
  n: number;
  bits: QuantBits;
  /** Power of two, 16..256. */
  blockSize: number;
  symmetric: boolean;
  /** The weight is a Uint16Array of float16 bits (required to pass a Uint16Array). */
  weightIsFp16?: boolean;
  /** Round each scale to float16 before quantizing with it, so the scales convert to float16 exactly (as an fp16 MatMulNBits needs). Default: weightIsFp16. */
  scalesFp16?: boolean;
  /** Default 'half-even'. */
  rounding?: Rounding;
}

/** A weight in the com.microsoft.MatMulNBits layout (TECHNIQUES.md, MatMulNBits). */
export interface BlockwiseQuantized {
  /** B: uint8 [N, kBlocks, blockSize·bits/8], packed along K, first value in the low bits. */
  packed: Uint8Array;
  /** [N, kBlocks]. Symmetric scales can be negative (ONNX Runtime's convention: the value of largest magnitude maps to q = 0). */
  scales: Float32Array;
  /** Packed uint8 [N, ceil(kBlocks·bits/8)], first in the low bits; null for symmetric (MatMulNBits' default 2^(bits-1)). */
  zeroPoints: Uint8Array | null;
  k: number;
  n: number;
  bits: QuantBits;
  blockSize: number;
  kBlocks: number;
  /** Σ (w − dequantized w)² over all K·N weights (summed in double). */
  sqError: number;
}

export interface BlockwiseLayout {
  kBlocks: number;
  /** Bytes per block in `packed`: blockSize·bits/8. */
  blobBytes: number;
  packedBytes: number;
  scaleCount: number;
  /** Length of the zero-point array (asymmetric only). */
  zeroPointBytes: number;
}

/** Array sizes of a [K, N] weight quantized block-wise along K. */
export function blockwiseLayout(k: number, n: number, bits: QuantBits, blockSize: number): BlockwiseLayout {
  const kBlocks = Math.ceil(k / blockSize);
  const blobBytes = (blockSize * bits) / 8;
  return {
    kBlocks,
    blobBytes,
    packedBytes: n * kBlocks * blobBytes,
    scaleCount: n * kBlocks,
    zeroPointBytes: n * Math.ceil((kBlocks * bits) / 8),
  };
}

export function checkBlockwiseShape(k: unknown, n: unknown, bits: unknown, blockSize: unknown): void {
  checkCount(k, 'k', 1);
  checkCount(n, 'n', 1);
  if (bits !== 2 && bits !== 4 && bits !== 8) throw invalid(`bits must be 2, 4 or 8, got ${String(bits)}.`);
  if (typeof blockSize !== 'number' || !Number.isInteger(blockSize) || blockSize < 16 || blockSize > 256 || (blockSize & (blockSize - 1)) !== 0) {
    throw invalid(`blockSize must be a power of two from 16 to 256, got ${String(blockSize)}.`);
  }
}

interface QuantizePlan {
  result: BlockwiseQuantized;
  params: BlockwiseParams;
}

/** The rounding rule of a kernel's options: 'half-even' unless 'half-away' is asked for. */
export function checkRounding(rounding: Rounding | undefined): Rounding {
  const r = rounding ?? 'half-even';
  if (r !== 'half-even' && r !== 'half-away') throw invalid(`rounding must be 'half-even' or 'half-away', got ${String(r)}.`);
  return r;
}

/** Zeroed output arrays of the MatMulNBits layout for a weight [K, N] (no zero points when symmetric). */
export function emptyBlockwise(k: number, n: number, bits: QuantBits, blockSize: number, symmetric: boolean): BlockwiseQuantized {
  const layout = blockwiseLayout(k, n, bits, blockSize);
  return {
    packed: new Uint8Array(layout.packedBytes),
    scales: new Float32Array(layout.scaleCount),
    zeroPoints: symmetric ? null : new Uint8Array(layout.zeroPointBytes),
    k, n, bits, blockSize,
    kBlocks: layout.kBlocks,
    sqError: 0,
  };
}

function planQuantize(weight: Float32Array | Uint16Array, opts: BlockwiseOptions): QuantizePlan {
  if (typeof opts !== 'object' || opts === null) throw invalid('quantizeBlockwise: options are required.');
  const { k, n, bits, blockSize, symmetric } = opts;
  checkBlockwiseShape(k, n, bits, blockSize);
  if (typeof symmetric !== 'boolean') throw invalid('symmetric must be true or false.');
  const fp16 = opts.weightIsFp16 ?? false;
  if (fp16) {
    if (!(weight instanceof Uint16Array)) throw invalid('weightIsFp16 is set, so the weight must be a Uint16Array of float16 bits.');
  } else if (weight instanceof Uint16Array) {
    throw invalid('A Uint16Array weight must hold float16 bits: pass weightIsFp16: true (convert bfloat16 with bf16ToF32 first).');
  } else if (!(weight instanceof Float32Array)) {
    throw invalid('The weight must be a Float32Array, or a Uint16Array of float16 bits with weightIsFp16: true.');
  }
  const rounding = checkRounding(opts.rounding);
  checkLength(weight, k * n, 'weight', 'k·n');
  return {
    result: emptyBlockwise(k, n, bits, blockSize, symmetric),
    params: { k, n, bits, blockSize, symmetric, fp16Scales: opts.scalesFp16 ?? fp16, rounding },
  };
}

/**
 * Round-to-nearest block-wise quantization of one MatMul weight W [K, N] (row-major, as stored in the
 * ONNX initializer) into the MatMulNBits layout. Scale / zero-point rule: ONNX Runtime's
 * (native-kernels/src/blockwise_format.h). Rejects NaN / infinite weights with INVALID_INPUT.
 */
export async function quantizeBlockwise(weight: Float32Array | Uint16Array, opts: BlockwiseOptions): Promise<BlockwiseQuantized> {
  const { result, params } = planQuantize(weight, opts);
  result.sqError = await callAsync(() => load().quantizeBlockwise(result.packed, result.scales, result.zeroPoints, weight, params));
  return result;
}

function planDequantize(q: BlockwiseQuantized): BlockwiseParams {
  if (typeof q !== 'object' || q === null) throw invalid('dequantizeBlockwise: a quantized weight is required.');
  checkBlockwiseShape(q.k, q.n, q.bits, q.blockSize);
  const layout = blockwiseLayout(q.k, q.n, q.bits, q.blockSize);
  checkArray(q.packed, Uint8Array, 'packed');
  checkArray(q.scales, Float32Array, 'scales');
  checkLength(q.packed, layout.packedBytes, 'packed', 'n·kBlocks·blockSize·bits/8');
  checkLength(q.scales, layout.scaleCount, 'scales', 'n·kBlocks');
  if (q.zeroPoints !== null) {
    checkArray(q.zeroPoints, Uint8Array, 'zeroPoints');
    checkLength(q.zeroPoints, layout.zeroPointBytes, 'zeroPoints', 'n·ceil(kBlocks·bits/8)');
  }
  return { k: q.k, n: q.n, bits: q.bits, blockSize: q.blockSize };
}

/** The inverse: W [K, N] float32 with w = (q − zp) · scale. */
export async function dequantizeBlockwise(q: BlockwiseQuantized): Promise<Float32Array> {
  const params = planDequantize(q);
  return callAsync(() => load().dequantizeBlockwise(new Float32Array(q.k * q.n), q.packed, q.scales, q.zeroPoints, params));
}

/** One column, one block at a time. */
export const blockwiseReference = {
  quantizeBlockwise(weight: Float32Array | Uint16Array, opts: BlockwiseOptions): BlockwiseQuantized {
    const { result, params } = planQuantize(weight, opts);
    result.sqError = callSync(() => load().quantizeBlockwiseRef(result.packed, result.scales, result.zeroPoints, weight, params));
    return result;
  },
  dequantizeBlockwise(q: BlockwiseQuantized): Float32Array {
    const params = planDequantize(q);
    const out = new Float32Array(q.k * q.n);
    callSync(() => load().dequantizeBlockwiseRef(out, q.packed, q.scales, q.zeroPoints, params));
    return out;
  },
};
