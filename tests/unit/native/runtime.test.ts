/**
 * The addon as a whole: it loads through Node-API, reports its CPU paths, honours setThreads, runs its
 * kernels off the event loop, and handles several calls at once on the shared thread pool.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  cpuInfo, gemm, getThreads, nativeAvailable, quantizeBlockwise, reference, setForceBaseline, setSimdLimit, setThreads, type SimdPath,
} from '../../../main/engine/native/index.ts';
import { rng } from './simd-paths.ts';

afterAll(() => {
  setThreads(0);
  setSimdLimit('auto');
});

const random = (next: () => number, n: number): Float32Array => Float32Array.from({ length: n }, () => next() * 2 - 1);

describe('native runtime', () => {
  it('loads and describes the CPU', () => {
    expect(nativeAvailable()).toBe(true);
    const cpu = cpuInfo();
    expect(cpu.hardwareThreads).toBeGreaterThanOrEqual(1);
    const best: SimdPath = !(cpu.avx2 && cpu.fma && cpu.f16c) ? 'baseline' : cpu.avx512 ? 'avx512' : 'avx2';
    expect(cpu.simd).toBe(best);
  });

  it('setSimdLimit caps the path at what the CPU has (default auto); setForceBaseline is the baseline cap', () => {
    const cpu = cpuInfo();
    const has = { avx512: cpu.avx512 && cpu.avx2 && cpu.fma && cpu.f16c, avx2: cpu.avx2 && cpu.fma && cpu.f16c, baseline: true };
    setSimdLimit('avx2');
    expect(cpuInfo().simd).toBe(has.avx2 ? 'avx2' : 'baseline');
    setSimdLimit('baseline');
    expect(cpuInfo().simd).toBe('baseline');
    setSimdLimit('avx512');
    expect(cpuInfo().simd).toBe(has.avx512 ? 'avx512' : has.avx2 ? 'avx2' : 'baseline');
    setForceBaseline(true);
    expect(cpuInfo().simd).toBe('baseline');
    expect(cpuInfo().simdLimit).toBe('baseline');
    setForceBaseline(false);
    expect(cpuInfo().simdLimit).toBe('auto');
    expect(cpuInfo().simd).toBe(has.avx512 ? 'avx512' : has.avx2 ? 'avx2' : 'baseline');
    setSimdLimit('avx2');
    setSimdLimit('auto');
    expect(cpuInfo().simd).toBe(has.avx512 ? 'avx512' : has.avx2 ? 'avx2' : 'baseline');
    expect(cpu.avx512FullWidth && !cpu.avx512).toBe(false);
    expect(() => setSimdLimit('sse' as SimdPath)).toThrow(/avx512/);
  });

  it('uses hardware concurrency by default; setThreads changes and restores it', async () => {
    const hardware = cpuInfo().hardwareThreads;
    expect(getThreads()).toBe(hardware);
    setThreads(1);
    expect(getThreads()).toBe(1);
    setThreads(3);
    expect(getThreads()).toBe(3);
    setThreads(0);
    expect(getThreads()).toBe(hardware);
    expect(() => setThreads(1.5)).toThrow(/integer/);
  });

  it('keeps the event loop running while a large GEMM works', async () => {
    const next = rng(1);
    const n = 1024;
    const a = random(next, n * n);
    const b = random(next, n * n);
    let ticks = 0;
    let running = true;
    const spin = (): void => {
      ticks++;
      if (running) setImmediate(spin);
    };
    setImmediate(spin);
    const ticksAtStart = ticks;
    const pending = gemm(a, b, n, n, n);
    const ticksAfterCall = ticks;  // the call returned without running the loop
    const c = await pending;
    running = false;
    expect(ticksAfterCall).toBe(ticksAtStart);
    // the loop went round while the product was computed on other threads
    expect(ticks).toBeGreaterThan(ticksAtStart);
    expect(c.length).toBe(n * n);
  });

  it('runs concurrent calls of different kernels correctly on the shared pool', async () => {
    const next = rng(2);
    const jobs = Array.from({ length: 6 }, (_, i) => ({ m: 40 + i, n: 50 + 3 * i, k: 300 + i }));
    const inputs = jobs.map((j) => ({ ...j, a: random(next, j.m * j.k), b: random(next, j.k * j.n) }));
    const weight = random(next, 512 * 96);
    const [quantized, ...products] = await Promise.all([
      quantizeBlockwise(weight, { k: 512, n: 96, bits: 4, blockSize: 32, symmetric: false }),
      ...inputs.map((x) => gemm(x.a, x.b, x.m, x.n, x.k)),
    ]);
    products.forEach((c, i) => {
      const x = inputs[i];
      const ref = reference.gemm(x.a, x.b, x.m, x.n, x.k);
      let worst = 0;
      for (let e = 0; e < c.length; e++) worst = Math.max(worst, Math.abs(c[e] - ref[e]));
      expect(worst).toBeLessThan(1e-4);
    });
    const ref = reference.quantizeBlockwise(weight, { k: 512, n: 96, bits: 4, blockSize: 32, symmetric: false });
    expect(Buffer.from(quantized.packed).equals(Buffer.from(ref.packed))).toBe(true);
  });
});
