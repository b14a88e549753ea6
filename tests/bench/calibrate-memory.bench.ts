/**
 * Benchmark: calibration peak memory against the number of samples, on a decoder of real Llama shapes
 * (random weights, helpers/llama-model.ts; 8 layers ≈ 0.5 B parameters, default 4 layers to keep a 2-core
 * run to a few minutes).
 *
 *   $N tests/bench/calibrate-memory.bench.ts   (env: BENCH_LAYERS=4, BENCH_LENGTH=128, BENCH_SAMPLES=32,128,
 *                                                BENCH_ACCUMULATORS=hessian,minmax,histogram,l2, BENCH_DIR=<tmp>)
 *
 * Each run is a child process (tests/unit/calibrate/peak-rss-child.ts) collecting the requested statistics
 * of every distinct MatMul input; it reports VmHWM. Goal: the peak does not grow with the samples — it is
 * the model + the accumulators + one batch (estimate printed beside it). Deletes its folder at the end.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { fixture } from '../helpers/fixtures.ts';
import { generateLlamaModel, LLAMA_SHAPES } from './helpers/llama-model.ts';

const LAYERS = Number(process.env.BENCH_LAYERS ?? 4);
const LENGTH = Number(process.env.BENCH_LENGTH ?? 128);
const SAMPLES = (process.env.BENCH_SAMPLES ?? '32,128').split(',').map(Number);
const ACCUMULATORS = process.env.BENCH_ACCUMULATORS ?? 'hessian,minmax,histogram,l2';
const root = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'whittle-bench-calibrate-'));
const MiB = 2 ** 20;

interface ChildResult { baselineRssKb: number; peakRssKb: number; wallMs: number; rows: number; tensors: number }

function calibrateInChild(model: string, samples: number): ChildResult {
  const child = path.resolve(import.meta.dirname, '../unit/calibrate/peak-rss-child.ts');
  const work = path.join(root, `work-${samples}`);
  mkdirSync(work);
  const out = execFileSync(process.execPath, [
    child, model, fixture('stories260K', 'tokenizer.json'), fixture('text', 'tinystories_val_head.txt'), String(samples), String(LENGTH), work, ACCUMULATORS,
  ], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop()!);
}

try {
  const { hidden: H, intermediate: I } = LLAMA_SHAPES;
  console.log(`generating a ${LAYERS}-layer decoder (hidden ${H}, intermediate ${I}, vocab ${LLAMA_SHAPES.vocab}) in ${root} …`);
  const src = path.join(root, 'src');
  mkdirSync(src);
  const gen = await generateLlamaModel(src, LAYERS);
  const modelBytes = statSync(gen.model).size + statSync(`${gen.model}.data`).size;
  // Distinct MatMul inputs: per layer norm→q/k/v, attention→o, norm→gate/up, SwiGLU→down; then norm→lm_head.
  const widths = [...Array.from({ length: LAYERS }, () => [H, H, H, I]).flat(), H];
  const hessianBytes = ACCUMULATORS.includes('hessian') ? widths.reduce((a, d) => a + d * d * 4, 0) : 0;
  const batchBytes = widths.reduce((a, d) => a + LENGTH * d * 4, 0);
  console.log(`  ${(gen.params / 1e9).toFixed(3)} B parameters, ${(modelBytes / MiB).toFixed(0)} MiB; ${widths.length} activations; Hessians ${(hessianBytes / MiB).toFixed(0)} MiB; one batch of activations ${(batchBytes / MiB).toFixed(1)} MiB`);

  const rows: [string, string, string][] = [];
  const results: { samples: number; r: ChildResult }[] = [];
  for (const samples of SAMPLES) {
    const r = calibrateInChild(gen.model, samples);
    results.push({ samples, r });
    const growth = (r.peakRssKb - r.baselineRssKb) * 1024;
    rows.push([
      `${samples} × ${LENGTH} tokens`,
      `peak RSS ${(r.peakRssKb / 1024).toFixed(0)} MiB (+${(growth / MiB).toFixed(0)} MiB over start)`,
      `${(r.wallMs / 1000).toFixed(1)} s, ${(r.wallMs / samples).toFixed(0)} ms/sequence, ${r.rows} rows`,
    ]);
  }
  const first = results[0], last = results[results.length - 1];
  const delta = (last.r.peakRssKb - first.r.peakRssKb) / 1024;
  rows.push([`peak ${last.samples} vs ${first.samples}`, `${delta >= 0 ? '+' : ''}${delta.toFixed(0)} MiB`, `goal: flat (model ${(modelBytes / MiB).toFixed(0)} + accumulators ${(hessianBytes / MiB).toFixed(0)} + batch ${(batchBytes / MiB).toFixed(0)} MiB ≈ ${((modelBytes + hessianBytes + batchBytes) / MiB).toFixed(0)} MiB)`]);
  const w0 = Math.max(...rows.map((r) => r[0].length)), w1 = Math.max(...rows.map((r) => r[1].length));
  console.log(`\n${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), onnxruntime-node ${ort.env.versions.common}, accumulators ${ACCUMULATORS}\n`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
