/**
 * GGUF blocks and file layout: llama.cpp's Q8_0 / Q4_0 / Q4_1 block bytes (scale, nibble order), their
 * reconstruction error, MatMulNBits → Q4_1 mapping, head regrouping, and the writer read back by the reader.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { regroupRows } from '../../../main/engine/interop/gguf-export.ts';
import { decodeRows, dequantizeNBitsRows, nbitsToQ4_1, quantizeQ4_0, quantizeQ4_1, quantizeQ8_0, toF16Bytes } from '../../../main/engine/interop/gguf-quant.ts';
import { readGguf, readGgufTensor } from '../../../main/engine/interop/gguf-reader.ts';
import { GgmlType, ggufTensorBytes, GgufValueType, kv, writeGguf } from '../../../main/engine/interop/gguf-writer.ts';
import { floatToHalf, halfToFloat } from '../../../main/engine/onnx/tensor-data.ts';
import { tempDir } from '../../helpers/fixtures.ts';

const tmp = tempDir('whittle-gguf-unit-');
afterAll(() => tmp.cleanup());

/** Deterministic pseudo-random values in [−1, 1). */
function values(n: number, seed = 1): Float32Array {
  let s = seed;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) % 2 ** 31; out[i] = s / 2 ** 30 - 1; }
  return out;
}
const f16 = (x: number): number => halfToFloat(floatToHalf(x));

describe('block formats', () => {
  it('Q4_1: d = (max − min)/15 and m = min as f16; byte j holds value j (low) and j + 16 (high)', () => {
    const x = new Float32Array(32).map((_, i) => i * 0.5 - 3); // min −3, max 12.5
    const b = quantizeQ4_1(x, 1, 32);
    expect(b.length).toBe(20);
    const view = new DataView(b.buffer);
    expect(halfToFloat(view.getUint16(0, true))).toBe(f16(15.5 / 15));
    expect(halfToFloat(view.getUint16(2, true))).toBe(-3);
    const d = Math.fround(15.5 / 15);
    for (let j = 0; j < 16; j++) {
      expect(b[4 + j] & 15).toBe(Math.min(15, Math.trunc((x[j] + 3) / d + 0.5)));
      expect(b[4 + j] >> 4).toBe(Math.min(15, Math.trunc((x[j + 16] + 3) / d + 0.5)));
    }
    expect(b[4] & 15).toBe(0);
    expect(b[4 + 15] >> 4).toBe(15);
  });

  it('Q4_0: d = (value of largest magnitude)/−8, codes q − 8; Q8_0: d = max|x|/127, rounded int8', () => {
    const x = new Float32Array(32).map((_, i) => (i - 10) / 4); // largest magnitude 21/4 (positive) → d < 0
    const q4 = quantizeQ4_0(x, 1, 32);
    const d4 = halfToFloat(new DataView(q4.buffer).getUint16(0, true));
    expect(d4).toBe(f16(21 / 4 / -8));
    expect(q4[2 + 15] >> 4).toBe(0); // x = 21/4 → 21/4 / d + 8.5 = 0.5 → 0
    const q8 = quantizeQ8_0(x, 1, 32);
    const d8 = halfToFloat(new DataView(q8.buffer).getUint16(0, true));
    expect(d8).toBe(f16(21 / 4 / 127));
    expect(new Int8Array(q8.buffer, 2, 32)[31]).toBe(127);
    expect(new Int8Array(q8.buffer, 2, 32)[0]).toBe(Math.round((10 / 4) * (127 / (21 / 4))) * -1);
  });

  it('decoded values are within half a step of the input (plus the f16 rounding of the scale)', () => {
    const rows = 6, ne0 = 64;
    const x = values(rows * ne0, 7);
    for (const [type, enc, steps] of [[GgmlType.Q8_0, quantizeQ8_0, 127], [GgmlType.Q4_0, quantizeQ4_0, 8], [GgmlType.Q4_1, quantizeQ4_1, 15]] as const) {
      const y = decodeRows(enc(x, rows, ne0), rows * ne0, type);
      for (let b = 0; b < (rows * ne0) / 32; b++) {
        const block = x.subarray(b * 32, b * 32 + 32);
        const range = type === GgmlType.Q4_1 ? Math.max(...block) - Math.min(...block) : Math.max(...block.map(Math.abs));
        const step = range / steps;
        for (let j = 0; j < 32; j++) expect(Math.abs(y[b * 32 + j] - block[j])).toBeLessThanOrEqual(step * 0.5 + range * 2 ** -9 + 1e-6 + (type === GgmlType.Q4_0 ? step : 0));
      }
    }
    expect(decodeRows(toF16Bytes(x), x.length, GgmlType.F16)).toEqual(x.map(f16));
  });

  it('a row that is not whole blocks of 32 is refused', () => {
    expect(() => quantizeQ4_1(new Float32Array(48), 1, 48)).toThrow(/multiple of 32/);
    expect(() => ggufTensorBytes([172, 64], GgmlType.Q8_0)).toThrow(/172/);
    expect(ggufTensorBytes([172, 64], GgmlType.F32)).toBe(172 * 64 * 4);
  });
});

