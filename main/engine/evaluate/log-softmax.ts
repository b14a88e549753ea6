/**
 * Negative log-likelihood of next tokens from logits, accumulated in float64.
 *
 *   logits: [rows, vocab] float32, row r predicting targets[r]
 *   logsumexp(row) = m + log Σ_v exp(row[v] − m),  m = max_v row[v]
 *   nll(r) = logsumexp(logits[r]) − logits[r][target]
 * Subtracting the row maximum keeps every exp() in (0, 1], so nothing overflows.
 */

/** log Σ_v exp(logits[offset + v]) over `vocab` entries, stable and in float64. */
export function logSumExp(logits: Float32Array, offset: number, vocab: number): number {
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) {
    const x = logits[offset + v];
    if (x > max) max = x;
  }
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(logits[offset + v] - max);
  return max + Math.log(sum);
}

/** NLL of `target` under the row of `logits` starting at `offset` (vocab entries long). */
export function tokenNll(logits: Float32Array, offset: number, vocab: number, target: number): number {
  return logSumExp(logits, offset, vocab) - logits[offset + target];
}

/**
 * Total NLL of a sequence scored by its own logits: position t predicts ids[t + 1].
 *   logits: [≥ ids.length − 1 rows, vocab] starting at `offset`; returns Σ_t nll(t) over ids.length − 1 targets.
 */
export function sequenceNll(logits: Float32Array, offset: number, vocab: number, ids: ArrayLike<number>): number {
  let total = 0;
  for (let t = 0; t + 1 < ids.length; t++) total += tokenNll(logits, offset + t * vocab, vocab, ids[t + 1]);
  return total;
}
