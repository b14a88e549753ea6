/**
 * Per-block sparsity allocation. OWL (Yin et al., arXiv 2310.05175, "outlier weighed layerwise sparsity"):
 *   1. per transformer block ℓ, the Wanda scores A = |W|·‖x‖₂ of all its pruned weights together; the
 *      block's outlier ratio D_ℓ = the fraction of scores above M · mean(A)  (M = 5 in the paper);
 *   2. D scaled to [0, 2λ]:  D'_ℓ = 2λ · (D_ℓ − min D) / (max D − min D);
 *   3. density_ℓ = D'_ℓ − mean(D') + (1 − s), i.e. sparsity_ℓ = s − (D'_ℓ − mean D')  — blocks with more
 *      outliers are pruned less, every block within s ± λ, and the parameter-weighted mean is exactly s
 *      (the mean here is weighted by each block's pruned parameters, which is the paper's plain mean
 *      when blocks are the same size).
 * Weights outside the blocks keep the overall sparsity s.
 */
import { WhittleError } from '../errors.ts';
import { wandaScores } from './wanda.ts';

/** The paper's defaults: outlier threshold M and the bound λ. */
export const OWL_M = 5;
export const OWL_LAMBDA = 0.08;

/** Running outlier statistics of one block: the block's scores are needed twice (mean, then count), so they are kept per weight. */
export interface BlockOutliers {
  block: number;
  params: number;
  outliers: number;
  ratio: number;
}

/** Outliers of one block from the Wanda scores of its weights (each W [K, N] with its input norms). */
export function blockOutlierRatio(weights: readonly { w: Float32Array; k: number; n: number; norms: ArrayLike<number> }[], m = OWL_M): { params: number; outliers: number; ratio: number } {
  const scores = weights.map((x) => wandaScores(x.w, x.k, x.n, x.norms));
  let sum = 0;
  let params = 0;
  for (const s of scores) { for (let i = 0; i < s.length; i++) sum += s[i]; params += s.length; }
  if (params === 0) return { params: 0, outliers: 0, ratio: 0 };
  const limit = (m * sum) / params;
  let outliers = 0;
  for (const s of scores) for (let i = 0; i < s.length; i++) if (s[i] > limit) outliers++;
  return { params, outliers, ratio: outliers / params };
}

/**
 * OWL's per-block sparsities at overall sparsity `s` from the blocks' outlier ratios (see the header).
 * Every sparsity stays in (0, 1); λ is reduced when s ± λ would leave it.
 */
export function owlSparsities(blocks: readonly { params: number; ratio: number }[], s: number, lambda = OWL_LAMBDA): number[] {
  if (!(s > 0 && s < 1)) throw new WhittleError('INVALID_INPUT', `OWL needs an overall sparsity between 0 and 1, got ${s}.`);
  if (blocks.length === 0) return [];
  const lam = Math.min(lambda, s * 0.99, (1 - s) * 0.99);
  const lo = Math.min(...blocks.map((b) => b.ratio));
  const hi = Math.max(...blocks.map((b) => b.ratio));
  if (!(hi > lo)) return blocks.map(() => s);
  const scaled = blocks.map((b) => (2 * lam * (b.ratio - lo)) / (hi - lo));
  const total = blocks.reduce((a, b) => a + b.params, 0);
  const mean = total > 0 ? blocks.reduce((a, b, i) => a + b.params * scaled[i], 0) / total : scaled.reduce((a, b) => a + b, 0) / scaled.length;
  return scaled.map((d) => Math.min(1 - 1e-6, Math.max(1e-6, s - (d - mean))));
}
