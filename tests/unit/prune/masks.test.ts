// Magnitude and Wanda masks against a plain reference (sort every comparison group by (score, index)),
// exact sparsity per weight and globally, N:M exact in every group; OWL keeps the overall sparsity.
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../../main/engine/calibrate/prng.ts';
import { owlSparsities } from '../../../main/engine/prune/allocation.ts';
import { applyMask, globalMagnitudeThreshold, globalMask, magnitudeMask, magnitudeNmMask } from '../../../main/engine/prune/magnitude.ts';
import { prunedCount, zerosOf } from '../../../main/engine/prune/select.ts';
import { wandaMask } from '../../../main/engine/prune/wanda.ts';

function randomWeight(k: number, n: number, seed: number, ties = false): Float32Array {
  const r = mulberry32(seed);
  // With ties: values from a small set so equal scores are common.
  return Float32Array.from({ length: k * n }, () => (ties ? Math.round((r.next() - 0.5) * 8) / 4 : (r.next() - 0.5) * 2));
}

/** Plain reference: indices of `group` sorted by (score, index); the first `count` pruned. */
function referencePrune(scores: number[], count: number): Set<number> {
  const idx = scores.map((_, i) => i).sort((a, b) => scores[a] - scores[b] || a - b);
  return new Set(idx.slice(0, count));
}

/** Reference mask [K, N] pruning `count(len)` of each group of W's entries given by `groups` (lists of flat indices). */
function referenceMask(k: number, n: number, score: (i: number) => number, groups: number[][], count: (len: number) => number): Uint8Array {
  const mask = new Uint8Array(k * n).fill(1);
  for (const g of groups) {
    const pruned = referencePrune(g.map(score), count(g.length));
    g.forEach((flat, j) => { if (pruned.has(j)) mask[flat] = 0; });
  }
  return mask;
}

const channels = (k: number, n: number): number[][] => Array.from({ length: n }, (_, j) => Array.from({ length: k }, (_, i) => i * n + j));
const nmGroups = (k: number, n: number, m: number): number[][] => channels(k, n).flatMap((ch) => Array.from({ length: k / m }, (_, g) => ch.slice(g * m, (g + 1) * m)));

describe('magnitude', () => {
  for (const [k, n, s, ties] of [[64, 48, 0.5, false], [96, 40, 0.37, true], [32, 17, 0.9, true]] as const) {
    it(`per weight ${k}×${n} at ${s}${ties ? ' with ties' : ''}: identical to the reference, exactly round(s·K·N) zeros`, () => {
      const w = randomWeight(k, n, k + n, ties);
      const mask = magnitudeMask(w, s);
      const ref = referenceMask(k, n, (i) => Math.abs(w[i]), [Array.from({ length: k * n }, (_, i) => i)], (len) => prunedCount(len, s));
      expect(mask).toEqual(ref);
      expect(zerosOf(mask)).toBe(prunedCount(k * n, s));
    });
  }

  it('N:M 2:4 and 4:8 per output channel: identical to the reference, exactly M − N zeros in every group', () => {
    const k = 64;
    const n = 24;
    const w = randomWeight(k, n, 7, true);
    for (const [keep, m] of [[2, 4], [4, 8], [1, 4]]) {
      const mask = magnitudeNmMask(w, k, n, { n: keep, m });
      expect(mask).toEqual(referenceMask(k, n, (i) => Math.abs(w[i]), nmGroups(k, n, m), () => m - keep));
      for (const g of nmGroups(k, n, m)) expect(g.filter((i) => mask[i] === 0).length).toBe(m - keep);
    }
  });

  it('global: exactly round(s · Σ K·N) zeros over all weights, the same set as sorting all |w| together', async () => {
    const ws = [randomWeight(32, 16, 1, true), randomWeight(48, 8, 2, true), randomWeight(16, 40, 3).map((x) => x * 3)];
    const total = ws.reduce((a, w) => a + w.length, 0);
    const s = 0.61;
    const t = await globalMagnitudeThreshold(total, s, async (visit) => { for (const w of ws) visit(w); });
    let ties = t.ties;
    const masks = ws.map((w) => { const r = globalMask(w, { threshold: t.threshold, ties }); ties = r.ties; return r.mask; });
    const all = ws.flatMap((w) => [...w].map(Math.abs));
    const ref = referencePrune(all, prunedCount(total, s));
    const flat = masks.flatMap((m) => [...m]);
    expect(flat.map((v, i) => (v === 0) === ref.has(i)).every(Boolean)).toBe(true);
    expect(flat.filter((v) => v === 0).length).toBe(prunedCount(total, s));
    // Different weights get different sparsities: the point of global scope.
    expect(new Set(masks.map((m) => zerosOf(m) / m.length)).size).toBeGreaterThan(1);
  });
});

describe('Wanda', () => {
  it('unstructured: per output channel, the lowest |w|·‖x‖ pruned — identical to the reference, round(s·K) per channel', () => {
    const k = 80;
    const n = 33;
    const w = randomWeight(k, n, 11);
    const r = mulberry32(5);
    const norms = Float32Array.from({ length: k }, () => r.next() * 10);
    for (const s of [0.5, 0.3, 0.75]) {
      const mask = wandaMask(w, k, n, norms, { sparsity: s });
      expect(mask).toEqual(referenceMask(k, n, (i) => Math.abs(w[i]) * norms[Math.floor(i / n)], channels(k, n), (len) => prunedCount(len, s)));
      for (const ch of channels(k, n)) expect(ch.filter((i) => mask[i] === 0).length).toBe(prunedCount(k, s));
    }
  });

  it('differs from magnitude when the activations are uneven, and N:M 2:4 is exact in every group', () => {
    const k = 64;
    const n = 16;
    const w = randomWeight(k, n, 3);
    const norms = Float32Array.from({ length: k }, (_, i) => (i % 2 === 0 ? 10 : 0.1));
    const mask = wandaMask(w, k, n, norms, { nm: { n: 2, m: 4 } });
    expect(mask).toEqual(referenceMask(k, n, (i) => Math.abs(w[i]) * norms[Math.floor(i / n)], nmGroups(k, n, 4), () => 2));
    expect(mask).not.toEqual(magnitudeNmMask(w, k, n, { n: 2, m: 4 }));
    const pruned = w.slice();
    expect(applyMask(pruned, mask)).toBe(k * n / 2);
  });
});

describe('OWL allocation', () => {
  it('more outliers → less sparsity, within s ± λ, the parameter-weighted mean exactly s', () => {
    const blocks = [{ params: 100, ratio: 0.02 }, { params: 100, ratio: 0.01 }, { params: 100, ratio: 0.005 }, { params: 100, ratio: 0.015 }];
    const s = 0.5;
    const per = owlSparsities(blocks, s, 0.08);
    expect(per[0]).toBeLessThan(per[3]);
    expect(per[3]).toBeLessThan(per[1]);
    expect(per[1]).toBeLessThan(per[2]);
    expect(Math.max(...per) - Math.min(...per)).toBeCloseTo(0.16, 10);
    expect(per.reduce((a, b) => a + b, 0) / per.length).toBeCloseTo(s, 12);
    expect(owlSparsities(blocks.map((b) => ({ ...b, ratio: 0.01 })), s)).toEqual([s, s, s, s]);
  });
});
