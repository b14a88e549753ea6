/**
 * Inputs shared by the kernel benchmarks: `--name=value` options, and reproducible random layers.
 */
import { mulberry32 } from '../../../main/engine/calibrate/prng.ts';

const args = process.argv.slice(2);

/** `--name=value` from the command line, else the fallback. */
export const option = (name: string, fallback: string): string => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;

/** Whether a bare `--flag` was given. */
export const flag = (name: string): boolean => args.includes(`--${name}`);

/** A seeded uniform generator in [0, 1). */
export const seeded = (seed: number): (() => number) => mulberry32(seed).next;

/** X [rows × d]: 16 latent factors mixed into every input, per-input scales 0.1..10, noise — correlated like real activations. */
export function activations(rows: number, d: number, seed: number): Float32Array {
  const next = seeded(seed);
  const factors = 16;
  const mix = Float32Array.from({ length: factors * d }, () => next() * 2 - 1);
  const scale = Float32Array.from({ length: d }, () => 10 ** (next() * 2 - 1));
  const x = new Float32Array(rows * d);
  const z = new Float32Array(factors);
  for (let t = 0; t < rows; t++) {
    for (let f = 0; f < factors; f++) z[f] = next() * 2 - 1;
    for (let i = 0; i < d; i++) {
      let v = 0.3 * (next() * 2 - 1);
      for (let f = 0; f < factors; f++) v += mix[f * d + i] * z[f];
      x[t * d + i] = v * scale[i];
    }
  }
  return x;
}

/** W [k × n] with small, roughly normal entries. */
export function weight(k: number, n: number, seed: number): Float32Array {
  const next = seeded(seed);
  return Float32Array.from({ length: k * n }, () => (next() + next() + next() - 1.5) * 0.05);
}
