import { describe, expect, it } from 'vitest';
import { entropyThreshold, mulberry32, percentileOfAbs, rangeFromStats, SymmetricHistogram, TensorAccumulator } from '../../../main/engine/calibrate/index.ts';

/** Standard normal samples (Box–Muller on mulberry32). */
function gaussian(n: number, seed: number, sigma = 1): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - r.next(), v = r.next();
    const m = Math.sqrt(-2 * Math.log(u)) * sigma;
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

const absMax = (x: ArrayLike<number>): number => { let m = 0; for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i])); return m; };

/** Reference: bin every value on the final grid directly. */
function referenceCounts(all: Float32Array, bins: number, threshold: number): Float64Array {
  const out = new Float64Array(bins);
  const s = (2 * threshold) / bins;
  for (const x of all) out[Math.min(bins - 1, Math.max(0, Math.floor((x + threshold) / s)))]++;
  return out;
}

describe('SymmetricHistogram', () => {
  it('growing over batches gives exactly the counts of binning everything on the final grid', () => {
    const h = new SymmetricHistogram(64);
    const batches = [gaussian(2000, 1, 0.5), gaussian(2000, 2, 1), gaussian(2000, 3, 3)];
    for (const b of batches) h.add(b, absMax(b));
    const snap = h.snapshot();
    expect(snap.counts.length).toBeGreaterThan(64);
    expect(snap.counts.length).toBeLessThanOrEqual(128);
    expect(snap.threshold).toBeGreaterThanOrEqual(absMax(batches[2]));
    const all = new Float32Array(6000);
    batches.forEach((b, i) => all.set(b, i * 2000));
    // Float grid edges: allow a count to sit one bin off at an exact edge.
    const ref = referenceCounts(all, snap.counts.length, snap.threshold);
    let moved = 0;
    for (let i = 0; i < ref.length; i++) moved += Math.abs(ref[i] - snap.counts[i]);
    expect(moved).toBeLessThanOrEqual(2);
    expect(snap.counts.reduce((a, c) => a + c, 0)).toBe(6000);
  });

  it('coarsens a range that grows 1000× yet keeps every count and 0 on a bin edge', () => {
    const h = new SymmetricHistogram(32);
    h.add(Float32Array.of(0.001, -0.001), 0.001);
    h.add(Float32Array.of(1, -1, 0.5), 1);
    const snap = h.snapshot();
    expect(snap.counts.length).toBeLessThanOrEqual(64);
    expect(snap.counts.reduce((a, c) => a + c, 0)).toBe(5);
    const m = snap.counts.length / 2;
    // The small values sit in the two bins around 0.
    expect(snap.counts[m] + snap.counts[m - 1]).toBe(2);
    expect(snap.counts[snap.counts.length - 1]).toBeGreaterThanOrEqual(1);
    expect(snap.counts[0]).toBe(1);
  });

  it('keeps all-zero batches in the bin holding 0', () => {
    const h = new SymmetricHistogram(8);
    h.add(new Float32Array(10), 0);
    expect(h.snapshot()).toEqual({ counts: Float64Array.of(0, 0, 0, 0, 10, 0, 0, 0), threshold: 0 });
    h.add(Float32Array.of(4, -4), 4);
    const s = h.snapshot();
    expect(s.threshold).toBe(4);
    expect([...s.counts]).toEqual([1, 0, 0, 0, 10, 0, 0, 1]);
  });
});

