/**
 * Element conversion of safetensors payloads into the imported model's dtype, with an optional 2-D
 * transpose ([rows, cols] → [cols, rows], for Linear weights stored [out, in] read as MatMul's [in, out]).
 * float16 and bfloat16 go through 65,536-entry tables; float32 → float16 rounds to nearest even.
 */
import { WhittleError } from '../errors.ts';
import { floatToHalf, halfToFloat } from '../onnx/tensor-data.ts';
import type { SafetensorsDtype } from './safetensors.ts';

export type TargetDtype = 'fp32' | 'fp16';

let f16ToF32: Float32Array | null = null;
let bf16ToF16: Uint16Array | null = null;

function halfTable(): Float32Array {
  if (!f16ToF32) {
    f16ToF32 = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16ToF32[i] = halfToFloat(i);
  }
  return f16ToF32;
}

function bf16HalfTable(): Uint16Array {
  if (!bf16ToF16) {
    bf16ToF16 = new Uint16Array(65536);
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < 65536; i++) {
      u[0] = i << 16;
      bf16ToF16[i] = floatToHalf(f[0]);
    }
  }
  return bf16ToF16;
}

/** Source elements as a flat array of float32 values or 16-bit patterns. */
function elements(raw: Uint8Array, src: SafetensorsDtype): Float32Array | Uint16Array {
  const aligned = raw.byteOffset % 4 === 0 ? raw : raw.slice();
  if (src === 'F32') return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
  if (src === 'F16' || src === 'BF16') return new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
  throw new WhittleError('UNSUPPORTED_MODEL', `Weights of dtype ${src} cannot be imported; Whittle reads F32, F16 and BF16.`);
}

/** Converts `from` elementwise into the target dtype (float32 values or float16 bits), in tight per-case loops. */
function convertFlat(from: Float32Array | Uint16Array, src: SafetensorsDtype, dst: TargetDtype): Float32Array | Uint16Array {
  const n = from.length;
  if (dst === 'fp32') {
    if (src === 'F32') return Float32Array.from(from as Float32Array);
    const out = new Float32Array(n);
    if (src === 'F16') {
      const t = halfTable();
      for (let i = 0; i < n; i++) out[i] = t[from[i]];
    } else {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = from[i] << 16; // bfloat16 is the top half of a float32
    }
    return out;
  }
  const out = new Uint16Array(n);
  if (src === 'F16') out.set(from as Uint16Array);
  else if (src === 'BF16') {
    const t = bf16HalfTable();
    for (let i = 0; i < n; i++) out[i] = t[from[i]];
  } else {
    for (let i = 0; i < n; i++) out[i] = floatToHalf(from[i]);
  }
  return out;
}

/** out [cols, rows] = in [rows, cols]ᵀ, in 32 × 32 tiles so both sides stay in cache. */
function transpose<A extends Float32Array | Uint16Array>(out: A, a: A, rows: number, cols: number): A {
  const TILE = 32;
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) {
        const rowBase = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = a[rowBase + c];
      }
    }
  }
  return out;
}

/**
 * Converts one tensor (or a run of whole rows of one). `rows`/`cols` describe the source as a matrix
 * (1-D tensors: rows 1); with `transpose` the output is [cols, rows]. Returns little-endian bytes.
 */
export function convertTensor(raw: Uint8Array, src: SafetensorsDtype, dst: TargetDtype, rows: number, cols: number, transpose_: boolean): Uint8Array {
  const flat = convertFlat(elements(raw, src), src, dst);
  if (flat.length !== rows * cols) throw new WhittleError('INTERNAL', `convertTensor: ${flat.length} elements given for [${rows}, ${cols}].`);
  const out = !transpose_ ? flat : flat instanceof Float32Array ? transpose(new Float32Array(flat.length), flat, rows, cols) : transpose(new Uint16Array(flat.length), flat, rows, cols);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
