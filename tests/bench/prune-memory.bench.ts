/**
 * Benchmark: peak memory of sequential SparseGPT (50 %) on a decoder of real Llama shapes (random weights,
 * helpers/llama-model.ts; 8 layers ≈ 0.5 B parameters), against the model's size. The pruning runs in a
 * child process that reports its VmHWM; sequential calibration holds one level's Hessians and the
 * boundary activations, the swept weights wait in a spool that spills to a scratch file.
 *
 *   npm run bench prune-memory   (env: BENCH_LAYERS=8, BENCH_SAMPLES=16, BENCH_LENGTH=128, BENCH_DIR=<tmp>)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fixture } from '../helpers/fixtures.ts';
import { generateLlamaModel } from './helpers/llama-model.ts';

const LAYERS = Number(process.env.BENCH_LAYERS ?? 8);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 16);
const LENGTH = Number(process.env.BENCH_LENGTH ?? 128);
const root = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'whittle-bench-prune-'));
const MiB = 2 ** 20;

const CHILD = `
import { readFileSync } from 'node:fs';
import { quietContext } from ${JSON.stringify(path.resolve('main/engine/job-context.ts'))};
import { pruneUnstructured } from ${JSON.stringify(path.resolve('main/engine/prune/unstructured.ts'))};
const kb = (f) => Number(new RegExp('^' + f + ':\\\\s+(\\\\d+) kB', 'm').exec(readFileSync('/proc/self/status', 'utf8'))[1]);
const [model, tokenizer, text, samples, length, out, work] = process.argv.slice(1);
const start = kb('VmRSS');
const t0 = performance.now();
const r = await pruneUnstructured(model, { type: 'prune', method: 'sparsegpt', sparsity: 0.5, calibration: { text, samples: Number(samples), length: Number(length), seed: 0 } }, out, quietContext(work), { tokenizerPath: tokenizer });
console.log(JSON.stringify({ startKb: start, peakKb: kb('VmHWM'), seconds: (performance.now() - t0) / 1000, sparsity: r.achievedSparsity }));
`;

try {
  const src = path.join(root, 'src');
  mkdirSync(src);
  const gen = await generateLlamaModel(src, LAYERS);
  const modelBytes = statSync(gen.model).size + statSync(`${gen.model}.data`).size;
  const work = path.join(root, 'work');
  mkdirSync(work);
  const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', CHILD, gen.model, fixture('stories260K', 'tokenizer.json'),
    fixture('text', 'tinystories_val_head.txt'), String(SAMPLES), String(LENGTH), path.join(root, 'out'), work], { encoding: 'utf8', maxBuffer: 1 << 20 });
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as { startKb: number; peakKb: number; seconds: number; sparsity: number };
  console.log(`${(gen.params / 1e9).toFixed(3)} B parameters, ${(modelBytes / MiB).toFixed(0)} MiB; SparseGPT 50 %, sequential, ${SAMPLES} × ${LENGTH} tokens, ${os.cpus().length} CPUs`);
  console.log(`time ${r.seconds.toFixed(1)} s; peak RSS ${(r.peakKb / 1024).toFixed(0)} MiB (${((r.peakKb * 1024) / modelBytes).toFixed(2)} × the model); sparsity reached ${r.sparsity.toFixed(4)}`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
