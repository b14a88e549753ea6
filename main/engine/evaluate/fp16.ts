/**
 * IEEE 754 binary16 → binary32, for fp16 logits. onnxruntime hands float16 tensors over as a
 * Float16Array where the runtime has one (Node 24, recent Chromium) and as raw Uint16Array bits otherwise.
 *
 * binary16 layout: sign (1) | exponent (5, bias 15) | mantissa (10).
 *   exponent 0     : subnormal, value = ±mantissa · 2^-24
 *   exponent 1..30 : normal,    value = ±(1 + mantissa/1024) · 2^(exponent-15)
 *   exponent 31    : ±Infinity (mantissa 0) or NaN
 */

export function halfBitsToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** A float32 copy of float16 data given as a Float16Array or as its raw bits. */
export function halfToFloat32(data: ArrayLike<number>): Float32Array {
  const out = new Float32Array(data.length);
  if (data instanceof Uint16Array) {
    for (let i = 0; i < data.length; i++) out[i] = halfBitsToFloat(data[i]);
  } else {
    for (let i = 0; i < data.length; i++) out[i] = data[i];
  }
  return out;
}
