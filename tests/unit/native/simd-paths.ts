/** The code paths a fast kernel can take on this machine: 'avx512' and 'avx2' only where the CPU has them. */
import { cpuInfo, setSimdLimit, type SimdPath } from '../../../main/engine/native/index.ts';

export type { SimdPath };

export function simdPaths(): SimdPath[] {
  const cpu = cpuInfo();
  const paths: SimdPath[] = [];
  if (cpu.avx2 && cpu.fma && cpu.f16c) {
    if (cpu.avx512) paths.push('avx512');
    paths.push('avx2');
  }
  paths.push('baseline');
  return paths;
}

/** Caps the kernels at `path` and checks they report it. */
export function useSimdPath(path: SimdPath): void {
  setSimdLimit(path);
  const active = cpuInfo().simd;
  if (active !== path) throw new Error(`asked for the ${path} path but the kernels report ${active}`);
}

/** Seeded PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Index and values of the first few positions where two integer arrays differ, for failure messages. */
export function firstMismatches(a: ArrayLike<number>, b: ArrayLike<number>, limit = 5): string[] {
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length) && out.length < limit; i++) {
    if (a[i] !== b[i]) out.push(`[${i}] ${a[i]} vs ${b[i]}`);
  }
  return out;
}
