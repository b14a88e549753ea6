import { describe, expect, it } from 'vitest';
import { toDequantizeLinearLayout, transpose2d, type BlockwiseQuantized } from '../../../main/engine/quantize/layout.ts';

/** Deterministic pseudo-random integers (LCG). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** Random codes in the MatMulNBits layout: B [N, kBlocks, blockSize·bits/8], zp [N, ceil(kBlocks·bits/8)]. */
function randomQuantized(K: number, N: number, bits: number, blockSize: number, symmetric: boolean, seed = 1): { q: BlockwiseQuantized; codes: Int32Array; zps: Int32Array } {
  const r = rng(seed);
  const kBlocks = Math.ceil(K / blockSize);
  const blob = (blockSize * bits) / 8;
  const packed = new Uint8Array(N * kBlocks * blob);
  const codes = new Int32Array(N * K);                 // codes[n, k]
  const perByte = 8 / bits;
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const c = Math.floor(r() * (1 << bits));
      codes[n * K + k] = c;
      const b = Math.floor(k / blockSize), kk = k % blockSize;
      packed[n * kBlocks * blob + b * blob + Math.floor(kk / perByte)] |= c << ((kk % perByte) * bits);
    }
  }
  const scales = new Float32Array(N * kBlocks).map(() => 0.01 + r());
  const zpRow = Math.ceil((kBlocks * bits) / 8);
  const zps = new Int32Array(N * kBlocks).fill(1 << (bits - 1));
  let zeroPoints: Uint8Array | null = null;
  if (!symmetric) {
    zeroPoints = new Uint8Array(N * zpRow);
    for (let n = 0; n < N; n++) {
      for (let b = 0; b < kBlocks; b++) {
        const z = Math.floor(r() * (1 << bits));
        zps[n * kBlocks + b] = z;
        zeroPoints[n * zpRow + Math.floor(b / perByte)] |= z << ((b % perByte) * bits);
      }
    }
  }
  return { q: { packed, scales, zeroPoints, k: K, n: N, bits, blockSize, kBlocks }, codes, zps };
}

/** Dequantizes the DequantizeLinear layout exactly as the ONNX spec says: y[k,n] = (x − zp)·scale. */
function dequantizeDQ(K: number, N: number, blockSize: number, d: ReturnType<typeof toDequantizeLinearLayout>): Float32Array {
  const bits = d.dtype.endsWith('4') ? 4 : 8;
  const signed = d.dtype.startsWith('int');
  const field = (buf: Uint8Array, i: number): number => {
    const raw = bits === 8 ? buf[i] : (buf[i >> 1] >> ((i & 1) * 4)) & 15;
    return signed ? (raw >= 1 << (bits - 1) ? raw - (1 << bits) : raw) : raw;
  };
  const y = new Float32Array(K * N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      const b = Math.floor(k / blockSize);
      const zp = d.zeroPoint ? field(d.zeroPoint, b * N + n) : 0;
      y[k * N + n] = (field(d.x, k * N + n) - zp) * d.scale[b * N + n];
    }
  }
  return y;
}

describe('MatMulNBits → DequantizeLinear layout', () => {
  for (const bits of [4, 8]) {
    for (const symmetric of [true, false]) {
      // K = 100 with block 16 → 7 blocks: a partial last block and an odd number of zero points per row.
      it(`${bits}-bit ${symmetric ? 'symmetric' : 'asymmetric'}, K=100 N=13 block 16`, () => {
        const K = 100, N = 13, B = 16;
        const { q, codes, zps } = randomQuantized(K, N, bits, B, symmetric, bits * 10 + Number(symmetric));
        const d = toDequantizeLinearLayout(q);
        expect(d.dtype).toBe(bits === 4 ? (symmetric ? 'int4' : 'uint4') : (symmetric ? 'int8' : 'uint8'));
        expect(d.x.length).toBe(Math.ceil((K * N * bits) / 8));
        expect(d.scale.length).toBe(7 * N);
        expect(d.zeroPoint === null).toBe(symmetric);
        const y = dequantizeDQ(K, N, B, d);
        let mismatches = 0;
        for (let k = 0; k < K; k++) {
          for (let n = 0; n < N; n++) {
            const b = Math.floor(k / B);
            const want = (codes[n * K + k] - zps[n * q.kBlocks + b]) * q.scales[n * q.kBlocks + b];
            if (y[k * N + n] !== Math.fround(want)) mismatches++;
          }
        }
        expect(mismatches).toBe(0);
      });
    }
  }

  it('refuses 2-bit (no runnable ONNX 2-bit type)', () => {
    const { q } = randomQuantized(32, 4, 2, 16, true);
    expect(() => toDequantizeLinearLayout(q)).toThrow(/4 or 8 bits/);
  });
});

describe('transpose2d', () => {
  it('transposes [3, 70] float32 and uint16 arrays', () => {
    const a = Float32Array.from({ length: 210 }, (_, i) => i);
    const t = transpose2d(a, 3, 70);
    expect(t).toBeInstanceOf(Float32Array);
    for (let r = 0; r < 3; r++) for (let c = 0; c < 70; c++) expect(t[c * 3 + r]).toBe(a[r * 70 + c]);
    const h = transpose2d(Uint16Array.from(a), 3, 70);
    expect(h).toBeInstanceOf(Uint16Array);
    expect(Array.from(h)).toEqual(Array.from(t));
  });
});
