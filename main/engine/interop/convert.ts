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

/** One element converter: source element i → destination value (float32 value or float16 bits). */
function converter(src: SafetensorsDtype, dst: TargetDtype, from: Float32Array | Uint16Array): (i: number) => number {
  if (dst === 'fp32') {
    if (src === 'F32') return (i) => from[i];
    if (src === 'F16') { const t = halfTable(); return (i) => t[from[i]]; }
    const f = new Float32Array(1), u = new Uint32Array(f.buffer);
    return (i) => { u[0] = from[i] << 16; return f[0]; };
  }
  if (src === 'F16') return (i) => from[i];
  if (src === 'BF16') { const t = bf16HalfTable(); return (i) => t[from[i]]; }
  return (i) => floatToHalf(from[i]);
}

/**
 * Converts one tensor. `rows`/`cols` describe the source as a matrix (1-D tensors: rows 1); with
 * `transpose` the output is [cols, rows]. Returns the output's little-endian bytes.
 */
export function convertTensor(raw: Uint8Array, src: SafetensorsDtype, dst: TargetDtype, rows: number, cols: number, transpose: boolean): Uint8Array {
  const from = elements(raw, src);
  const count = rows * cols;
  const out = dst === 'fp32' ? new Float32Array(count) : new Uint16Array(count);
  if (!transpose && ((src === 'F32' && dst === 'fp32') || (src === 'F16' && dst === 'fp16'))) {
    out.set(from as never);
  } else {
    const at = converter(src, dst, from);
    if (!transpose) {
      for (let i = 0; i < count; i++) out[i] = at(i);
    } else {
      // out[c, r] = in[r, c], in 32 × 32 tiles so both sides stay in cache.
      const TILE = 32;
      for (let r0 = 0; r0 < rows; r0 += TILE) {
        const r1 = Math.min(rows, r0 + TILE);
        for (let c0 = 0; c0 < cols; c0 += TILE) {
          const c1 = Math.min(cols, c0 + TILE);
          for (let r = r0; r < r1; r++) {
            const rowBase = r * cols;
            for (let cc = c0; cc < c1; cc++) out[cc * rows + r] = at(rowBase + cc);
          }
        }
      }
    }
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
