/**
 * A small seeded pseudo-random generator, so calibration samples are reproducible from a recipe's seed.
 *
 * mulberry32 (Tommy Ettinger, public domain): 32-bit state advanced by the Weyl constant 0x6D2B79F5, then
 * two xorshift-multiply rounds. Period 2^32; plenty for picking a few thousand text offsets.
 */
export interface Prng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  below(n: number): number;
}

export function mulberry32(seed: number): Prng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, below: (n) => Math.floor(next() * n) };
}
