/**
 * fp32 <-> fp16 and bf16 -> fp32: fast (F16C or baseline, multi-threaded) vs the scalar reference, bit for
 * bit, plus an independent TypeScript model of IEEE binary16 (decode formula, and encode as "nearest
 * representable half, ties to the even bit pattern, |x| >= 65520 overflows").
 */
import { afterAll, describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToF16, reference, setForceBaseline } from '../../../main/engine/native/index.ts';
import { firstMismatches, rng, simdPaths, useSimdPath } from './simd-paths.ts';

const ALL_HALVES = Uint16Array.from({ length: 65536 }, (_, i) => i);
const isNanHalf = (h: number): boolean => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const bitsOf = (f: Float32Array): Uint32Array => new Uint32Array(f.buffer, f.byteOffset, f.length);

/** IEEE binary16 value of a bit pattern, from the definition. */
function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

// Positive finite halves 0x0000..0x7bff are increasing in value: the encoder searches this table.
const POSITIVE = Float64Array.from({ length: 0x7c00 }, (_, h) => halfValue(h));

/** Nearest half to x (a float32 value), ties to the even bit pattern; beyond 65520 → inf. */
function encodeIndependent(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  let lo = 0;
  let hi = 0x7bff;
  while (lo < hi) {  // largest h with POSITIVE[h] <= a
    const mid = (lo + hi + 1) >> 1;
    if (POSITIVE[mid] <= a) lo = mid;
    else hi = mid - 1;
  }
  if (lo === 0x7bff) return sign | 0x7bff;
  const below = a - POSITIVE[lo];
  const above = POSITIVE[lo + 1] - a;
  const h = below < above ? lo : above < below ? lo + 1 : lo % 2 === 0 ? lo : lo + 1;
  return sign | h;
}

const f32 = (x: number): number => Math.fround(x);
const EDGE_CASES = [
  0, -0, 1, -1, 0.1, 1 / 3, -2.5, 65504, -65504, 65519.99, 65520, -65520, 65536, 1e6, 1e38, -3.4e38, Infinity, -Infinity, NaN,
  2 ** -14, 2 ** -14 * (1 - 2 ** -11), 2 ** -24, 2 ** -25, 2 ** -25 * (1 + 2 ** -20), 3 * 2 ** -26, 2 ** -26, 1e-8, -1e-8, 1e-45, -1e-45,
  1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 2048 + 1, 2048 + 3, 4096 + 2, 1024.5, 0.999755859375, 0.99951171875,
  2 ** -15 + 2 ** -25, 2 ** -15 + 2 ** -24 + 2 ** -25, 6.1e-5, 5.96e-8, 5.97e-8, 2.98e-8,
].map(f32);

afterAll(() => setForceBaseline(false));

describe('fp16 reference vs an independent model of binary16', () => {
  it('decodes every half exactly (NaN stays NaN with its sign)', () => {
    const f = reference.f16ToF32(ALL_HALVES);
    const bad: string[] = [];
    for (let h = 0; h < 65536; h++) {
      const ok = isNanHalf(h) ? Number.isNaN(f[h]) && bitsOf(f)[h] >>> 31 === h >> 15 : Object.is(f[h], halfValue(h));
      if (!ok && bad.length < 5) bad.push(`0x${h.toString(16)} → ${f[h]}, want ${halfValue(h)}`);
    }
    expect(bad).toEqual([]);
  });

  it('rounds edge cases and random floats to the nearest half, ties to even', () => {
    const next = rng(7);
    const values = [...EDGE_CASES];
    for (let i = 0; i < 300; i++) values.push(f32((next() - 0.5) * 2 ** Math.floor(next() * 44 - 28)));
    for (let i = 0; i < 100; i++) {  // exact ties: midpoints between neighbouring halves
      const h = Math.floor(next() * 0x7bff);
      values.push(f32((POSITIVE[h] + POSITIVE[h + 1]) / 2) * (next() < 0.5 ? -1 : 1));
    }
    const src = Float32Array.from(values);
    const got = reference.f32ToF16(src);
    for (let i = 0; i < src.length; i++) {
      const want = encodeIndependent(src[i]);
      if (Number.isNaN(src[i])) expect(isNanHalf(got[i]), `NaN at ${i}`).toBe(true);
      else expect(got[i], `f32ToF16(${src[i]})`).toBe(want);
    }
    // a few fixed points of the spec
    const [max, justBelowInf, inf, tinyTie, tinyUp] = reference.f32ToF16(Float32Array.from([65504, 65519.99, 65520, 2 ** -25, 3 * 2 ** -26]));
    expect([max, justBelowInf, inf, tinyTie, tinyUp]).toEqual([0x7bff, 0x7bff, 0x7c00, 0x0000, 0x0001]);
  });

  it('keeps NaN quiet and signed in both directions', () => {
    const nanBits = Uint32Array.from([0x7fc00000, 0xffc00000, 0x7f800001, 0xff812345, 0x7fbfffff]);
    const h = reference.f32ToF16(new Float32Array(nanBits.buffer));
    for (let i = 0; i < h.length; i++) {
      expect(isNanHalf(h[i])).toBe(true);
      expect(h[i] & 0x0200).toBe(0x0200);  // quiet bit
      expect(h[i] >> 15).toBe(nanBits[i] >>> 31);
    }
  });
});

