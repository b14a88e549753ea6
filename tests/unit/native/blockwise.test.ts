/**
 * Block-wise RTN quantization to com.microsoft.MatMulNBits: fast (multi-threaded, tiled) vs the plain
 * reference byte for byte, the dequantized weight within a step bound of the original, and the packing
 * layout against hand-computed cases. Convention (ONNX Runtime MLAS): native-kernels/src/blockwise_format.h.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  blockwiseLayout, dequantizeBlockwise, quantizeBlockwise, reference, setForceBaseline, setThreads,
  type BlockwiseOptions, type BlockwiseQuantized, type QuantBits,
} from '../../../main/engine/native/index.ts';
import { firstMismatches, rng, simdPaths, useSimdPath } from './simd-paths.ts';

afterAll(() => {
  setForceBaseline(false);
  setThreads(0);
});

/** Value k of column n in the packed layout [N, kBlocks, blockSize·bits/8], first value in the low bits. */
function unpacked(q: BlockwiseQuantized, n: number, k: number): number {
  const perByte = 8 / q.bits;
  const block = Math.floor(k / q.blockSize);
  const r = k % q.blockSize;
  const byte = q.packed[(n * q.kBlocks + block) * ((q.blockSize * q.bits) / 8) + Math.floor(r / perByte)];
  return (byte >> ((r % perByte) * q.bits)) & ((1 << q.bits) - 1);
}

