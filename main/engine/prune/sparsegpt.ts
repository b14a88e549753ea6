/**
 * SparseGPT (Frantar & Alistarh, arXiv 2301.00774) for one MatMul weight W [K, N]: the shared OBS sweep
 * (native/obs.ts) with the prune policy — per output channel and mask block of `maskBlock` inputs, the
 * round(s · maskBlock) weights with the lowest w² / Hinv[i,i]² are pruned (the paper's adaptive mask
 * selection), or M − N of every M inputs (N:M); each pruned or kept weight's error is spread over the
 * inputs not yet swept through H⁻¹ (H = 2XᵀX/rows from calibration). With `quantize`, the kept weights
 * are GPTQ-quantized in the same sweep (the paper's joint mode) and the MatMulNBits layout comes back.
 */
import { obsSweep, type ObsSwept } from '../native/obs.ts';

export interface SparseGptSettings {
  percdamp: number;
  columnBlock: number;
  maskBlock: number;
  quantize?: { bits: number; blockSize: number; symmetric: boolean };
}

/** The sweep of one weight W [K, N] (float32, row-major) at `sparsity` or N:M, from its input's Hessian sum over `rows` tokens. */
export async function sparseGptWeight(
  w: Float32Array,
  k: number,
  n: number,
  hessianSum: Float32Array,
  rows: number,
  policy: { sparsity: number } | { nm: { n: number; m: number } },
  settings: SparseGptSettings,
  opts: { label: string; scalesFp16: boolean },
): Promise<ObsSwept> {
  return obsSweep(w, hessianSum, rows, {
    k, n, percdamp: settings.percdamp, actOrder: false, columnBlock: settings.columnBlock, label: opts.label,
    prune: 'nm' in policy ? { nm: policy.nm } : { sparsity: policy.sparsity, maskBlock: settings.maskBlock },
    ...(settings.quantize ? { quantize: { ...settings.quantize, scalesFp16: opts.scalesFp16 } } : {}),
  });
}
