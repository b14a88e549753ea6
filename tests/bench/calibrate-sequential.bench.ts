/**
 * Benchmark: sequential (level by level, calibrate/sequential.ts) against one-pass calibration, time and
 * peak memory, on a decoder of real Llama shapes (random weights, helpers/llama-model.ts; 8 layers ≈ 0.5 B
 * parameters). Both collect the same statistics of every distinct MatMul input; sequential runs the model
 * as one onnxruntime session per graph segment and keeps only the boundary activations and one level's
 * statistics, one-pass runs it whole and keeps every statistic at once.
 *
 *   npm run bench calibrate-sequential   (env: BENCH_LAYERS=8, BENCH_LENGTH=128, BENCH_SAMPLES=32,
 *                                          BENCH_ACCUMULATORS=hessian, BENCH_REPEATS=1, BENCH_DIR=<tmp>)
 *
 * The two modes alternate (one-pass, sequential, one-pass, …) in child processes of this run, so they see
 * the same machine; the figures are medians over the repeats. Deletes its folder at the end.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fixture } from '../helpers/fixtures.ts';
import { generateLlamaModel, LLAMA_SHAPES } from './helpers/llama-model.ts';

const LAYERS = Number(process.env.BENCH_LAYERS ?? 8);
const LENGTH = Number(process.env.BENCH_LENGTH ?? 128);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 32);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 1);
const ACCUMULATORS = process.env.BENCH_ACCUMULATORS ?? 'hessian';
const root = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'whittle-bench-sequential-'));
const MiB = 2 ** 20;

interface ChildResult { baselineRssKb: number; peakRssKb: number; wallMs: number; rows: number }

let runs = 0;
function calibrateInChild(model: string, mode: 'one-pass' | 'sequential'): ChildResult {
  const child = path.resolve(import.meta.dirname, '../unit/calibrate/peak-rss-child.ts');
  const work = path.join(root, `work-${runs++}`);
  mkdirSync(work);
  const out = execFileSync(process.execPath, [
    child, model, fixture('stories260K', 'tokenizer.json'), fixture('text', 'tinystories_val_head.txt'), String(SAMPLES), String(LENGTH), work, ACCUMULATORS, mode,
  ], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop()!);
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

try {
  const { hidden: H, intermediate: I } = LLAMA_SHAPES;
  console.log(`generating a ${LAYERS}-layer decoder (hidden ${H}, intermediate ${I}, vocab ${LLAMA_SHAPES.vocab}) in ${root} …`);
  const src = path.join(root, 'src');
  mkdirSync(src);
  const gen = await generateLlamaModel(src, LAYERS);
  const modelBytes = statSync(gen.model).size + statSync(`${gen.model}.data`).size;
  console.log(`  ${(gen.params / 1e9).toFixed(3)} B parameters, ${(modelBytes / MiB).toFixed(0)} MiB; ${SAMPLES} × ${LENGTH} tokens; statistics: ${ACCUMULATORS}`);
  const results: Record<'one-pass' | 'sequential', ChildResult[]> = { 'one-pass': [], sequential: [] };
  for (let r = 0; r < REPEATS; r++) {
    for (const mode of ['one-pass', 'sequential'] as const) results[mode].push(calibrateInChild(gen.model, mode));
  }
  console.log(`\n${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${REPEATS} repeat(s), medians\n`);
  const line = (mode: 'one-pass' | 'sequential'): { wall: number; peak: number } => {
    const wall = median(results[mode].map((x) => x.wallMs)) / 1000;
    const peak = median(results[mode].map((x) => x.peakRssKb)) / 1024;
    const growth = median(results[mode].map((x) => x.peakRssKb - x.baselineRssKb)) / 1024;
    console.log(`${mode.padEnd(10)}  ${wall.toFixed(1).padStart(7)} s   peak RSS ${peak.toFixed(0).padStart(6)} MiB (+${growth.toFixed(0)} MiB over start)`);
    return { wall, peak };
  };
  const a = line('one-pass');
  const b = line('sequential');
  console.log(`\nsequential / one-pass: time ${(b.wall / a.wall).toFixed(2)}×, peak RSS ${(b.peak / a.peak).toFixed(2)}×`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
