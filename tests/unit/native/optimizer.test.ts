/**
 * The optimizer kernels (AdamW step, squared gradient norms, accumulation) on every code path against
 * their scalar references: AdamW and accumulation bit for bit, the norm within float64 rounding; sizes
 * that leave SIMD tails and cross chunk boundaries, masks, and argument errors.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { adamwStep, addInto, gradSquaredSums, reference, setSimdLimit, setThreads, type AdamwTensor } from '../../../main/engine/native/index.ts';
import { firstMismatches, rng, simdPaths, useSimdPath } from './simd-paths.ts';

afterAll(() => {
  setSimdLimit('auto');
  setThreads(0);
});

const SIZES = [1, 7, 33, 40_000, 70_001];

function randomArray(n: number, random: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (random() - 0.5) * 2 * scale);
}

/** Tensors with moments from a few earlier steps, every third one masked. */
function tensors(seed: number): AdamwTensor[] {
  const random = rng(seed);
  return SIZES.map((n, k) => {
    const mask = k % 3 === 1 ? Uint8Array.from({ length: n }, () => (random() < 0.4 ? 0 : 1)) : null;
    return {
      weights: randomArray(n, random),
      grads: randomArray(n, random, 30),
      m: randomArray(n, random, 0.1),
      v: Float32Array.from({ length: n }, () => random() * 0.01),
      mask,
      weightDecay: k % 2 === 0 ? 0.1 : 0,
    };
  });
}

const copy = (ts: AdamwTensor[]): AdamwTensor[] =>
  ts.map((t) => ({ ...t, weights: t.weights.slice(), m: t.m.slice(), v: t.v.slice() }));

const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

describe('native AdamW step', () => {
  const params = { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 4, gradScale: 0.05 };

  for (const path of simdPaths()) {
    it(`equals the scalar reference bit for bit on the ${path} path`, async () => {
      useSimdPath(path);
      setThreads(2);
      const start = tensors(11);
      const expected = copy(start);
      reference.adamwStep(expected, params);
      const actual = copy(start);
      await adamwStep(actual, params);
      actual.forEach((t, k) => {
        for (const key of ['weights', 'm', 'v'] as const) {
          expect(firstMismatches(bits(t[key]), bits(expected[k][key])), `tensor ${k} ${key}`).toEqual([]);
        }
      });
      // Pruned weights and their moments are exactly zero; the others moved.
      const masked = actual[1];
      for (let i = 0; i < masked.weights.length; i++) {
        if (masked.mask![i] === 0) expect([masked.weights[i], masked.m[i], masked.v[i]]).toEqual([0, 0, 0]);
      }
      expect(actual[4].weights.some((w, i) => w !== start[4].weights[i])).toBe(true);
    });
  }

  it('rejects mismatched sizes and bad hyperparameters before any work', async () => {
    const [t] = tensors(3).slice(2);
    await expect(adamwStep([{ ...t, m: new Float32Array(3) }], params)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/tensors\[0\]\.m holds 3/) as unknown });
    await expect(adamwStep([t], { ...params, step: 0 })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/step must be an integer ≥ 1/) as unknown });
    await expect(adamwStep([t], { ...params, beta2: 1 })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(adamwStep([{ ...t, grads: t.weights }], params)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/share memory/) as unknown });
  });
});

describe('native squared gradient norms', () => {
  for (const path of simdPaths()) {
    it(`match the reference and a float64 sum on the ${path} path, for any thread count`, async () => {
      useSimdPath(path);
      const ts = tensors(23);
      const grads = ts.map((t) => t.grads);
      const masks = ts.map((t) => t.mask ?? null);
      const expected = reference.gradSquaredSums(grads, masks);
      grads.forEach((g, k) => {
        let plain = 0;
        g.forEach((x, i) => { if (!masks[k] || masks[k][i] !== 0) plain += x * x; });
        expect(Math.abs(expected[k] - plain)).toBeLessThanOrEqual(1e-12 * plain);
      });
      setThreads(1);
      const one = await gradSquaredSums(grads, masks);
      setThreads(2);
      const two = await gradSquaredSums(grads, masks);
      expect(Array.from(two)).toEqual(Array.from(one));
      two.forEach((s, k) => expect(Math.abs(s - expected[k])).toBeLessThanOrEqual(1e-12 * expected[k]));
      // Without masks every element counts.
      const unmasked = await gradSquaredSums(grads);
      expect(unmasked[1]).toBeGreaterThan(two[1]);
    });
  }
});

describe('native gradient accumulation', () => {
  for (const path of simdPaths()) {
    it(`adds pairwise, as the reference, on the ${path} path`, async () => {
      useSimdPath(path);
      const random = rng(5);
      const dst = SIZES.map((n) => randomArray(n, random));
      const src = SIZES.map((n) => randomArray(n, random));
      const expected = dst.map((d) => d.slice());
      reference.addInto(expected, src);
      expected.forEach((e, k) => {
        const plain = dst[k].map((x, i) => x + src[k][i]);
        expect(firstMismatches(bits(e), bits(plain))).toEqual([]);
      });
      await addInto(dst, src);
      dst.forEach((d, k) => expect(firstMismatches(bits(d), bits(expected[k]))).toEqual([]));
    });
  }

  it('rejects arrays of different sizes', async () => {
    await expect(addInto([new Float32Array(4)], [new Float32Array(5)])).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});
