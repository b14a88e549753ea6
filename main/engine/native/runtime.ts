/** Threads and code paths of the native kernels. */
import { invalid, load, type CpuInfo, type SimdLimit } from './addon.ts';

export type { CpuInfo, SimdLimit, SimdPath } from './addon.ts';

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

/** Makes every kernel take its portable baseline path even where AVX2/FMA/F16C exist (for tests and benchmarks); false restores 'auto'. Same as setSimdLimit(force ? 'baseline' : 'auto'). */
export function setForceBaseline(force: boolean): void {
  load().setForceBaseline(force);
}

/**
 * The code path every kernel takes. 'auto' (the default): the best variant of each kernel for this CPU —
 * AVX-512 for the GEMM / Hessian tiles wherever the CPU has it, and for the sweep and block-wise
 * quantization only where it runs 512-bit vectors at full width (cpuInfo().avx512FullWidth). 'avx512':
 * every AVX-512 variant; 'avx2': AVX-512 CPUs take the AVX2 code; 'baseline': the portable code. Kernels
 * without an AVX-512 variant take their AVX2 one. For tests (each path against the reference) and
 * benchmarks (the paths compared in one run).
 */
export function setSimdLimit(limit: SimdLimit): void {
  if (limit !== 'auto' && limit !== 'avx512' && limit !== 'avx2' && limit !== 'baseline') {
    throw invalid(`setSimdLimit: limit must be 'auto', 'avx512', 'avx2' or 'baseline', got ${String(limit)}.`);
  }
  load().setSimdLimit(limit);
}
