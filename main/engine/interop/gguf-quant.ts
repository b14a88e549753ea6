/**
 * llama.cpp's block formats (ggml-quants.c, the `_ref` quantizers), for a row-major float32 matrix
 * [rows, ne0] with ne0 a multiple of 32. Each row is cut into blocks of 32 consecutive values:
 *
 *   Q8_0  34 bytes: f16 d · int8 q[32]            d = max|x| / 127,      x ≈ d·q,          q = round(x / d)
 *   Q4_0  18 bytes: f16 d · u8 qs[16]             d = x_absmax / −8,     x ≈ d·(q − 8),    q = min(15, trunc(x / d + 8.5))
 *   Q4_1  20 bytes: f16 d · f16 m · u8 qs[16]     d = (max − min) / 15,  m = min, x ≈ d·q + m,  q = min(15, trunc((x − m) / d + 0.5))
 *
 * (x_absmax is the value of largest magnitude, with its sign.) 4-bit codes: byte j holds value j in its
 * low nibble and value j + 16 in its high nibble. The scale is computed in float32 and stored as f16;
 * codes use the float32 scale, as llama.cpp does.
 *
 * `nbitsToQ4_1` maps a 4-bit, block-32, asymmetric com.microsoft.MatMulNBits weight onto Q4_1 without
 * requantizing: MatMulNBits dequantizes w = (q − z)·s = s·q + (−s·z), which is Q4_1 with d = s, m = −s·z
 * and the same codes; only d and m round to f16.
 */
import { floatToHalf, halfToFloat } from '../onnx/tensor-data.ts';
import type { BlockwiseQuantized } from '../quantize/layout.ts';
import { GGML_BLOCK, GgmlType } from './gguf-writer.ts';

const QK = 32;

function checkShape(x: ArrayLike<number>, rows: number, ne0: number): void {
  if (ne0 % QK !== 0) throw new RangeError(`row length ${ne0} is not a multiple of ${QK}`);
  if (x.length !== rows * ne0) throw new RangeError(`expected ${rows * ne0} values, got ${x.length}`);
}

/** float32 [n] → f16 bits, little-endian bytes [2n]. */
export function toF16Bytes(x: Float32Array): Uint8Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = floatToHalf(x[i]);
  return new Uint8Array(out.buffer);
}

export function toF32Bytes(x: Float32Array): Uint8Array {
  return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

export function quantizeQ8_0(x: Float32Array, rows: number, ne0: number): Uint8Array {
  checkShape(x, rows, ne0);
  const blocks = (rows * ne0) / QK;
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const o = b * QK;
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[o + j]));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(b * 34, floatToHalf(d), true);
    for (let j = 0; j < QK; j++) {
      // roundf: half away from zero
      const v = Math.fround(x[o + j] * id);
      view.setInt8(b * 34 + 2 + j, Math.sign(v) * Math.round(Math.abs(v)));
    }
  }
  return out;
}

