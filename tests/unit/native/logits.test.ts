/**
 * The logits scoring kernel (NLL, KL(p ‖ q), top-1 agreement) on every code path against its scalar
 * reference and against a plain float64 JavaScript computation, for float32 and float16 logits, vocab
 * sizes that leave SIMD tails, skipped rows, and non-finite logits.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { f32ToF16, PAIR_STRIDE, reference, rowCompare, rowNll, setSimdLimit, setThreads } from '../../../main/engine/native/index.ts';
import { INLINE_LOGITS } from '../../../main/engine/native/logits.ts';
import { halfBitsToFloat } from '../../../main/engine/evaluate/fp16.ts';
import { rng, simdPaths, useSimdPath } from './simd-paths.ts';

afterAll(() => {
  setSimdLimit('auto');
  setThreads(0);
});

/** Plain float64 definitions, element by element. */
function jsRow(x: ArrayLike<number>, o: number, vocab: number): { lse: number; argmax: number } {
  let m = -Infinity;
  let argmax = 0;
  for (let v = 0; v < vocab; v++) if (x[o + v] > m) { m = x[o + v]; argmax = v; }
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(x[o + v] - m);
  return { lse: m + Math.log(sum), argmax };
}

function jsCompare(p: ArrayLike<number>, q: ArrayLike<number>, targets: Int32Array, vocab: number): number[][] {
  return Array.from(targets, (t, r) => {
    if (t < 0) return [0, 0, 0, 0];
    const a = jsRow(p, r * vocab, vocab);
    const b = jsRow(q, r * vocab, vocab);
    let kl = 0;
    for (let v = 0; v < vocab; v++) {
      const lp = p[r * vocab + v] - a.lse;
      kl += Math.exp(lp) * (lp - (q[r * vocab + v] - b.lse));
    }
    return [a.lse - p[r * vocab + t], b.lse - q[r * vocab + t], Math.max(0, kl), a.argmax === b.argmax ? 1 : 0];
  });
}

/** Logits [rows, vocab] of two related models: q = p + noise, with some rows equal and a shared maximum. */
function logitsPair(rows: number, vocab: number, seed: number): { p: Float32Array; q: Float32Array; targets: Int32Array } {
  const random = rng(seed);
  const p = new Float32Array(rows * vocab);
  const q = new Float32Array(rows * vocab);
  for (let i = 0; i < p.length; i++) {
    p[i] = (random() - 0.5) * 16;
    q[i] = p[i] + (random() - 0.5) * (Math.floor(i / vocab) % 3 === 0 ? 0 : 0.8);
  }
  const targets = Int32Array.from({ length: rows }, (_, r) => (r % 7 === 6 ? -1 : Math.floor(random() * vocab)));
  return { p, q, targets };
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i])));
  expect(worst).toBeLessThanOrEqual(tolerance);
}

describe('scoreLogits', () => {
  for (const path of simdPaths()) {
    for (const vocab of [1, 7, 33, 512, 1031]) {
      it(`${path}, vocab ${vocab}: NLL, KL and top-1 match float64 JavaScript and the reference`, async () => {
        useSimdPath(path);
        setThreads(2);
        const { p, q, targets } = logitsPair(29, vocab, vocab);
        const js = jsCompare(p, q, targets, vocab);
        const pair = await rowCompare(p, q, targets, vocab);
        expectClose(pair, js.flat(), 1e-12);
        expectClose(reference.rowCompare(p, q, targets, vocab), js.flat(), 1e-13);
        const top1 = Array.from({ length: targets.length }, (_, r) => pair[r * PAIR_STRIDE + 3]);
        expect(top1).toEqual(js.map((row) => row[3]));
        const nll = await rowNll(p, targets, vocab);
        expectClose(nll, js.map((row) => row[0]), 1e-12);
        // Rows scored against themselves: KL exactly 0, top-1 always agrees.
        const self = await rowCompare(p, p, targets, vocab);
        for (let r = 0; r < targets.length; r++) {
          expect(self[r * PAIR_STRIDE + 2]).toBe(0);
          expect(self[r * PAIR_STRIDE + 3]).toBe(targets[r] < 0 ? 0 : 1);
        }
      });
    }

    it(`${path}: float16 logits (raw bits), alone and beside float32`, async () => {
      useSimdPath(path);
      const vocab = 300;
      const { p, q, targets } = logitsPair(11, vocab, 5);
      const pBits = await f32ToF16(p);
      const pHalf = Float64Array.from(pBits, halfBitsToFloat);
      const js = jsCompare(pHalf, q, targets, vocab);
      expectClose(await rowCompare(pBits, q, targets, vocab), js.flat(), 1e-12);
      expectClose(reference.rowCompare(pBits, q, targets, vocab), js.flat(), 1e-13);
      expectClose(await rowNll(pBits, targets, vocab), js.map((row) => row[0]), 1e-12);
    });

    it(`${path}: a batch past INLINE_LOGITS runs threaded, with the same results bit for bit as small batches inline`, async () => {
      useSimdPath(path);
      setThreads(2);
      const vocab = 1031;
      const rows = Math.ceil(INLINE_LOGITS / vocab) + 37;
      const { p, q, targets } = logitsPair(rows, vocab, 77);
      const whole = await rowCompare(p, q, targets, vocab);
      const inline: number[] = [];
      for (let r = 0; r < rows; r += 64) {
        const end = Math.min(rows, r + 64);
        inline.push(...await rowCompare(p.subarray(r * vocab, end * vocab), q.subarray(r * vocab, end * vocab), targets.subarray(r, end), vocab));
      }
      expect(Array.from(whole)).toEqual(inline);
      expectClose(whole, reference.rowCompare(p, q, targets, vocab), 1e-12);
      // One model's NLL is the same number alone and beside another model.
      const alone = await rowNll(p, targets, vocab);
      expect(Array.from(alone)).toEqual(Array.from({ length: rows }, (_, r) => whole[r * PAIR_STRIDE]));
    });

    it(`${path}: NaN logits give NaN, as the float64 definition does`, async () => {
      useSimdPath(path);
      const { p, q, targets } = logitsPair(3, 64, 9);
      targets.fill(1);
      p[64 + 10] = Number.NaN;
      const out = await rowCompare(p, q, targets, 64);
      expect(Number.isNaN(out[PAIR_STRIDE])).toBe(true);
      expect(Number.isFinite(out[0])).toBe(true);
      expect(Number.isNaN((await rowNll(p, targets, 64))[1])).toBe(true);
    });
  }

  it('rejects a target outside the vocabulary and logits of the wrong size', async () => {
    const { p, targets } = logitsPair(4, 16, 1);
    targets[2] = 16;
    await expect(rowNll(p, targets, 16)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('targets[2] is 16') });
    await expect(rowNll(p.subarray(1), new Int32Array(4), 16)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});
