/** float16 / bfloat16 conversions (native-kernels/src/fp16.cc), and their references. */
import { callAsync, callSync, checkArray, load } from './addon.ts';

/** float32 → float16 bits, round to nearest even (overflow to ±inf, subnormals kept, NaN quieted with its sign). */
export async function f32ToF16(src: Float32Array): Promise<Uint16Array> {
  checkArray(src, Float32Array, 'src');
  return callAsync(() => load().f32ToF16(new Uint16Array(src.length), src));
}

/** float16 bits → float32 (exact; NaN quieted). */
export async function f16ToF32(src: Uint16Array): Promise<Float32Array> {
  checkArray(src, Uint16Array, 'src');
  return callAsync(() => load().f16ToF32(new Float32Array(src.length), src));
}

/** bfloat16 bits → float32 (exact). */
export async function bf16ToF32(src: Uint16Array): Promise<Float32Array> {
  checkArray(src, Uint16Array, 'src');
  return callAsync(() => load().bf16ToF32(new Float32Array(src.length), src));
}

/** Scalar references of the conversions. */
export const fp16Reference = {
  f32ToF16(src: Float32Array): Uint16Array {
    checkArray(src, Float32Array, 'src');
    const dst = new Uint16Array(src.length);
    callSync(() => load().f32ToF16Ref(dst, src));
    return dst;
  },
  f16ToF32(src: Uint16Array): Float32Array {
    checkArray(src, Uint16Array, 'src');
    const dst = new Float32Array(src.length);
    callSync(() => load().f16ToF32Ref(dst, src));
    return dst;
  },
  bf16ToF32(src: Uint16Array): Float32Array {
    checkArray(src, Uint16Array, 'src');
    const dst = new Float32Array(src.length);
    callSync(() => load().bf16ToF32Ref(dst, src));
    return dst;
  },
};
