/**
 * Magnitude pruning (TECHNIQUES.md §2): the weights with the smallest |w| become 0, no calibration.
 *   layer scope: for one weight W [K, N], the round(s · K·N) smallest |w| of the whole matrix;
 *   N:M:         in each output channel, in every M consecutive inputs (along K), the M − N smallest;
 *   global:      the round(s · Σ K·N) smallest |w| of all pruned weights together, found by a two-pass
 *                radix selection over the float32 bit patterns (|w| ≥ 0 orders as its bits do), so no
 *                weight is held beyond the one being read.
 * Ties break by position: lower index first (within a weight), earlier weight first (global).
 */
import { lowestPerRow, nmPerRow, prunedCount } from './select.ts';

/** |w| of W [K, N] as one row (layer scope). */
function magnitudes(w: Float32Array): Float32Array {
  const s = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) s[i] = Math.abs(w[i]);
  return s;
}

/** The mask [K, N] (1 = kept) of layer-scope magnitude pruning of W [K, N] at `sparsity`. */
export function magnitudeMask(w: Float32Array, sparsity: number): Uint8Array {
  return lowestPerRow(magnitudes(w), 1, w.length, prunedCount(w.length, sparsity));
}

/** Scores of W [K, N] (row-major) as channel rows [N, K]: s[j·K + i] = |w[i·N + j]| · norm[i] (norm null: 1). */
export function channelScores(w: Float32Array, k: number, n: number, norm: ArrayLike<number> | null): Float32Array {
  const s = new Float32Array(k * n);
  for (let i = 0; i < k; i++) {
    const f = norm === null ? 1 : norm[i];
    const row = i * n;
    for (let j = 0; j < n; j++) s[j * k + i] = Math.abs(w[row + j]) * f;
  }
  return s;
}

/** A channel-row mask [N, K] back in W's layout [K, N]. */
export function maskToWeightLayout(channelMask: Uint8Array, k: number, n: number): Uint8Array {
  const out = new Uint8Array(k * n);
  for (let j = 0; j < n; j++) {
    const off = j * k;
    for (let i = 0; i < k; i++) out[i * n + j] = channelMask[off + i];
  }
  return out;
}

/** N:M magnitude mask [K, N] of W [K, N]: per output channel, N of every M consecutive inputs kept. */
export function magnitudeNmMask(w: Float32Array, k: number, n: number, nm: { n: number; m: number }): Uint8Array {
  return maskToWeightLayout(nmPerRow(channelScores(w, k, n, null), n, k, nm.n, nm.m), k, n);
}

/** w ⊙ mask, in place; returns the zeros. */
export function applyMask(w: Float32Array, mask: Uint8Array): number {
  let zeros = 0;
  for (let i = 0; i < w.length; i++) {
    if (mask[i] === 0) w[i] = 0;
    if (w[i] === 0) zeros++;
  }
  return zeros;
}

const bitsView = (x: Float32Array): Uint32Array => new Uint32Array(x.buffer, x.byteOffset, x.length);

/**
 * The global magnitude threshold over weights streamed twice (`pass` visits every weight as float32 and
 * may be called twice): the bit pattern t of the count-th smallest |w| and how many entries equal to t
 * are pruned (the first ones met, in visiting order). Pass 1 histograms the high 16 bits of |w|'s float
 * bits, pass 2 the low 16 bits inside the bin the count falls in.
 */
export async function globalMagnitudeThreshold(
  total: number,
  sparsity: number,
  pass: (visit: (w: Float32Array) => void) => Promise<void>,
): Promise<GlobalThreshold> {
  const count = prunedCount(total, sparsity);
  const abs = new Float32Array(1);
  const absBits = bitsView(abs);
  const high = new Float64Array(65536);
  await pass((w) => {
    for (let i = 0; i < w.length; i++) { abs[0] = Math.abs(w[i]); high[absBits[0] >>> 16]++; }
  });
  let cum = 0;
  let hb = 0;
  while (hb < 65535 && cum + high[hb] < count) cum += high[hb++];
  const low = new Float64Array(65536);
  await pass((w) => {
    for (let i = 0; i < w.length; i++) {
      abs[0] = Math.abs(w[i]);
      if (absBits[0] >>> 16 === hb) low[absBits[0] & 0xffff]++;
    }
  });
  let lb = 0;
  while (lb < 65535 && cum + low[lb] < count) cum += low[lb++];
  absBits[0] = ((hb << 16) | lb) >>> 0;
  return { threshold: abs[0], ties: count - cum, count };
}

export interface GlobalThreshold {
  /** Entries with |w| below it are pruned. */
  threshold: number;
  /** How many entries equal to `threshold` are pruned too (the first met). */
  ties: number;
  /** round(s · total). */
  count: number;
}

/** Applies a global threshold to one weight (in visiting order); returns the mask and the ties left for the weights after it. */
export function globalMask(w: Float32Array, t: { threshold: number; ties: number }): { mask: Uint8Array; ties: number } {
  const mask = new Uint8Array(w.length).fill(1);
  let ties = t.ties;
  for (let i = 0; i < w.length; i++) {
    const a = Math.abs(w[i]);
    if (a < t.threshold) mask[i] = 0;
    else if (a === t.threshold && ties > 0) { mask[i] = 0; ties--; }
  }
  return { mask, ties };
}
