/**
 * Activation ranges for static INT8 quantization from streamed statistics (TECHNIQUES.md §1), following
 * ONNX Runtime's calibrators (onnxruntime/python/tools/quantization/calibrate.py):
 *
 *   minmax      [min, max] of every value seen.
 *   percentile  symmetric, on |x| (ORT's default for Percentile): t = the |x| below which `percentile` %
 *               of the values lie, read from the histogram folded around 0; range [−t, t] clipped to
 *               [min, max]. ORT returns the lower edge of the bin where the CDF crosses; this returns its
 *               upper edge (the whole bin holding the percentile is kept), a difference of one bin.
 *   entropy     TensorRT's KL calibration (Migacz, "8-bit inference with TensorRT", GTC 2017), with ORT's
 *               loop: the signed histogram (≤ 2048 bins, 0 at bin n/2) is cut to the central 2i+1 bins
 *               for i = Q/2 … n/2; the reference P is that slice with the outside counts added to its end
 *               bins; the candidate Q merges the slice into Q (default 128) bins and spreads each merged
 *               count evenly over its non-empty bins (TensorRT; ORT also spreads it over empty ones and
 *               truncates to integers). Both are smoothed (ε = 1e-4, as ORT's smooth_distribution) and
 *               KL(P‖Q) = Σ p log(p/q) over the normalised distributions is minimised; range
 *               [edge(n/2 − i), edge(n/2 + i + 1)] clipped to [min, max].
 */
import { WhittleError } from '../errors.ts';

export type RangeMethod = 'minmax' | 'percentile' | 'entropy';

export interface RangeStats {
  name?: string;
  min?: number;
  max?: number;
  /** 2m counts over [min, max] = [−T, T] (symmetric, see histogram.ts). */
  histogram?: { counts: Float64Array; min: number; max: number };
}

export interface RangeOptions {
  /** Percentile method: default 99.999. */
  percentile?: number;
  /** Entropy method: quantized bins Q, default 128. */
  bins?: number;
}

/** Entropy searches over at most this many histogram bins (TensorRT's 2048). */
const ENTROPY_MAX_BINS = 2048;
const SMOOTH_EPS = 1e-4;

function need<T>(v: T | undefined, what: string, stats: RangeStats): T {
  if (v === undefined) {
    throw new WhittleError('INTERNAL', `Calibration statistics of '${stats.name ?? '?'}' have no ${what}; collect the ${what === 'histogram' ? 'histogram' : 'minmax'} accumulator first.`);
  }
  return v;
}

const clip = (lo: number, hi: number, min: number, max: number): { min: number; max: number } => ({ min: Math.max(lo, min), max: Math.min(hi, max) });

/** The range of the activation summarised by `stats` under `method`. */
export function rangeFromStats(stats: RangeStats, method: RangeMethod, opts: RangeOptions = {}): { min: number; max: number } {
  const min = need(stats.min, 'min', stats);
  const max = need(stats.max, 'max', stats);
  if (method === 'minmax') return { min, max };
  const hist = need(stats.histogram, 'histogram', stats);
  const threshold = hist.max;
  if (threshold === 0 || !(max > min)) return { min, max };
  if (method === 'percentile') {
    const t = percentileOfAbs(hist.counts, threshold, opts.percentile ?? 99.999);
    return clip(-t, t, min, max);
  }
  if (method === 'entropy') {
    const { lo, hi } = entropyThreshold(hist.counts, threshold, opts.bins ?? 128);
    return clip(lo, hi, min, max);
  }
  throw new WhittleError('INVALID_INPUT', `Unknown range method '${String(method)}'; use minmax, percentile or entropy.`);
}

/** |x| at `percentile` % from a symmetric histogram of 2m bins over [−T, T] (upper bin edge). */
export function percentileOfAbs(counts: Float64Array, threshold: number, percentile: number): number {
  if (!(percentile > 0 && percentile <= 100)) throw new WhittleError('INVALID_INPUT', `The percentile must be in (0, 100]; got ${percentile}.`);
  const m = counts.length / 2;
  const s = threshold / m;
  // Folded bin j covers |x| in [j·s, (j+1)·s): signed bins m + j and m − 1 − j.
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i];
  if (total === 0) return 0;
  const target = (percentile / 100) * total;
  let cum = 0;
  for (let j = 0; j < m; j++) {
    cum += counts[m + j] + counts[m - 1 - j];
    if (cum >= target * (1 - 1e-12)) return (j + 1) * s;
  }
  return threshold;
}

