/**
 * Native kernels, fast vs their scalar references in the same run (ratios are what to compare across
 * machines; absolute figures depend on the CPU and on what else is running).
 *
 *   GEMM 512×512×512 (C = A·B; another size as the 2nd argument): GFLOP/s = 2·M·N·K / time — each SIMD
 *     path this CPU has (AVX-512, AVX2, baseline SSE2 / portable; setSimdLimit) on all threads, the
 *     default 'auto' choice on 1 thread, naive double-accumulating reference.
 *   Block-wise quantization of a 4096×4096 weight, float32 and float16, block 32 (4-bit symmetric and
 *     asymmetric, 8-bit symmetric): MB/s of input as stored (4 or 2 bytes a weight) — each path on all
 *     threads, 'auto' on 1 thread, and the reference; dequantization of the
 *     4-bit asymmetric result: MB/s of float32 output.
 *   fp32 → fp16 of 16 M values: M values/s — fast (F16C) vs reference.
 *   AdamW step and squared gradient norms over 16 M parameters in 16 tensors: M parameters/s.
 * Each fast figure is the best of `rounds` runs (the paths interleaved); references run once (they are slow). "× avx2" is the AVX2
 * path's time over the row's (the AVX-512 speed-up on its row).
 *
 *   $N tests/bench/native-kernels.bench.ts [rounds=5] [gemmSize=512]
 */
import {
  adamwStep, cpuInfo, dequantizeBlockwise, f32ToF16, gemm, getThreads, gradSquaredSums, quantizeBlockwise, reference, setSimdLimit, setThreads,
  type SimdPath,
} from '../../main/engine/native/index.ts';

const rounds = Number(process.argv[2] ?? 5);
const gemmSize = Number(process.argv[3] ?? 512);

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomArray(n: number, seed: number): Float32Array {
  const next = seeded(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = next() - 0.5;
  return out;
}

async function best(fn: () => Promise<unknown> | unknown, times: number): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    await fn();
    fastest = Math.min(fastest, performance.now() - start);
  }
  return fastest;
}

interface Row { kernel: string; variant: string; ms: number; rate: number; unit: string; vsRef?: number; vsAvx2?: number }
const rows: Row[] = [];

async function measure(kernel: string, variant: string, unit: string, work: number, times: number, fn: () => Promise<unknown> | unknown,
  setup: () => void = () => {}): Promise<number> {
  setup();
  const ms = await best(fn, times);
  rows.push({ kernel, variant, ms, rate: work / (ms / 1000), unit });
  return ms;
}

function fillRatios(kernel: string): void {
  const ref = rows.find((r) => r.kernel === kernel && r.variant === 'reference');
  if (!ref) return;
  const avx2 = rows.find((r) => r.kernel === kernel && r.variant.startsWith('avx2,'));
  for (const r of rows) {
    if (r.kernel !== kernel) continue;
    r.vsRef = ref.ms / r.ms;
    if (avx2 && r.variant !== 'reference') r.vsAvx2 = avx2.ms / r.ms;
  }
}

const cpu = cpuInfo();
const allThreads = cpu.hardwareThreads;
const paths: SimdPath[] = cpu.simd === 'baseline' ? ['baseline'] : cpu.avx512 ? ['avx512', 'avx2', 'baseline'] : ['avx2', 'baseline'];
const useAll = (): void => { setSimdLimit('auto'); setThreads(0); };
const useOne = (): void => { setSimdLimit('auto'); setThreads(1); };
const usePath = (path: SimdPath) => (): void => { setSimdLimit(path); setThreads(0); };

/**
 * One row per SIMD path on all threads — the paths interleaved run by run, so load from other processes
 * hits them alike and their ratio holds — then the default 'auto' choice on 1 thread.
 */
async function measurePaths(label: string, unit: string, work: number, fn: () => Promise<unknown>): Promise<void> {
  const fastest = new Map<SimdPath, number>(paths.map((p) => [p, Infinity]));
  for (let i = 0; i < rounds; i++) {
    for (const path of paths) {
      usePath(path)();
      fastest.set(path, Math.min(fastest.get(path) as number, await best(fn, 1)));
    }
  }
  for (const path of paths) {
    const ms = fastest.get(path) as number;
    rows.push({ kernel: label, variant: `${path}, ${allThreads} threads`, ms, rate: work / (ms / 1000), unit });
  }
  await measure(label, 'auto, 1 thread', unit, work, rounds, fn, useOne);
}