describe.each(simdPaths())('fp16 fast path (%s) vs reference, bit for bit', (path) => {
  it('every half: f16 → f32 matches, and f16 → f32 → f16 is the identity (NaNs come back quieted)', async () => {
    useSimdPath(path);
    const fast = await f16ToF32(ALL_HALVES);
    const ref = reference.f16ToF32(ALL_HALVES);
    expect(firstMismatches(bitsOf(fast), bitsOf(ref))).toEqual([]);
    const back = await f32ToF16(fast);
    const want = ALL_HALVES.map((h) => (isNanHalf(h) ? h | 0x0200 : h));
    expect(firstMismatches(back, want)).toEqual([]);
  });

  it('a million random bit patterns plus edge cases (NaN payloads, subnormals, overflow)', async () => {
    useSimdPath(path);
    const next = rng(path === 'avx2' ? 11 : 12);
    const n = 1_000_003;  // not a multiple of 8: exercises the tails
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) bits[i] = Math.floor(next() * 2 ** 32) >>> 0;
    const src = new Float32Array(bits.buffer);
    src.set(EDGE_CASES, 0);
    for (let i = 0; i < 2000; i++) bits[1000 + i] = (0x33000000 + i * 0x1000 + (i & 1)) >>> 0;  // around 2^-25 .. 2^-14
    for (let i = 0; i < 2000; i++) bits[4000 + i] = (0x477fe000 + i) >>> 0;  // around 65504 .. 65536
    const fast = await f32ToF16(src);
    const ref = reference.f32ToF16(src);
    expect(firstMismatches(fast, ref)).toEqual([]);
  });

  it('bf16 → f32 puts the 16 bits on top of the float', async () => {
    useSimdPath(path);
    const next = rng(3);
    const src = Uint16Array.from({ length: 100_001 }, () => Math.floor(next() * 65536));
    const fast = await bf16ToF32(src);
    const ref = reference.bf16ToF32(src);
    const fb = bitsOf(fast);
    for (let i = 0; i < src.length; i++) if (fb[i] !== src[i] * 65536) throw new Error(`bf16 ${src[i]} → ${fb[i]}`);
    expect(firstMismatches(fb, bitsOf(ref))).toEqual([]);
  });

  it('empty arrays', async () => {
    useSimdPath(path);
    expect((await f32ToF16(new Float32Array(0))).length).toBe(0);
    expect((await f16ToF32(new Uint16Array(0))).length).toBe(0);
  });
});

describe('fp16 argument checks', () => {
  it('rejects the wrong array types with INVALID_INPUT', async () => {
    await expect(f32ToF16(new Float64Array(4) as unknown as Float32Array)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(f16ToF32(new Int16Array(4) as unknown as Uint16Array)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    expect(() => reference.f32ToF16([1, 2] as unknown as Float32Array)).toThrow(/Float32Array/);
  });
});
