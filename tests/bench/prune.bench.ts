/**
 * Pruning per layer against GPTQ in the same run, on random calibration data (the activations model of
 * gptq.bench.ts: 16 latent factors, per-input scales 0.1..10, noise) at 2 threads (--threads=N):
 *
 *   wanda       ‖x‖₂ per input from the same activations (not timed: the l2 accumulator is O(rows·d_in)),
 *               then the mask (|w|·‖x‖, per output channel) and its application
 *   sparsegpt   obsSweep with the prune policy, 50 % unstructured (mask block 128), from the Hessian sum
 *               (prepare + sweep, like gptq)
 *   sparsegpt 2:4, and 50 % + 4-bit group 32 (joint)
 *   gptq        gptqQuantize 4-bit group 32 on the same weight and Hessian
 * Each figure is the best of `rounds` runs (default 1). d_in × d_out = 4096 × 4096 and 4096 × 11008
 * (--quick: 4096 × 4096 only).
 *
 *   $N tests/bench/prune.bench.ts [--quick] [--rounds=N] [--rows=N] [--threads=2]
 */
import { getThreads, gptqQuantize, hessianAccumulate, setThreads } from '../../main/engine/native/index.ts';
import { obsSweep } from '../../main/engine/native/obs.ts';
import { applyMask } from '../../main/engine/prune/magnitude.ts';
import { wandaMask } from '../../main/engine/prune/wanda.ts';
import { activations, flag, option, seeded } from './helpers/bench-inputs.ts';

const rounds = Number(option('rounds', '1'));
const threads = Number(option('threads', '2'));
const shapes: [number, number][] = [[4096, 4096]];
if (!flag('quick')) shapes.push([4096, 11008]);

async function best(fn: () => Promise<unknown> | unknown): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i < rounds; i++) {
    const start = performance.now();
    await fn();
    fastest = Math.min(fastest, (performance.now() - start) / 1000);
  }
  return fastest;
}

setThreads(threads);
console.log(`threads ${getThreads()}, rounds ${rounds}`);
for (const [k, n] of shapes) {
  const tokens = Number(option('rows', '2048'));
  const x = activations(tokens, k, k);
  const next = seeded(n);
  const w = Float32Array.from({ length: k * n }, () => (next() + next() + next() - 1.5) * 0.05);
  const sum = new Float32Array(k * k);
  await hessianAccumulate(sum, x, tokens, k);
  const norms = new Float32Array(k);
  for (let t = 0; t < tokens; t++) for (let i = 0; i < k; i++) norms[i] += x[t * k + i] ** 2;
  for (let i = 0; i < k; i++) norms[i] = Math.sqrt(norms[i]);
  const base = { k, n, percdamp: 0.01, actOrder: false, columnBlock: 128 };
  const wanda = await best(() => applyMask(w.slice(), wandaMask(w, k, n, norms, { sparsity: 0.5 })));
  const wanda24 = await best(() => applyMask(w.slice(), wandaMask(w, k, n, norms, { nm: { n: 2, m: 4 } })));
  const sparsegpt = await best(() => obsSweep(w, sum, tokens, { ...base, prune: { sparsity: 0.5, maskBlock: 128 } }));
  const sparsegpt24 = await best(() => obsSweep(w, sum, tokens, { ...base, prune: { nm: { n: 2, m: 4 } } }));
  const joint = await best(() => obsSweep(w, sum, tokens, { ...base, prune: { sparsity: 0.5, maskBlock: 128 }, quantize: { bits: 4, blockSize: 32, symmetric: false } }));
  const gptq = await best(() => gptqQuantize(w, sum, tokens, { ...base, bits: 4, blockSize: 32, symmetric: false }));
  const f = (s: number): string => `${s.toFixed(2)} s`;
  console.log(`${k}×${n} (${tokens} tokens): wanda 50% ${f(wanda)}, wanda 2:4 ${f(wanda24)}, sparsegpt 50% ${f(sparsegpt)}, sparsegpt 2:4 ${f(sparsegpt24)}, `
    + `sparsegpt 50%+4-bit ${f(joint)}, gptq 4-bit ${f(gptq)}`);
}
setThreads(0);