// GEMM n³
{
  const n = gemmSize;
  const a = randomArray(n * n, 1);
  const b = randomArray(n * n, 2);
  const flops = 2 * n * n * n / 1e9;
  const label = `gemm ${n}³`;
  await gemm(a, b, n, n, n);  // warm up the pool
  await measurePaths(label, 'GFLOP/s', flops, () => gemm(a, b, n, n, n));
  await measure(label, 'reference', 'GFLOP/s', flops, 1, () => reference.gemm(a, b, n, n, n), useAll);
  fillRatios(label);
}

// Block-wise quantization of a 4096×4096 weight (float32, and the same values as float16), block 32:
// 4-bit symmetric / asymmetric and 8-bit symmetric; then dequantization of the 4-bit asymmetric result.
{
  const k = 4096;
  const n = 4096;
  const w32 = randomArray(k * n, 3);
  const w16 = await f32ToF16(w32);
  const configs = [
    { bits: 4 as const, symmetric: true, name: '4-bit b32 sym' },
    { bits: 4 as const, symmetric: false, name: '4-bit b32 asym' },
    { bits: 8 as const, symmetric: true, name: '8-bit b32 sym' },
  ];
  for (const fp16 of [false, true]) {
    const w = fp16 ? w16 : w32;
    const mb = (k * n * (fp16 ? 2 : 4)) / 1e6;
    for (const c of configs) {
      const label = `quantize 4096² ${fp16 ? 'fp16' : 'fp32'} ${c.name}`;
      const opts = { k, n, bits: c.bits, blockSize: 32, symmetric: c.symmetric, weightIsFp16: fp16 };
      await measurePaths(label, 'MB/s', mb, () => quantizeBlockwise(w, opts));
      await measure(label, 'reference', 'MB/s', mb, 1, () => reference.quantizeBlockwise(w, opts), useAll);
      fillRatios(label);
    }
  }
  useAll();
  const q = await quantizeBlockwise(w32, { k, n, bits: 4, blockSize: 32, symmetric: false });
  const label = 'dequantize 4096² 4-bit b32 asym';
  const mb = (k * n * 4) / 1e6;
  await measurePaths(label, 'MB/s', mb, () => dequantizeBlockwise(q));
  await measure(label, 'reference', 'MB/s', mb, 1, () => reference.dequantizeBlockwise(q), useAll);
  fillRatios(label);
}

// fp32 → fp16, 16 M values
{
  const src = randomArray(1 << 24, 4);
  const mvalues = src.length / 1e6;
  const label = 'f32ToF16 16M';
  await measure(label, `auto, ${allThreads} threads`, 'M values/s', mvalues, rounds, () => f32ToF16(src), useAll);
  await measure(label, 'reference', 'M values/s', mvalues, 1, () => reference.f32ToF16(src), useAll);
  fillRatios(label);
}

// AdamW step and squared gradient norms over 16 M parameters in 16 tensors (the llama2.c 15M shape's size)
{
  const tensors = Array.from({ length: 16 }, (_, k) => ({
    weights: randomArray(1 << 20, 10 + k), grads: randomArray(1 << 20, 30 + k),
    m: new Float32Array(1 << 20), v: new Float32Array(1 << 20), weightDecay: k % 2 ? 0.1 : 0,
  }));
  const grads = tensors.map((t) => t.grads);
  const mparams = (16 << 20) / 1e6;
  const params = { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1, gradScale: 1e-3 };
  let label = 'adamwStep 16M';
  await measurePaths(label, 'M params/s', mparams, () => adamwStep(tensors, params));
  await measure(label, 'reference', 'M params/s', mparams, 1, () => reference.adamwStep(tensors, params), useAll);
  fillRatios(label);
  label = 'gradSquaredSums 16M';
  await measurePaths(label, 'M params/s', mparams, () => gradSquaredSums(grads));
  await measure(label, 'reference', 'M params/s', mparams, 1, () => reference.gradSquaredSums(grads), useAll);
  fillRatios(label);
}
useAll();

console.log(`native kernels — CPU: avx2 ${cpu.avx2}, fma ${cpu.fma}, f16c ${cpu.f16c}, avx512 ${cpu.avx512}; ${allThreads} hardware threads (default ${getThreads()}); rounds ${rounds}`);
const header = ['kernel', 'variant', 'ms', 'rate', 'unit', '× reference', '× avx2'];
const table = rows.map((r) => [r.kernel, r.variant, r.ms.toFixed(1), r.rate.toFixed(1), r.unit, r.vsRef === undefined ? '' : r.vsRef.toFixed(1),
  r.vsAvx2 === undefined ? '' : r.vsAvx2.toFixed(2)]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
const line = (cells: string[]): string => cells.map((c, i) => (i >= 2 && i !== 4 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const row of table) console.log(line(row));
