/**
 * Layout conversions between the blockwise quantizer's output and the two ONNX encodings of a
 * weight-only quantized MatMul.
 *
 * The quantizer (native/index.ts `quantizeBlockwise`) returns the com.microsoft.MatMulNBits layout:
 *   packed      uint8 [N, kBlocks, blockSize·bits/8]  codes of column n, packed along K within a block,
 *                                                    first value in the low bits; K padded to kBlocks·blockSize
 *   scales      f32   [N, kBlocks]
 *   zeroPoints  uint8 [N, ceil(kBlocks·bits/8)]        packed the same way; null = symmetric, implied 2^(bits-1)
 *   dequantized w[k, n] = (q[n, k] − zp[n, k / blockSize]) · scale[n, k / blockSize]
 *
 * DequantizeLinear (opset 21, blocked, axis 0, https://onnx.ai/onnx/operators/onnx__DequantizeLinear.html)
 * wants the weight as the MatMul sees it:
 *   x           [K, N]           row-major, no padding; 4-bit types packed two per byte, first in the low nibble
 *   x_scale     [kBlocks, N]     (the blocked dimension is ceil(K / blockSize))
 *   x_zero_point[kBlocks, N]     same type as x; absent = 0
 *   y[k, n] = (x[k, n] − zp[k / B, n]) · scale[k / B, n]
 *
 * The zero-point defaults differ (MatMulNBits 2^(bits−1), DequantizeLinear 0). Symmetric codes are
 * therefore written as signed integers, q − 2^(bits−1), which for a `bits`-wide two's-complement field is
 * q XOR 2^(bits−1); asymmetric codes stay unsigned with explicit zero points.
 */

export interface BlockwiseQuantized {
  packed: Uint8Array;
  scales: Float32Array;
  zeroPoints: Uint8Array | null;
  k: number;
  n: number;
  bits: number;
  blockSize: number;
  kBlocks: number;
}

export interface DequantizeLinearLayout {
  /** Element type of x (and of the zero point): ONNX 'int4' | 'uint4' | 'int8' | 'uint8'. */
  dtype: 'int4' | 'uint4' | 'int8' | 'uint8';
  /** x [K, N], packed for 4-bit. */
  x: Uint8Array;
  /** scale [kBlocks, N] (float32; the caller converts to the activation type). */
  scale: Float32Array;
  /** zero point [kBlocks, N] packed like x, or null (symmetric, signed codes). */
  zeroPoint: Uint8Array | null;
}

/** Code of element `i` of a buffer of `bits`-wide fields, first field in the low bits. */
function getField(buf: Uint8Array, i: number, bits: number): number {
  const perByte = 8 / bits;
  const byte = buf[Math.floor(i / perByte)];
  return (byte >> ((i % perByte) * bits)) & ((1 << bits) - 1);
}

/** Sets element `i` (buffer assumed zeroed at that field). */
function orField(buf: Uint8Array, i: number, bits: number, value: number): void {
  const perByte = 8 / bits;
  buf[Math.floor(i / perByte)] |= (value & ((1 << bits) - 1)) << ((i % perByte) * bits);
}

/**
 * MatMulNBits layout → DequantizeLinear layout (4- and 8-bit only: ONNX has no 2-bit type that
 * onnxruntime's DequantizeLinear runs).
 */
export function toDequantizeLinearLayout(q: BlockwiseQuantized): DequantizeLinearLayout {
  const { k: K, n: N, bits, blockSize, kBlocks } = q;
  if (bits !== 4 && bits !== 8) throw new RangeError(`DequantizeLinear layout needs 4 or 8 bits, got ${bits}`);
  const symmetric = q.zeroPoints === null;
  const flip = symmetric ? 1 << (bits - 1) : 0;
  const blob = (blockSize * bits) / 8;
  const x = new Uint8Array(Math.ceil((K * N * bits) / 8));

  if (bits === 8) {
    // x[k, n] = packed[n, k / B, k % B] (^ 0x80 for signed)
    for (let n = 0; n < N; n++) {
      const row = n * kBlocks * blob;
      for (let k = 0; k < K; k++) x[k * N + n] = q.packed[row + k] ^ flip;
    }
  } else {
    // 4-bit: byte (n, k/2) of the MatMulNBits row holds k even in the low nibble; blob = B/2 so the
    // row is contiguous in k across blocks.
    for (let n = 0; n < N; n++) {
      const row = n * kBlocks * blob;
      for (let k = 0; k < K; k++) {
        const byte = q.packed[row + (k >> 1)];
        const code = ((k & 1) ? byte >> 4 : byte & 15) ^ flip;
        const i = k * N + n;
        x[i >> 1] |= (i & 1) ? code << 4 : code;
      }
    }
  }

  // scale [N, kBlocks] → [kBlocks, N]
  const scale = new Float32Array(kBlocks * N);
  for (let n = 0; n < N; n++) for (let b = 0; b < kBlocks; b++) scale[b * N + n] = q.scales[n * kBlocks + b];

  let zeroPoint: Uint8Array | null = null;
  if (q.zeroPoints) {
    const zpRow = Math.ceil((kBlocks * bits) / 8);
    zeroPoint = new Uint8Array(Math.ceil((kBlocks * N * bits) / 8));
    for (let n = 0; n < N; n++) {
      const rowBytes = q.zeroPoints.subarray(n * zpRow, (n + 1) * zpRow);
      for (let b = 0; b < kBlocks; b++) orField(zeroPoint, b * N + n, bits, getField(rowBytes, b, bits));
    }
  }
  const dtype = bits === 4 ? (symmetric ? 'int4' : 'uint4') : (symmetric ? 'int8' : 'uint8');
  return { dtype, x, scale, zeroPoint };
}

/** Row-major [rows, cols] → [cols, rows], for Gemm's transB = 1 weight ([N, K] → [K, N]). */
export function transpose2d<T extends Float32Array | Uint16Array>(src: T, rows: number, cols: number): T {
  const out = new (src.constructor as { new (n: number): T })(rows * cols);
  const tile = 64;
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const r1 = Math.min(rows, r0 + tile);
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const c1 = Math.min(cols, c0 + tile);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = src[r * cols + c];
    }
  }
  return out;
}

/** Multiplies every scale by `factor` (Gemm alpha folded into the dequantization). */
export function scaleInPlace(scales: Float32Array, factor: number): void {
  for (let i = 0; i < scales.length; i++) scales[i] *= factor;
}
