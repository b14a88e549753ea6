/**
 * Benchmark: weight-only RTN on a ~0.5 B-parameter decoder of real Llama shapes (random weights).
 *
 *   $N tests/bench/quantize-rtn.bench.ts            (env: BENCH_LAYERS=8, BENCH_DIR=<tmp>, BENCH_RUNS=10)
 *
 * The model: input_ids → Gather(embed [32000, 2048]) → L × { RMSNorm → q/k/v [2048, 2048] →
 * single-position attention (softmax over one score = 1, so it is exactly v, but q and k stay live) →
 * o [2048, 2048] → residual → RMSNorm → SwiGLU gate/up [2048, 5632], down [5632, 2048] → residual } →
 * RMSNorm → lm_head [2048, 32000] → logits. External data, fp32.
 *
 * Measures, in one run:
 *   (a) int4 RTN wall time vs `cp` of the same files          goal ≤ 1.5×
 *   (b) peak RSS of the quantization (child process, VmHWM)    goal ≤ 2 × largest tensor + 300 MB
 *   (c) single-token decode tokens/s, fp32 vs int4 vs int8     goal int4 ≥ 2× fp32
 * Deletes its folder at the end.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { generateLlamaModel, LLAMA_SHAPES } from './helpers/llama-model.ts';

const { hidden: HIDDEN, intermediate: INTER, vocab: VOCAB } = LLAMA_SHAPES;
const LAYERS = Number(process.env.BENCH_LAYERS ?? 8);
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const root = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'whittle-bench-rtn-'));
const MiB = 2 ** 20;

const generateModel = (dir: string): ReturnType<typeof generateLlamaModel> => generateLlamaModel(dir, LAYERS);

function time<T>(f: () => T): { ms: number; value: T } {
  const t0 = performance.now();
  const value = f();
  return { ms: performance.now() - t0, value };
}

function quantizeInChild(model: string, out: string, step: object): { wallMs: number; childMs: number; peakRssKb: number; baselineRssKb: number; bytes: number } {
  const child = path.resolve(import.meta.dirname, '../unit/quantize/peak-rss-child.ts');
  const r = time(() => execFileSync(process.execPath, [child, model, out, JSON.stringify(step)], { encoding: 'utf8' }));
  const parsed = JSON.parse(r.value.trim().split('\n').pop()!);
  return { ...parsed, childMs: r.ms };
}

async function tokensPerSecond(model: string): Promise<number> {
  const s = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all' });
  try {
    const feeds = { input_ids: new ort.Tensor('int64', BigInt64Array.of(42n), [1, 1]) };
    for (let i = 0; i < 2; i++) await s.run(feeds);
    const t0 = performance.now();
    for (let i = 0; i < RUNS; i++) await s.run(feeds);
    return RUNS / ((performance.now() - t0) / 1000);
  } finally {
    await s.release();
  }
}

const folderBytes = (files: string[]): number => files.reduce((a, f) => a + statSync(f).size, 0);

try {
  console.log(`generating a ${LAYERS}-layer decoder (hidden ${HIDDEN}, intermediate ${INTER}, vocab ${VOCAB}) in ${root} …`);
  const src = path.join(root, 'src');
  mkdirSync(src);
  const gen = await generateModel(src);
  const srcFiles = [gen.model, `${gen.model}.data`];
  const srcBytes = folderBytes(srcFiles);
  console.log(`  ${(gen.params / 1e9).toFixed(3)} B parameters, ${(srcBytes / MiB).toFixed(0)} MiB, largest tensor ${(gen.largest / MiB).toFixed(0)} MiB`);

  // (a) cp of the same files. The source is in the page cache for both; dirty pages are flushed before
  // each timed run so one run's write-back does not land in the next one's time.
  const flush = (): void => { execFileSync('sync'); };
  const cpDir = path.join(root, 'cp');
  mkdirSync(cpDir);
  flush();
  const cp = time(() => execFileSync('cp', [...srcFiles, cpDir]));
  const cpSync = time(() => execFileSync('sync', [path.join(cpDir, 'model.onnx.data')]));
  rmSync(cpDir, { recursive: true });

  flush();
  const q4 = quantizeInChild(gen.model, path.join(root, 'int4'), { bits: 4, blockSize: 32, accuracyLevel: 4 });
  flush();
  const q8 = quantizeInChild(gen.model, path.join(root, 'int8'), { bits: 8, blockSize: 32, accuracyLevel: 4 });

  // (c) decode speed
  const tpsF32 = await tokensPerSecond(gen.model);
  const tps4 = await tokensPerSecond(path.join(root, 'int4', 'model.onnx'));
  const tps8 = await tokensPerSecond(path.join(root, 'int8', 'model.onnx'));

  const peak4 = (q4.peakRssKb - q4.baselineRssKb) * 1024;
  const peak8 = (q8.peakRssKb - q8.baselineRssKb) * 1024;
  const budget = 2 * gen.largest + 300e6;
  const rows: [string, string, string][] = [
    ['model', `${(gen.params / 1e9).toFixed(3)} B params, ${(srcBytes / MiB).toFixed(0)} MiB fp32`, ''],
    ['cp (page cache → disk, no fsync)', `${cp.ms.toFixed(0)} ms`, ''],
    ['cp + fsync of the data file', `${(cp.ms + cpSync.ms).toFixed(0)} ms`, ''],
    ['RTN int4 (quantize + write + fsync)', `${q4.wallMs.toFixed(0)} ms (child incl. start ${q4.childMs.toFixed(0)} ms)`, `${(q4.wallMs / cp.ms).toFixed(2)}× cp, ${(q4.wallMs / (cp.ms + cpSync.ms)).toFixed(2)}× cp+fsync (goal ≤ 1.5×)`],
    ['RTN int8', `${q8.wallMs.toFixed(0)} ms`, `${(q8.wallMs / cp.ms).toFixed(2)}× cp`],
    ['int4 output', `${(q4.bytes / MiB).toFixed(0)} MiB`, `${(srcBytes / q4.bytes).toFixed(2)}× smaller`],
    ['int8 output', `${(q8.bytes / MiB).toFixed(0)} MiB`, `${(srcBytes / q8.bytes).toFixed(2)}× smaller`],
    ['peak RSS growth int4', `${(peak4 / MiB).toFixed(0)} MiB`, `largest tensor ${(gen.largest / MiB).toFixed(0)} MiB; goal ≤ ${(budget / MiB).toFixed(0)} MiB: ${peak4 <= budget ? 'met' : 'MISSED'}`],
    ['peak RSS growth int8', `${(peak8 / MiB).toFixed(0)} MiB`, `${peak8 <= budget ? 'met' : 'MISSED'}`],
    ['decode fp32', `${tpsF32.toFixed(2)} tok/s`, ''],
    ['decode int4 (accuracy_level 4)', `${tps4.toFixed(2)} tok/s`, `${(tps4 / tpsF32).toFixed(2)}× fp32 (goal ≥ 2×)`],
    ['decode int8 (accuracy_level 4)', `${tps8.toFixed(2)} tok/s`, `${(tps8 / tpsF32).toFixed(2)}× fp32`],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length)), w1 = Math.max(...rows.map((r) => r[1].length));
  console.log(`\n${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, onnxruntime-node ${ort.env.versions.common}, ${RUNS} timed single-token runs\n`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