function zeroPointOf(q: BlockwiseQuantized, n: number, block: number): number {
  if (!q.zeroPoints) return 1 << (q.bits - 1);
  const perByte = 8 / q.bits;
  const row = Math.ceil((q.kBlocks * q.bits) / 8);
  return (q.zeroPoints[n * row + Math.floor(block / perByte)] >> ((block % perByte) * q.bits)) & ((1 << q.bits) - 1);
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function expectSameBytes(fast: BlockwiseQuantized, ref: BlockwiseQuantized): void {
  expect(firstMismatches(fast.packed, ref.packed)).toEqual([]);
  expect(firstMismatches(bytesOf(fast.scales), bytesOf(ref.scales))).toEqual([]);
  expect(fast.zeroPoints === null).toBe(ref.zeroPoints === null);
  if (fast.zeroPoints && ref.zeroPoints) expect(firstMismatches(fast.zeroPoints, ref.zeroPoints)).toEqual([]);
  expect(fast.sqError).toBe(ref.sqError);
}

/**
 * Checks every dequantized value against the original. Allowed error: half a step (|scale|/2); for a
 * symmetric block, values beyond the top of the grid (w/scale + zp > 2^bits − 1/2, the end opposite the
 * value of largest magnitude) clamp and may be up to one step off. Slack: 1e-5 of a step for float
 * rounding; with scales rounded to float16, (2^bits − 1) times twice the float16 rounding error of the
 * scale (2^-11 relative, or 2^-25 absolute for scales in float16's subnormal range).
 */
function checkErrorBound(original: Float32Array, deq: Float32Array, q: BlockwiseQuantized, symmetric: boolean, fp16Scales: boolean): void {
  const qmax = (1 << q.bits) - 1;
  let sq = 0;
  for (let k = 0; k < q.k; k++) {
    for (let n = 0; n < q.n; n++) {
      const block = Math.floor(k / q.blockSize);
      const scale = q.scales[n * q.kBlocks + block];
      const s = Math.abs(scale);
      const w = original[k * q.n + n];
      const d = deq[k * q.n + n];
      const zp = zeroPointOf(q, n, block);
      const x = scale === 0 ? zp : w / scale + zp;
      const slack = (fp16Scales ? qmax * Math.max(s * 2 ** -10, 2 ** -24) : s * 1e-5) + 1e-30;
      const allowed = (symmetric && x > qmax + 0.5 ? s : s / 2) + slack;
      const err = Math.abs(w - d);
      if (!(err <= allowed)) {
        throw new Error(`W[${k},${n}] = ${w} dequantized to ${d}: error ${err} > ${allowed} (scale ${scale}, zp ${zp}, q ${unpacked(q, n, k)})`);
      }
      sq += (w - d) ** 2;
    }
  }
  expect(Math.abs(q.sqError - sq)).toBeLessThanOrEqual(1e-9 * sq + 1e-30);
}

/** Random [K, N] weight with per-column magnitudes from 1e-3 to 10, one all-zero column and one all-zero block. */
function randomWeight(k: number, n: number, seed: number, zeroBlock = 16): Float32Array {
  const next = rng(seed);
  const colScale = Array.from({ length: n }, () => 10 ** (next() * 4 - 3));
  const w = new Float32Array(k * n);
  for (let r = 0; r < k; r++) {
    for (let c = 0; c < n; c++) {
      const u = next() + next() + next() - 1.5;  // bell-shaped, like trained weights
      w[r * n + c] = c === 3 ? 0 : u * colScale[c];
    }
  }
  for (let r = 0; r < Math.min(k, zeroBlock); r++) w[r * n + 5] = 0;
  return w;
}

describe.each(simdPaths())('quantizeBlockwise fast path (%s) vs reference', (path) => {
  for (const bits of [2, 4, 8] as const) {
    it(`${bits}-bit: blocks 16..256 × sym/asym × K multiple or not × fp32/fp16: same bytes, error within the step bound`, async () => {
      useSimdPath(path);
      let seed = bits * 1000;
      for (const blockSize of [16, 32, 64, 128, 256]) {
        for (const symmetric of [true, false]) {
          for (const kMultiple of [true, false]) {
            for (const fp16 of [false, true]) {
              const k = kMultiple ? 2 * blockSize : 2 * blockSize + 5;
              const n = 37;
              const w32 = randomWeight(k, n, seed++, blockSize);
              const weight = fp16 ? reference.f32ToF16(w32) : w32;
              const original = fp16 ? reference.f16ToF32(weight as Uint16Array) : w32;
              const opts: BlockwiseOptions = { k, n, bits, blockSize, symmetric, weightIsFp16: fp16 };
              const label = JSON.stringify(opts);

              const fast = await quantizeBlockwise(weight, opts);
              const ref = reference.quantizeBlockwise(weight, opts);
              const layout = blockwiseLayout(k, n, bits, blockSize);
              expect(fast.kBlocks, label).toBe(layout.kBlocks);
              expect(fast.packed.length, label).toBe(layout.packedBytes);
              expect(fast.zeroPoints?.length ?? null, label).toBe(symmetric ? null : layout.zeroPointBytes);
              expectSameBytes(fast, ref);

              const deq = await dequantizeBlockwise(fast);
              const deqRef = reference.dequantizeBlockwise(ref);
              expect(firstMismatches(bytesOf(deq), bytesOf(deqRef)), label).toEqual([]);
              checkErrorBound(original, deq, fast, symmetric, fp16);

              // the all-zero column and block: scale 0, dequantized exactly 0, no NaN anywhere
              for (let b = 0; b < fast.kBlocks; b++) expect(fast.scales[3 * fast.kBlocks + b], label).toBe(0);
              expect(fast.scales[5 * fast.kBlocks], label).toBe(0);
              for (let r = 0; r < k; r++) expect(deq[r * n + 3]).toBe(0);
              expect(deq.every(Number.isFinite), label).toBe(true);
              if (fp16) {  // fp16 weights get scales that convert to float16 exactly
                const roundTrip = reference.f16ToF32(reference.f32ToF16(fast.scales));
                expect(firstMismatches(bytesOf(roundTrip), bytesOf(fast.scales)), label).toEqual([]);
              }
            }
          }
        }
      }
    });
  }

  it('edge columns inside 8-column groups (ties, subnormal and tiny blocks, huge values, zero-point ties): same bytes for every option', async () => {
    useSimdPath(path);
    // N = 27: three full 8-column groups and a remainder. Per block of `blockSize` rows, column 0 has
    // −8 and 7 (scale 1 for 4-bit sym and asym) and half-integers between (ties); column 1 subnormal
    // values; column 2 zeros; column 3 values up to 3e38 (their plain sum overflows; 3e4 where scales are
    // float16); column 4 values of 1e-30 (an fp16 scale rounds to 0); column 5 spans [−1.25, 6.25] (zero point −min/scale = 2.5, a
    // tie); columns 8 and 17 are zero except one block; the rest bell-shaped of varied magnitude.
    const n = 27;
    for (const blockSize of [16, 32, 64]) {
      const k = 2 * blockSize + 7;
      const next = rng(blockSize);
      const w32 = randomWeight(k, n, 900 + blockSize, blockSize);
      for (let r = 0; r < k; r++) {
        const inBlock = r % blockSize;
        const set = (c: number, v: number): void => { w32[r * n + c] = v; };
        set(0, inBlock === 0 ? -8 : inBlock === 1 ? 7 : Math.floor(next() * 15) - 7.5);
        set(1, (Math.floor(next() * 17) - 8) * 1e-44);
        set(2, 0);
        set(3, (0.5 + next() / 2) * 3e38);
        set(4, (next() - 0.5) * 1e-30);
        set(5, inBlock === 0 ? -1.25 : inBlock === 1 ? 6.25 : next() * 7.5 - 1.25);
        if (r >= blockSize) { set(8, 0); set(17, 0); }
      }
      const small = w32.map((v, i) => (i % n === 3 ? v / 1e34 : v));  // column 3 within float16 scales
      const w16 = reference.f32ToF16(small);
      for (const bits of [2, 4, 8] as const) {
        for (const symmetric of [true, false]) {
          for (const rounding of ['half-even', 'half-away'] as const) {
            for (const [weight, weightIsFp16, scalesFp16] of [[w32, false, false], [small, false, true], [w16, true, true]] as const) {
              const opts: BlockwiseOptions = { k, n, bits, blockSize, symmetric, rounding, weightIsFp16, scalesFp16 };
              const fast = await quantizeBlockwise(weight, opts);
              const ref = reference.quantizeBlockwise(weight, opts);
              expectSameBytes(fast, ref);
              const deq = await dequantizeBlockwise(fast);
              expect(firstMismatches(bytesOf(deq), bytesOf(reference.dequantizeBlockwise(ref))), JSON.stringify(opts)).toEqual([]);
            }
          }
        }
      }
    }
  });

  it('NaN / infinite weights and scales that overflow are rejected inside an 8-column group too', async () => {
    useSimdPath(path);
    const k = 64;
    const n = 16;
    const base: BlockwiseOptions = { k, n, bits: 4, blockSize: 32, symmetric: true };
    for (const bad of [NaN, Infinity, -Infinity]) {
      const w = randomWeight(k, n, 5);
      w[40 * n + 10] = bad;
      await expect(quantizeBlockwise(w, base)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/k=40, n=10/) });
      expect(() => reference.quantizeBlockwise(w, base)).toThrow(/k=40, n=10/);
    }
    // max − min overflows float32 (asymmetric), or the scale does not fit float16
    const wide = randomWeight(k, n, 6);
    wide[33 * n + 9] = 3e38;
    wide[34 * n + 9] = -3e38;
    const asym = { ...base, symmetric: false };
    await expect(quantizeBlockwise(wide, asym)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/block 1 of column 9 span too wide/) });
    expect(() => reference.quantizeBlockwise(wide, asym)).toThrow(/block 1 of column 9 span too wide/);
    const big = randomWeight(k, n, 7);
    big[3 * n + 12] = 1e9;
    await expect(quantizeBlockwise(big, { ...base, scalesFp16: true })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/block 0 of column 12 .*float16/) });
    expect(() => reference.quantizeBlockwise(big, { ...base, scalesFp16: true })).toThrow(/block 0 of column 12 .*float16/);
  });

  it('a larger weight: same bytes with 1 thread and with all threads, both rounding rules', async () => {
    useSimdPath(path);
    const k = 1000;
    const n = 300;
    const w = randomWeight(k, n, 77);
    for (const rounding of ['half-even', 'half-away'] as const) {
      const opts: BlockwiseOptions = { k, n, bits: 4, blockSize: 32, symmetric: false, rounding };
      setThreads(1);
      const one = await quantizeBlockwise(w, opts);
      setThreads(0);
      const all = await quantizeBlockwise(w, opts);
      expectSameBytes(one, all);
      expectSameBytes(all, reference.quantizeBlockwise(w, opts));
    }
  });
});