/** Merges adjacent pairs until at most `maxBins` remain (pads one empty bin per side when the half count is odd). */
function coarsen(counts: Float64Array, threshold: number, maxBins: number): { counts: Float64Array; threshold: number } {
  let c = counts;
  let t = threshold;
  while (c.length > maxBins) {
    let m = c.length / 2;
    if (m % 2 === 1) {
      const padded = new Float64Array(c.length + 2);
      padded.set(c, 1);
      t += t / m;
      c = padded;
      m += 1;
    }
    const merged = new Float64Array(m);
    for (let i = 0; i < m; i++) merged[i] = c[2 * i] + c[2 * i + 1];
    c = merged;
  }
  return { counts: c, threshold: t };
}

/** ORT's smooth_distribution: move ε onto empty bins, taking it evenly from the others. Null when all are empty. */
function smooth(p: Float64Array): Float64Array | null {
  let zeros = 0;
  for (let i = 0; i < p.length; i++) if (p[i] === 0) zeros++;
  const nonZeros = p.length - zeros;
  if (nonZeros === 0) return null;
  const eps1 = (SMOOTH_EPS * zeros) / nonZeros;
  const out = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) out[i] = p[i] === 0 ? SMOOTH_EPS : p[i] - eps1;
  return out;
}

/** KL(p‖q) of the normalised distributions (scipy.stats.entropy(p, q)). */
function klDivergence(p: Float64Array, q: Float64Array): number {
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) { sp += p[i]; sq += q[i]; }
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i] / sp;
    if (pi > 0) kl += pi * Math.log(pi / (q[i] / sq));
  }
  return kl;
}

/** TensorRT/ORT entropy calibration on a symmetric histogram (see the header). */
export function entropyThreshold(countsIn: Float64Array, thresholdIn: number, quantizedBins: number): { lo: number; hi: number; kl: number } {
  if (!Number.isInteger(quantizedBins) || quantizedBins < 2) throw new WhittleError('INVALID_INPUT', `Entropy calibration needs at least 2 quantized bins; got ${quantizedBins}.`);
  const { counts: hist, threshold } = coarsen(countsIn, thresholdIn, ENTROPY_MAX_BINS);
  const n = hist.length;
  const edge = (i: number): number => -threshold + (2 * threshold * i) / n;
  const zero = n >> 1;
  const halfQ = quantizedBins >> 1;
  if (zero < halfQ) return { lo: -threshold, hi: threshold, kl: 0 };

  // Prefix sums for the outlier counts outside each slice.
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i] + hist[i];

  let best = { lo: -threshold, hi: threshold, kl: Infinity };
  for (let i = halfQ; i <= zero; i++) {
    const start = zero - i;
    const end = Math.min(zero + i + 1, n);
    const len = end - start;
    const p = hist.slice(start, end);
    p[0] += prefix[start];
    p[len - 1] += prefix[n] - prefix[end];

    // Q: `quantizedBins` groups of `merged` bins; the leftover bins join the last group.
    const merged = Math.floor(len / quantizedBins);
    const q = new Float64Array(len);
    for (let g = 0; g < quantizedBins; g++) {
      const a = g * merged;
      const b = g === quantizedBins - 1 ? len : a + merged;
      let sum = 0;
      let nonEmpty = 0;
      for (let j = a; j < b; j++) {
        sum += hist[start + j];
        if (p[j] !== 0) nonEmpty++;
      }
      if (nonEmpty === 0) continue;
      const spread = sum / nonEmpty;
      for (let j = a; j < b; j++) if (p[j] !== 0) q[j] = spread;
    }
    const ps = smooth(p);
    const qs = smooth(q);
    const kl = ps && qs ? klDivergence(ps, qs) : Infinity;
    if (kl < best.kl) best = { lo: edge(start), hi: edge(end), kl };
  }
  return best;
}