describe('rangeFromStats', () => {
  async function statsOf(x: Float32Array, bins = 4096) {
    const acc = new TensorAccumulator('x', ['minmax', 'histogram'], bins);
    for (let i = 0; i < x.length; i += 10_000) await acc.add(x.subarray(i, Math.min(x.length, i + 10_000)), 1);
    return acc.result();
  }

  it('Gaussian with outliers: minmax keeps them, percentile clips them, entropy lies between', async () => {
    const x = gaussian(400_000, 42);
    x[1234] = 40; x[99_999] = -35; x[300_000] = 38;
    const stats = await statsOf(x);
    const mm = rangeFromStats(stats, 'minmax');
    expect(mm).toEqual({ min: -35, max: 40 });

    // 99.99 % of |N(0,1)| lies below 3.8906; bins are 40/2048 ≈ 0.02 wide.
    const p = rangeFromStats(stats, 'percentile', { percentile: 99.99 });
    const sorted = Float64Array.from(x, Math.abs).sort();
    const exact = sorted[Math.ceil(0.9999 * sorted.length) - 1];
    const bin = stats.histogram!.max / 2048;
    expect(p.max).toBeGreaterThanOrEqual(exact - 1e-9);
    expect(p.max).toBeLessThanOrEqual(exact + bin + 1e-9);
    expect(Math.abs(p.max - 3.8906)).toBeLessThan(0.1);
    expect(p.min).toBe(-p.max);

    const e = rangeFromStats(stats, 'entropy', { bins: 128 });
    expect(e.max).toBeGreaterThan(2);
    expect(e.max).toBeLessThan(20);
    expect(e.min).toBeLessThan(-2);
    expect(e.min).toBeGreaterThan(-20);
  });

  it('percentile and entropy never reach outside [min, max] (one-sided data)', async () => {
    const x = Float32Array.from(gaussian(50_000, 9), (v) => Math.abs(v) + 0.5);
    const stats = await statsOf(x);
    for (const method of ['percentile', 'entropy'] as const) {
      const r = rangeFromStats(stats, method);
      expect(r.min).toBeGreaterThanOrEqual(stats.min!);
      expect(r.max).toBeLessThanOrEqual(stats.max!);
      expect(r.min).toBe(stats.min);
    }
  });

  it('percentileOfAbs on a hand-made histogram', () => {
    // 4 bins over [-2, 2]: |x| bins [0,1): 6 + 2 = 8 values, [1,2]: 1 + 1 = 2 values.
    const counts = Float64Array.of(1, 2, 6, 1);
    expect(percentileOfAbs(counts, 2, 80)).toBe(1);
    expect(percentileOfAbs(counts, 2, 80.01)).toBe(2);
    expect(percentileOfAbs(counts, 2, 100)).toBe(2);
  });

  it('entropy keeps the whole range of a uniform distribution and cuts a long thin tail', () => {
    const uniform = new Float64Array(2048).fill(100);
    const u = entropyThreshold(uniform, 1, 128);
    expect(u.hi).toBeCloseTo(1, 6);
    expect(u.lo).toBeCloseTo(-1, 6);
    // A narrow Gaussian (σ = 0.05) over a thin floor reaching ±1: the threshold stays near the mass.
    const tail = new Float64Array(2048);
    for (let i = 0; i < 2048; i++) {
      const x = (i + 0.5 - 1024) / 1024;
      tail[i] = Math.round(1e5 * Math.exp(-0.5 * (x / 0.05) ** 2)) + 1;
    }
    const t = entropyThreshold(tail, 1, 128);
    expect(t.hi).toBeGreaterThan(0.1);
    expect(t.hi).toBeLessThan(0.6);
    expect(t.lo).toBeCloseTo(-t.hi, 2);
    // An isolated spike pattern is quantized exactly at full range (TensorRT's Q spreads only over non-empty bins).
    const spikes = new Float64Array(2048);
    for (let i = 0; i < 2048; i += 16) spikes[i] = 5;
    expect(entropyThreshold(spikes, 1, 128).hi).toBeCloseTo(1, 6);
  });

  it('says what is missing', () => {
    expect(() => rangeFromStats({ name: 'a', min: 0, max: 1 }, 'entropy')).toThrow(/histogram/);
    expect(() => rangeFromStats({ name: 'a' }, 'minmax')).toThrow(/min/);
  });
});
