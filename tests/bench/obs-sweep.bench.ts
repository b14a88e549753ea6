/**
 * The shared optimal-brain-surgeon sweep (native-kernels/src/obs_sweep.cc) per column policy, on one
 * layer's Hessian from random calibration data, in one run (2 threads by default):
 *
 *   gptq       gptqQuantize: prepare + sweep with the quantize policy + MatMulNBits packing (4-bit, group 32)
 *   quantize   obsSweep with the same policy (also writes the swept float W)
 *   prune 50 % obsSweep, SparseGPT unstructured, mask blocks of 128
 *   prune 2:4  obsSweep, SparseGPT N:M
 *   joint      obsSweep, prune 50 % then 4-bit quantize the kept weights
 * Each figure is the best of `rounds` runs; columnBlock 128, percdamp 0.01, act-order off, 2048 tokens.
 *
 *   $N tests/bench/obs-sweep.bench.ts [--rounds=N] [--threads=N] [--quick]
 */
import { cpuInfo, getThreads, gptqQuantize, hessianAccumulate, obsSweep, setThreads, type ObsSweepOptions } from '../../main/engine/native/index.ts';
import { flag, option, seeded } from './helpers/bench-inputs.ts';

const rounds = Number(option('rounds', '2'));
const shapes: [number, number][] = flag('quick') ? [[1024, 1024]] : [[2048, 2048], [4096, 4096]];
const tokens = 2048;

async function best(fn: () => Promise<unknown>): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i < rounds; i++) {
    const start = performance.now();
    await fn();
    fastest = Math.min(fastest, performance.now() - start);
  }
  return fastest / 1000;
}

setThreads(Number(option('threads', '2')));
console.log(`CPU: ${cpuInfo().simd} (limit ${cpuInfo().simdLimit}), ${getThreads()} thread(s); rounds ${rounds}; ${tokens} tokens`);
console.log('\n| d_in × d_out | gptqQuantize | obsSweep quantize | prune 50 % | prune 2:4 | prune 50 % + 4-bit |');
console.log('|---|---|---|---|---|---|');
for (const [k, n] of shapes) {
  const next = seeded(k);
  const x = Float32Array.from({ length: tokens * k }, () => next() * 2 - 1);
  const w = Float32Array.from({ length: k * n }, () => (next() - 0.5) * 0.1);
  const sum = new Float32Array(k * k);
  await hessianAccumulate(sum, x, tokens, k);
  const base = { k, n, columnBlock: 128, percdamp: 0.01, actOrder: false };
  const quantize = { bits: 4, blockSize: 32, symmetric: false };
  const policies: ObsSweepOptions[] = [
    { ...base, quantize },
    { ...base, prune: { sparsity: 0.5 } },
    { ...base, prune: { nm: { n: 2, m: 4 } } },
    { ...base, quantize, prune: { sparsity: 0.5 } },
  ];
  const gptq = await best(() => gptqQuantize(w, sum, tokens, { ...base, bits: 4, blockSize: 32, symmetric: false }));
  const times = [gptq];
  for (const p of policies) times.push(await best(() => obsSweep(w, sum, tokens, p)));
  console.log(`| ${k}×${n} | ${times.map((t) => `${t.toFixed(2)} s`).join(' | ')} |`);
}
setThreads(0);
