/** Random calibration activations for the Hessian and GPTQ kernel tests. */
import { rng } from './simd-paths.ts';

/**
 * Calibration-like activations X [rows × d]: 8 latent factors mixed into every input (correlated
 * columns), per-input scales from 0.1 to 10, independent noise, and the inputs in `dead` all zero.
 */
export function activations(rows: number, d: number, seed: number, dead: readonly number[] = []): Float32Array {
  const next = rng(seed);
  const factors = 8;
  const mix = Float64Array.from({ length: factors * d }, () => next() * 2 - 1);
  const scale = Float64Array.from({ length: d }, () => 10 ** (next() * 2 - 1));
  const deadSet = new Set(dead);
  const x = new Float32Array(rows * d);
  const z = new Float64Array(factors);
  for (let t = 0; t < rows; t++) {
    for (let f = 0; f < factors; f++) z[f] = next() * 2 - 1;
    for (let i = 0; i < d; i++) {
      if (deadSet.has(i)) continue;
      let v = 0.3 * (next() * 2 - 1);
      for (let f = 0; f < factors; f++) v += mix[f * d + i] * z[f];
      x[t * d + i] = v * scale[i];
    }
  }
  return x;
}