describe('quantizeBlockwise layout, hand-computed', () => {
  const tiny = (values: number[], n: number, bits: QuantBits, symmetric: boolean, blockSize = 16) =>
    quantizeBlockwise(Float32Array.from(values), { k: values.length / n, n, bits, blockSize, symmetric });

  it('4-bit symmetric, K = 16, N = 1: scale = −(value of largest magnitude)/8, q = w/scale + 8, two per byte, low nibble first', async () => {
    // w = (k − 8)/4: largest magnitude is −2 → scale 0.25, q_k = k
    const q = await tiny(Array.from({ length: 16 }, (_, k) => (k - 8) / 4), 1, 4, true);
    expect(Array.from(q.packed)).toEqual([0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
    expect(Array.from(q.scales)).toEqual([0.25]);
    expect(q.zeroPoints).toBeNull();
    expect(q.sqError).toBe(0);
    // w = (k − 7)/4: largest magnitude is +2 → scale −0.25 and q_k = 15 − k (ONNX Runtime's sign convention)
    const neg = await tiny(Array.from({ length: 16 }, (_, k) => (k - 7) / 4), 1, 4, true);
    expect(Array.from(neg.scales)).toEqual([-0.25]);
    expect(Array.from(neg.packed)).toEqual([0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01]);
  });

  it('4-bit asymmetric: zero points packed two per byte, low nibble first', async () => {
    // three blocks of 16: [0, 1.5] → zp 0; [−1.5, 0] → zp 15; [−0.5, 1] → zp 5 (scale 0.1 each)
    const values = [
      ...Array.from({ length: 16 }, (_, k) => k / 10),
      ...Array.from({ length: 16 }, (_, k) => -k / 10),
      ...Array.from({ length: 16 }, (_, k) => k / 10 - 0.5),
    ];
    const q = await tiny(values, 1, 4, false);
    expect(Array.from(q.zeroPoints!)).toEqual([0xf0, 0x05]);
    expect(Array.from(q.scales)).toEqual([Math.fround(0.1), Math.fround(0.1), Math.fround(0.1)]);
    expect(Array.from(q.packed.subarray(0, 8))).toEqual([0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);  // q = k
    expect(Array.from(q.packed.subarray(8, 16))).toEqual([0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01]);  // q = 15 − k
    expect(Array.from(q.packed.subarray(16, 24))).toEqual([0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
  });

  it('2-bit, N = 2: four values per byte, columns outermost', async () => {
    // column 0 cycles −2, −1, 0, 1 (scale 1, q = w + 2); column 1 is zero (scale 0, q = zp = 2)
    const values: number[] = [];
    for (let k = 0; k < 16; k++) values.push((k % 4) - 2, 0);
    const q = await tiny(values, 2, 2, true);
    expect(Array.from(q.packed)).toEqual([0xe4, 0xe4, 0xe4, 0xe4, 0xaa, 0xaa, 0xaa, 0xaa]);
    expect(Array.from(q.scales)).toEqual([1, 0]);
  });

  it('8-bit symmetric: one value per byte, zero point 128', async () => {
    const q = await tiny(Array.from({ length: 16 }, (_, k) => k - 8), 1, 8, true);
    expect(Array.from(q.scales)).toEqual([0.0625]);
    expect(Array.from(q.packed)).toEqual(Array.from({ length: 16 }, (_, k) => 16 * k));
  });

  it('K not a multiple of the block: the padding holds the zero point (dequantizes to 0)', async () => {
    const values = Array.from({ length: 20 }, (_, k) => Math.sin(k + 1));
    for (const symmetric of [true, false]) {
      const q = await tiny(values, 1, 4, symmetric);
      expect(q.kBlocks).toBe(2);
      const zp = zeroPointOf(q, 0, 1);
      for (let k = 20; k < 32; k++) expect(unpacked(q, 0, k)).toBe(zp);
      expect((await dequantizeBlockwise(q)).length).toBe(20);
    }
  });

  it('ties: half-even by default, half-away as ONNX Runtime rounds; the zero point is rounded the same way', async () => {
    // block: −8 sets scale 1 (q = w + 8); then x = 8.5, 9.5, 5.5, 10.5, 11.5, 7.5
    const values = [-8, 0.5, 1.5, -2.5, 2.5, 3.5, -0.5, ...new Array(9).fill(0)];
    const k = values.length;
    const w = Float32Array.from(values);
    const even = await quantizeBlockwise(w, { k, n: 1, bits: 4, blockSize: 16, symmetric: true });
    const away = await quantizeBlockwise(w, { k, n: 1, bits: 4, blockSize: 16, symmetric: true, rounding: 'half-away' });
    const qs = (q: BlockwiseQuantized) => Array.from({ length: 7 }, (_, i) => unpacked(q, 0, i));
    expect(qs(even)).toEqual([0, 8, 10, 6, 10, 12, 8]);
    expect(qs(away)).toEqual([0, 9, 10, 6, 11, 12, 8]);
    expectSameBytes(away, reference.quantizeBlockwise(w, { k, n: 1, bits: 4, blockSize: 16, symmetric: true, rounding: 'half-away' }));
    // asymmetric zero point: min −2.5, max 5 → scale 0.5, −min/scale = 5 exactly; min −0.25·7.5/... a true tie:
    // values [−0.75, 6.75] → scale 0.5, −min/scale = 1.5 → zp 2 (even) or 2 (away); [−1.25, 6.25] → 2.5 → 2 or 3
    const zp = async (lo: number, hi: number, rounding: 'half-even' | 'half-away') => {
      const v = Float32Array.from([lo, hi, ...new Array(14).fill(0)]);
      return zeroPointOf(await quantizeBlockwise(v, { k: 16, n: 1, bits: 4, blockSize: 16, symmetric: false, rounding }), 0, 0);
    };
    expect([await zp(-0.75, 6.75, 'half-even'), await zp(-0.75, 6.75, 'half-away')]).toEqual([2, 2]);
    expect([await zp(-1.25, 6.25, 'half-even'), await zp(-1.25, 6.25, 'half-away')]).toEqual([2, 3]);
  });

  it('a block of tiny subnormal weights quantizes to its zero point without NaN', async () => {
    const w = Float32Array.from({ length: 16 }, (_, k) => (k - 8) * 1e-44);
    for (const symmetric of [true, false]) {
      const q = await quantizeBlockwise(w, { k: 16, n: 1, bits: 4, blockSize: 16, symmetric });
      expectSameBytes(q, reference.quantizeBlockwise(w, { k: 16, n: 1, bits: 4, blockSize: 16, symmetric }));
      expect((await dequantizeBlockwise(q)).every(Number.isFinite)).toBe(true);
    }
  });
});

describe('quantizeBlockwise input checks', () => {
  const base: BlockwiseOptions = { k: 32, n: 2, bits: 4, blockSize: 16, symmetric: true };

  it('rejects NaN and infinite weights with INVALID_INPUT naming the position', async () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const w = new Float32Array(64);
      w[2 * 21 + 1] = bad;
      await expect(quantizeBlockwise(w, base)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/k=21, n=1/) });
      expect(() => reference.quantizeBlockwise(w, base)).toThrow(/k=21, n=1/);
    }
    const h = reference.f32ToF16(new Float32Array(64));
    h[7] = 0x7e00;
    await expect(quantizeBlockwise(h, { ...base, weightIsFp16: true })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('rejects bad shapes and options before doing any work', async () => {
    const w = new Float32Array(64);
    const cases: [BlockwiseOptions, RegExp][] = [
      [{ ...base, bits: 3 as QuantBits }, /bits must be 2, 4 or 8/],
      [{ ...base, blockSize: 24 }, /power of two/],
      [{ ...base, blockSize: 512 }, /power of two/],
      [{ ...base, k: 31 }, /weight must hold k·n = 62/],
      [{ ...base, n: 0 }, /n must be an integer ≥ 1/],
      [{ ...base, rounding: 'up' as never }, /rounding/],
    ];
    for (const [opts, message] of cases) {
      await expect(quantizeBlockwise(w, opts)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(message) });
    }
    await expect(quantizeBlockwise(new Uint16Array(64), base)).rejects.toMatchObject({ message: expect.stringMatching(/weightIsFp16/) });
    await expect(quantizeBlockwise(w, { ...base, weightIsFp16: true })).rejects.toMatchObject({ message: expect.stringMatching(/Uint16Array/) });
  });

  it('dequantizeBlockwise rejects arrays that do not match the shape', async () => {
    const q = await quantizeBlockwise(new Float32Array(64), base);
    await expect(dequantizeBlockwise({ ...q, scales: new Float32Array(3) })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/scales/) });
    await expect(dequantizeBlockwise({ ...q, zeroPoints: new Uint8Array(1) })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/zeroPoints/) });
  });
});
