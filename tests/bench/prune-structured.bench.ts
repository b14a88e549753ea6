/**
 * Benchmark: structured pruning of a ~0.5 B-parameter decoder of real Llama shapes (random weights),
 * prefill and decode speed of the pruned models against the original, in the same run.
 *
 *   $N tests/bench/prune-structured.bench.ts    (env: BENCH_LAYERS=8, BENCH_DIR=<tmp>, BENCH_RUNS=10, BENCH_PROMPT=64, BENCH_THREADS=2)
 *
 * Models (real 16-head attention, no cache): the original; 25 % of the MLP neurons removed (5632 → 4224
 * per block); 2 blocks removed.
 * Prefill: one run over BENCH_PROMPT tokens. Decode: one run over a single token (the model has no
 * cache; with one the per-token work of the projections is the same). Models are timed interleaved
 * (A B C A B C …) after a warm-up of each. Deletes its folder at the end.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { quietContext } from '../../main/engine/job-context.ts';
import { pruneStructured } from '../../main/engine/prune/structured-step.ts';
import { generateLlamaModel } from './helpers/llama-model.ts';

const LAYERS = Number(process.env.BENCH_LAYERS ?? 8);
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const PROMPT = Number(process.env.BENCH_PROMPT ?? 64);
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const root = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'whittle-bench-prune-'));

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  const src = path.join(root, 'src');
  mkdirSync(src);
  const gen = await generateLlamaModel(src, LAYERS, { heads: 16 });
  console.log(`original: ${LAYERS} layers, 16 heads of 128, ${(gen.params / 1e9).toFixed(3)} B parameters`);
  const ctx = quietContext(root);
  const variants: { label: string; model: string; params: number }[] = [{ label: 'original', model: gen.model, params: gen.params }];
  for (const [label, step] of [['25 % neurons', { target: 'neurons', ratio: 0.25 }], ['2 blocks removed', { target: 'layers', count: 2 }]] as const) {
    const t0 = performance.now();
    const r = await pruneStructured(gen.model, { type: 'prune', method: 'structured', ...step }, path.join(root, label.replace(/\W+/g, '-')), ctx);
    console.log(`${label}: ${(r.paramsAfter / 1e9).toFixed(3)} B parameters (−${(r.plan.removedParameters / 1e6).toFixed(1)} M), pruned in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    variants.push({ label, model: r.modelPath, params: r.paramsAfter });
  }
  const sessions = await Promise.all(variants.map((v) => ort.InferenceSession.create(v.model, { intraOpNumThreads: THREADS, graphOptimizationLevel: 'all' })));
  const ids = (n: number): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 37 + 11) % 32000)), [1, n]);
  const prefill = variants.map(() => [] as number[]);
  const decode = variants.map(() => [] as number[]);
  for (const s of sessions) { await s.run({ input_ids: ids(PROMPT) }); await s.run({ input_ids: ids(1) }); }
  for (let r = 0; r < RUNS; r++) {
    for (const [i, s] of sessions.entries()) {
      let t0 = performance.now();
      await s.run({ input_ids: ids(PROMPT) });
      prefill[i].push(performance.now() - t0);
      t0 = performance.now();
      await s.run({ input_ids: ids(1) });
      decode[i].push(performance.now() - t0);
    }
  }
  for (const s of sessions) await s.release();
  console.log(`speed, ${THREADS} threads, median of ${RUNS} interleaved runs:`);
  variants.forEach((v, i) => {
    const p = median(prefill[i]), d = median(decode[i]);
    console.log(`  ${v.label.padEnd(18)} prefill ${PROMPT} tokens ${p.toFixed(1)} ms (${(p / median(prefill[0])).toFixed(2)}×)   decode ${(1000 / d).toFixed(1)} tokens/s (${(median(decode[0]) / d).toFixed(2)}× the original)`);
  });
} finally {
  rmSync(root, { recursive: true, force: true });
}
