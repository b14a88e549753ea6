/**
 * The selection rule every pruning mask here shares: in each row of a score matrix S [rows, len]
 * (row-major), the `count` lowest scores are pruned (mask 0), ties broken by the lower index first, so
 * a mask is a pure function of the scores. N:M: in every group of M consecutive entries of a row, the
 * M − N lowest are pruned, same tie rule. Masks: Uint8Array [rows, len], 1 = kept.
 */
import { WhittleError } from '../errors.ts';

/** round(sparsity · len), halves to even: the number of entries pruned of `len` (SparseGPT's mask block rule). */
export function prunedCount(len: number, sparsity: number): number {
  const x = sparsity * len;
  const f = Math.floor(x);
  const d = x - f;
  if (Math.abs(d - 0.5) < 1e-9) return f % 2 === 0 ? f : f + 1;
  return Math.round(x);
}

/**
 * Prunes the `count` lowest scores of each row. One sorted copy of the row finds the threshold t =
 * the count-th lowest; entries below t are pruned, then entries equal to t from the left until `count`.
 * O(len log len) per row (a typed-array sort).
 */
export function lowestPerRow(scores: Float32Array, rows: number, len: number, count: number, mask: Uint8Array = new Uint8Array(rows * len)): Uint8Array {
  if (scores.length !== rows * len || mask.length !== rows * len) throw new WhittleError('INTERNAL', `lowestPerRow: ${scores.length} scores for ${rows} × ${len}.`);
  mask.fill(1);
  if (count <= 0) return mask;
  if (count >= len) return mask.fill(0);
  const sorted = new Float32Array(len);
  for (let r = 0; r < rows; r++) {
    const off = r * len;
    const row = scores.subarray(off, off + len);
    sorted.set(row);
    sorted.sort();
    const t = sorted[count - 1];
    let below = 0;
    for (let i = 0; i < len; i++) if (row[i] < t) below++;
    let ties = count - below;
    for (let i = 0; i < len; i++) {
      const v = row[i];
      if (v < t) mask[off + i] = 0;
      else if (v === t && ties > 0) { mask[off + i] = 0; ties--; }
    }
  }
  return mask;
}

/** N:M: in each group of `m` consecutive entries of each row, keeps the `n` highest scores (ties: the lower index pruned first). len % m must be 0. */
export function nmPerRow(scores: Float32Array, rows: number, len: number, n: number, m: number, mask: Uint8Array = new Uint8Array(rows * len)): Uint8Array {
  if (len % m !== 0) throw new WhittleError('INTERNAL', `nmPerRow: ${len} is not a multiple of ${m}.`);
  mask.fill(1);
  const idx = new Int32Array(m);
  const prune = m - n;
  for (let g = 0; g < rows * len; g += m) {
    // Insertion sort of the group's indices by (score, index): m is small (≤ 256).
    for (let a = 0; a < m; a++) {
      const s = scores[g + a];
      let b = a;
      while (b > 0 && scores[g + idx[b - 1]] > s) { idx[b] = idx[b - 1]; b--; }
      idx[b] = a;
    }
    for (let a = 0; a < prune; a++) mask[g + idx[a]] = 0;
  }
  return mask;
}

/** Zeros of a mask. */
export function zerosOf(mask: Uint8Array): number {
  let z = 0;
  for (let i = 0; i < mask.length; i++) z += mask[i] === 0 ? 1 : 0;
  return z;
}