describe('MatMulNBits → Q4_1', () => {
  // K = 64 (2 blocks), N = 3, codes and zero points from a counter, scales from a formula.
  const K = 64, N = 3;
  const packed = new Uint8Array(N * K / 2).map((_, i) => (i * 37 + 11) & 255);
  const scales = new Float32Array(N * 2).map((_, i) => 0.01 * (i + 1) * (i % 2 ? -1 : 1) + 0.003);
  const zeroPoints = new Uint8Array(N).map((_, i) => (i * 5 + 3) | (((i * 7 + 9) & 15) << 4));
  const w = { packed, scales, zeroPoints, k: K, n: N, bits: 4, blockSize: 32 };

  it('dequantizes to (q − z)·s within the f16 rounding of d and m', () => {
    const want = dequantizeNBitsRows(w);
    const got = decodeRows(nbitsToQ4_1(w), K * N, GgmlType.Q4_1);
    for (let n = 0; n < N; n++) {
      for (let b = 0; b < 2; b++) {
        const s = scales[n * 2 + b];
        const bound = Math.abs(f16(s) - s) * 15 + Math.abs(s) * 16 * 2 ** -11;
        for (let j = 0; j < 32; j++) expect(Math.abs(got[n * K + b * 32 + j] - want[n * K + b * 32 + j])).toBeLessThanOrEqual(bound);
      }
    }
    // (q − z)·s recomputed here from the packed bytes for one value: n = 1, k = 33 (odd: high nibble)
    const q = packed[1 * 32 + 16] >> 4;
    const z = zeroPoints[1] >> 4;
    expect(want[1 * K + 33]).toBeCloseTo((q - z) * scales[1 * 2 + 1], 6);
  });

  it('with scales exact in f16, the mapping is exact', () => {
    const exact = { ...w, scales: new Float32Array([0.25, -0.5, 0.125, 1, 2, 0.0625]) };
    const plusZero = (v: Float32Array): number[] => Array.from(v, (x) => x + 0); // −0 and 0 alike
    expect(plusZero(decodeRows(nbitsToQ4_1(exact), K * N, GgmlType.Q4_1))).toEqual(plusZero(dequantizeNBitsRows(exact)));
  });

  it('refuses other bit widths and block sizes', () => {
    expect(() => nbitsToQ4_1({ ...w, bits: 8 })).toThrow(/4-bit/);
    expect(() => nbitsToQ4_1({ ...w, blockSize: 64 })).toThrow(/blocks of 32/);
  });
});

describe('q/k rows from rotate-half to adjacent pairs', () => {
  it('row h·d + 2i + j takes row h·d + j·d/2 + i', () => {
    const heads = 2, d = 4, rowLength = 3;
    const rows = new Float32Array(heads * d * rowLength).map((_, i) => Math.floor(i / rowLength));
    const out = regroupRows(rows, rowLength, heads, d);
    expect(Array.from({ length: heads * d }, (_, r) => out[r * rowLength])).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
  });
});

describe('GGUF file', () => {
  it('writes the v3 header, typed metadata, aligned tensors; the reader gets them back', async () => {
    const file = path.join(tmp.dir, 'a.gguf');
    const a = values(64 * 2, 3);
    const b = values(5, 4);
    await writeGguf(file, [
      kv.str('general.architecture', 'llama'),
      kv.u32('general.alignment', 32),
      kv.f32('x.f', 0.5),
      kv.bool('x.b', true),
      kv.strings('x.s', ['a', 'é', '']),
      kv.i32s('x.i', [-1, 2]),
      { key: 'x.u64', value: { type: GgufValueType.UINT64, value: 2n ** 40n } },
    ], [
      { name: 'q', dims: [64, 2], type: GgmlType.Q4_1, bytes: () => quantizeQ4_1(a, 2, 64) },
      { name: 'v', dims: [5], type: GgmlType.F32, bytes: () => new Uint8Array(b.buffer) },
      { name: 'h', dims: [64, 2], type: GgmlType.F16, bytes: () => toF16Bytes(a) },
    ]);
    const bytes = readFileSync(file);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('GGUF');
    expect(bytes.readUInt32LE(4)).toBe(3);
    expect(bytes.readBigUInt64LE(8)).toBe(3n);
    expect(bytes.readBigUInt64LE(16)).toBe(7n);
    const g = await readGguf(file);
    expect(g.metadata.get('x.f')).toBe(0.5);
    expect(g.metadata.get('x.b')).toBe(true);
    expect(g.metadata.get('x.s')).toEqual(['a', 'é', '']);
    expect(g.metadata.get('x.i')).toEqual([-1, 2]);
    expect(g.metadata.get('x.u64')).toBe(2n ** 40n);
    expect(g.tensors.map((t) => [t.name, t.dims, t.type])).toEqual([['q', [64, 2], GgmlType.Q4_1], ['v', [5], GgmlType.F32], ['h', [64, 2], GgmlType.F16]]);
    for (const t of g.tensors) expect(t.position % 32).toBe(0);
    expect(new Float32Array((await readGgufTensor(g, 'v')).buffer)).toEqual(b);
    expect(decodeRows(await readGgufTensor(g, 'h'), 128, GgmlType.F16)).toEqual(a.map(f16));
    expect(bytes.length % 32).toBe(0);
  });

  it('a tensor that produces the wrong size leaves no file behind, and a duplicate key is refused', async () => {
    const file = path.join(tmp.dir, 'b.gguf');
    await expect(writeGguf(file, [], [{ name: 't', dims: [32], type: GgmlType.Q8_0, bytes: () => new Uint8Array(33) }])).rejects.toThrow(/34/);
    expect(existsSync(file)).toBe(false);
    expect(readdirSync(tmp.dir).filter((f) => f.includes('b.gguf'))).toEqual([]);
    await expect(writeGguf(file, [kv.u32('k', 1), kv.u32('k', 2)], [])).rejects.toThrow(/duplicate/);
  });
});
