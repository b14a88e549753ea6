import { describe, expect, it } from 'vitest';
import { halfBitsToFloat, halfToFloat32 } from '../../../main/engine/evaluate/fp16.ts';
import { sequenceNll, tokenNll } from '../../../main/engine/evaluate/log-softmax.ts';

/** −log softmax(x)[target] straight from the definition, in float64 (fine for moderate logits). */
function naiveNll(row: number[], target: number): number {
  const z = row.reduce((s, x) => s + Math.exp(x), 0);
  return -Math.log(Math.exp(row[target]) / z);
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe('tokenNll', () => {
  it('matches the definition on random rows', () => {
    const rand = lcg(7);
    const vocab = 97;
    for (let trial = 0; trial < 50; trial++) {
      const row = Array.from({ length: vocab }, () => (rand() - 0.5) * 20);
      const target = Math.floor(rand() * vocab);
      const got = tokenNll(Float32Array.from(row), 0, vocab, target);
      expect(Math.abs(got - naiveNll(Array.from(Float32Array.from(row)), target))).toBeLessThan(1e-9);
    }
  });

  it('stays finite and shift-invariant where exp() would overflow', () => {
    const row = Float32Array.from([1000, 999, 990, -1000]);
    const shifted = Float32Array.from([0, -1, -10, -2000]);
    expect(tokenNll(row, 0, 4, 1)).toBeCloseTo(tokenNll(shifted, 0, 4, 1), 10);
    expect(tokenNll(row, 0, 4, 1)).toBeCloseTo(naiveNll([0, -1, -10, -2000], 1), 10);
  });

  it('sums a sequence with position t predicting token t + 1, from an offset', () => {
    const vocab = 3;
    const logits = Float32Array.from([9, 9, 9, /* seq: */ 0, 1, 2, 2, 1, 0, 5, 5, 5]);
    const ids = [0, 2, 0];
    const expected = naiveNll([0, 1, 2], 2) + naiveNll([2, 1, 0], 0);
    expect(sequenceNll(logits, 3, vocab, ids)).toBeCloseTo(expected, 12);
  });
});

describe('fp16', () => {
  it('decodes the binary16 landmarks', () => {
    expect(halfBitsToFloat(0x3c00)).toBe(1);
    expect(halfBitsToFloat(0xc000)).toBe(-2);
    expect(halfBitsToFloat(0x7bff)).toBe(65504);
    expect(halfBitsToFloat(0x0001)).toBe(2 ** -24);
    expect(halfBitsToFloat(0x0400)).toBe(2 ** -14);
    expect(halfBitsToFloat(0x3555)).toBeCloseTo(0.33325195, 8);
    expect(halfBitsToFloat(0x7c00)).toBe(Infinity);
    expect(halfBitsToFloat(0xfc00)).toBe(-Infinity);
    expect(halfBitsToFloat(0x7e00)).toBeNaN();
    expect(Object.is(halfBitsToFloat(0x8000), -0)).toBe(true);
  });

  it('agrees with the runtime’s Float16Array on every bit pattern', () => {
    const F16 = (globalThis as { Float16Array?: new (b: ArrayBuffer) => ArrayLike<number> }).Float16Array;
    const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const mine = halfToFloat32(bits);
    if (!F16) return; // runtimes without Float16Array hand over raw bits, which is what `mine` decodes
    const theirs = halfToFloat32(new F16(bits.buffer));
    const mismatches: number[] = [];
    for (let i = 0; i < 65536; i++) if (!Object.is(mine[i], theirs[i]) && !(Number.isNaN(mine[i]) && Number.isNaN(theirs[i]))) mismatches.push(i);
    expect(mismatches).toEqual([]);
  });
});
