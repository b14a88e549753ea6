/**
 * Wanda (Sun et al., arXiv 2306.11695): pruning by weights and activations, no weight update.
 * For a linear layer Y = X·W, W [K, N] (ONNX layout, K = d_in), calibration inputs X [rows, K]:
 *   score S[i, j] = |W[i, j]| · ‖X[:, i]‖₂             (‖x_i‖₂ = sqrt(Σ x_i²), the 'l2' accumulator)
 * compared within each output channel j (the paper's per-output comparison group): the round(s · K)
 * lowest scores of the channel are pruned; N:M: the M − N lowest of every M consecutive inputs.
 */
import { channelScores, maskToWeightLayout } from './magnitude.ts';
import { lowestPerRow, nmPerRow, prunedCount } from './select.ts';

/** ‖x_i‖₂ from Σ x_i² (the l2 accumulator's output). */
export function inputNorms(sumSquares: ArrayLike<number>): Float32Array {
  return Float32Array.from(sumSquares, (v) => Math.sqrt(v));
}

/** Wanda's scores of W [K, N] as channel rows [N, K]. */
export function wandaScores(w: Float32Array, k: number, n: number, norms: ArrayLike<number>): Float32Array {
  return channelScores(w, k, n, norms);
}

/** The Wanda mask [K, N] (1 = kept): unstructured at `sparsity` per output channel, or N:M. */
export function wandaMask(w: Float32Array, k: number, n: number, norms: ArrayLike<number>, policy: { sparsity: number } | { nm: { n: number; m: number } }): Uint8Array {
  const s = wandaScores(w, k, n, norms);
  const channelMask = 'nm' in policy ? nmPerRow(s, n, k, policy.nm.n, policy.nm.m) : lowestPerRow(s, n, k, prunedCount(k, policy.sparsity));
  return maskToWeightLayout(channelMask, k, n);
}