export function quantizeQ4_0(x: Float32Array, rows: number, ne0: number): Uint8Array {
  checkShape(x, rows, ne0);
  const blocks = (rows * ne0) / QK;
  const out = new Uint8Array(blocks * 18);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const o = b * QK;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[o + j];
      if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
    }
    const d = Math.fround(max / -8);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(b * 18, floatToHalf(d), true);
    for (let j = 0; j < QK / 2; j++) {
      // (int8_t)(v + 8.5f) truncates toward zero; v + 8.5 ≥ 0.5 here, so trunc = floor
      const q0 = Math.min(15, Math.trunc(Math.fround(Math.fround(x[o + j] * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(Math.fround(Math.fround(x[o + j + 16] * id) + 8.5)));
      out[b * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

export function quantizeQ4_1(x: Float32Array, rows: number, ne0: number): Uint8Array {
  checkShape(x, rows, ne0);
  const blocks = (rows * ne0) / QK;
  const out = new Uint8Array(blocks * 20);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const o = b * QK;
    let min = Infinity;
    let max = -Infinity;
    for (let j = 0; j < QK; j++) { min = Math.min(min, x[o + j]); max = Math.max(max, x[o + j]); }
    const d = Math.fround((max - min) / 15);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(b * 20, floatToHalf(d), true);
    view.setUint16(b * 20 + 2, floatToHalf(min), true);
    for (let j = 0; j < QK / 2; j++) {
      const q0 = Math.min(15, Math.trunc(Math.fround(Math.fround((x[o + j] - min) * id) + 0.5)));
      const q1 = Math.min(15, Math.trunc(Math.fround(Math.fround((x[o + j + 16] - min) * id) + 0.5)));
      out[b * 20 + 4 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/** float32 [rows, ne0] → bytes of `type`. */
export function encodeRows(x: Float32Array, rows: number, ne0: number, type: GgmlType): Uint8Array {
  switch (type) {
    case GgmlType.F32: return toF32Bytes(x);
    case GgmlType.F16: return toF16Bytes(x);
    case GgmlType.Q8_0: return quantizeQ8_0(x, rows, ne0);
    case GgmlType.Q4_0: return quantizeQ4_0(x, rows, ne0);
    case GgmlType.Q4_1: return quantizeQ4_1(x, rows, ne0);
  }
}

/** Bytes of `type` → float32 values (llama.cpp's dequantize_row_*), for checks and tests. */
export function decodeRows(bytes: Uint8Array, count: number, type: GgmlType): Float32Array {
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (type === GgmlType.F32) { for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true); return out; }
  if (type === GgmlType.F16) { for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true)); return out; }
  const { bytes: blockBytes } = GGML_BLOCK[type];
  for (let b = 0; b < count / QK; b++) {
    const p = b * blockBytes;
    const d = halfToFloat(view.getUint16(p, true));
    const o = b * QK;
    if (type === GgmlType.Q8_0) {
      for (let j = 0; j < QK; j++) out[o + j] = d * view.getInt8(p + 2 + j);
    } else if (type === GgmlType.Q4_0) {
      for (let j = 0; j < QK / 2; j++) {
        const byte = bytes[p + 2 + j];
        out[o + j] = ((byte & 15) - 8) * d;
        out[o + j + 16] = ((byte >> 4) - 8) * d;
      }
    } else {
      const m = halfToFloat(view.getUint16(p + 2, true));
      for (let j = 0; j < QK / 2; j++) {
        const byte = bytes[p + 4 + j];
        out[o + j] = (byte & 15) * d + m;
        out[o + j + 16] = (byte >> 4) * d + m;
      }
    }
  }
  return out;
}

/**
 * A com.microsoft.MatMulNBits weight in quantize/layout.ts's layout, codes of output n packed along K:
 * for 4 bits, packed uint8 [N, kBlocks, blockSize / 2] (value k of a block in the low nibble when k is
 * even), scales [N, kBlocks], zeroPoints uint8 [N, ceil(kBlocks / 2)] (block b in the low nibble when b
 * is even) or null = symmetric (z = 8).
 */
export type NBitsWeight = Omit<BlockwiseQuantized, 'kBlocks'>;

/**
 * MatMulNBits (4-bit, block 32, K a multiple of 32) → Q4_1 [N rows of K]: row n, block b gets
 * d = s[n, b], m = −s[n, b]·z[n, b], and the same codes, reordered from MatMulNBits' pairs (k even low,
 * k odd high) to ggml's halves (j low, j + 16 high).
 */
export function nbitsToQ4_1(w: NBitsWeight): Uint8Array {
  if (w.bits !== 4 || w.blockSize !== QK) throw new RangeError(`Q4_1 needs 4-bit codes in blocks of ${QK}, got ${w.bits}-bit blocks of ${w.blockSize}`);
  if (w.k % QK !== 0) throw new RangeError(`K = ${w.k} is not a multiple of ${QK}`);
  const kBlocks = w.k / QK;
  const storedBlocks = Math.ceil(w.k / w.blockSize);
  const zpRow = Math.ceil(storedBlocks / 2);
  const out = new Uint8Array(w.n * kBlocks * 20);
  const view = new DataView(out.buffer);
  const code = (n: number, k: number): number => {
    const byte = w.packed[n * storedBlocks * (QK / 2) + (k >> 1)];
    return (k & 1) ? byte >> 4 : byte & 15;
  };
  for (let n = 0; n < w.n; n++) {
    for (let b = 0; b < kBlocks; b++) {
      const s = w.scales[n * storedBlocks + b];
      let z = 8;
      if (w.zeroPoints) {
        const zb = w.zeroPoints[n * zpRow + (b >> 1)];
        z = (b & 1) ? zb >> 4 : zb & 15;
      }
      const p = (n * kBlocks + b) * 20;
      view.setUint16(p, floatToHalf(s), true);
      view.setUint16(p + 2, floatToHalf(-s * z), true);
      for (let j = 0; j < QK / 2; j++) out[p + 4 + j] = code(n, b * QK + j) | (code(n, b * QK + j + 16) << 4);
    }
  }
  return out;
}

/** MatMulNBits weight dequantized as onnxruntime does: float32 [N rows of K] (GGUF order, ne0 = K). */
export function dequantizeNBitsRows(w: NBitsWeight): Float32Array {
  const storedBlocks = Math.ceil(w.k / w.blockSize);
  const rowBytes = (storedBlocks * w.blockSize * w.bits) / 8;
  const zpRow = Math.ceil((storedBlocks * w.bits) / 8);
  const perByte = 8 / w.bits;
  const mask = (1 << w.bits) - 1;
  const field = (buf: Uint8Array, base: number, i: number): number => (buf[base + Math.floor(i / perByte)] >> ((i % perByte) * w.bits)) & mask;
  const out = new Float32Array(w.n * w.k);
  for (let n = 0; n < w.n; n++) {
    for (let k = 0; k < w.k; k++) {
      const b = Math.floor(k / w.blockSize);
      const z = w.zeroPoints ? field(w.zeroPoints, n * zpRow, b) : 1 << (w.bits - 1);
      out[n * w.k + k] = (field(w.packed, n * rowBytes, k) - z) * w.scales[n * storedBlocks + b];
    }
  }
  return out;
}
