/** Threads and code paths of the native kernels. */
import { invalid, load, type CpuInfo, type SimdPath } from './addon.ts';

export type { CpuInfo, SimdPath } from './addon.ts';

/** Threads the kernels use (the calling libuv thread included). n <= 0 restores the default: hardware concurrency. */
export function setThreads(n: number): void {
  if (typeof n !== 'number' || !Number.isInteger(n)) throw invalid(`setThreads: n must be an integer, got ${String(n)}.`);
  load().setThreads(n);
}

export function getThreads(): number {
  return load().getThreads();
}

export function cpuInfo(): CpuInfo {
  return load().cpuInfo();
}

/** Makes every kernel take its portable baseline path even where AVX2/FMA/F16C exist (for tests and benchmarks); false lifts the cap. Same as setSimdLimit(force ? 'baseline' : 'avx512'). */
export function setForceBaseline(force: boolean): void {
  load().setForceBaseline(force);
}

/**
 * Caps the code path every kernel takes: 'avx512' (no cap: the best this CPU has), 'avx2' (AVX-512 CPUs
 * take the AVX2 path) or 'baseline'. Kernels without an AVX-512 variant take their AVX2 one. For tests
 * (each path against the reference) and benchmarks (the paths compared in one run).
 */
export function setSimdLimit(limit: SimdPath): void {
  if (limit !== 'avx512' && limit !== 'avx2' && limit !== 'baseline') {
    throw invalid(`setSimdLimit: limit must be 'avx512', 'avx2' or 'baseline', got ${String(limit)}.`);
  }
  load().setSimdLimit(limit);
}
