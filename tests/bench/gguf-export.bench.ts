/**
 * Benchmark: GGUF export of a float32 Llama-shaped ONNX model (hidden 2048, MLP 5632, vocabulary 32,000,
 * untied; random weights in external data, helpers/llama-model.ts) as Q4_1 and as F16, against cp of the
 * same bytes: cp of the model's weights (what the export reads) and cp of the written .gguf (what it
 * writes), each followed by sync inside its timing (the export ends with fsync). Both read from the page
 * cache (cp goes first). Peak RSS of the export from its own child process (VmHWM).
 *
 *   npm run bench gguf-export   (env: BENCH_LAYERS=4, BENCH_DIR=<tmp>)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateLlamaModel } from './helpers/llama-model.ts';

const LAYERS = Number(process.env.BENCH_LAYERS ?? 4);
const root = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'whittle-bench-gguf-'));
const MiB = 2 ** 20;
const TOKENIZER = path.resolve('..', 'shared', 'fixtures', 'stories260K', 'tokenizer.json');

const CHILD = `
import { readFileSync } from 'node:fs';
import { exportGguf } from ${JSON.stringify(path.resolve('main/engine/interop/gguf-export.ts'))};
const kb = (f) => Number(new RegExp('^' + f + ':\\\\s+(\\\\d+) kB', 'm').exec(readFileSync('/proc/self/status', 'utf8'))[1]);
const [model, out, type, tokenizerPath] = process.argv.slice(1);
const r = await exportGguf(model, out, { type, tokenizerPath });
console.log(JSON.stringify({ peakKb: kb('VmHWM'), seconds: r.seconds, bytes: r.bytes }));
`;

function timed(cmd: string, args: string[]): { seconds: number; peakKb: number } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { encoding: 'utf8' }).stderr;
  execFileSync('sync');
  return { seconds: (performance.now() - t0) / 1000, peakKb: Number(r.trim().split('\n').pop()) };
}

try {
  const t0 = performance.now();
  const g = await generateLlamaModel(root, LAYERS, { heads: 16 });
  // The weights are the model's external data files beside it.
  const raw = readdirSync(path.dirname(g.model)).filter((f) => f !== path.basename(g.model)).map((f) => path.join(path.dirname(g.model), f));
  const inBytes = raw.reduce((a, f) => a + statSync(f).size, 0);
  console.log(`${(g.params / 1e9).toFixed(3)} B parameters (${LAYERS} layers), float32 ${(inBytes / MiB).toFixed(0)} MiB; generated in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${os.cpus().length} CPUs`);
  execFileSync('sync');
  const copyDir = path.join(root, 'copy');
  mkdirSync(copyDir);
  const cp = timed('cp', [...raw, copyDir]);
  rmSync(copyDir, { recursive: true });
  console.log(`cp of the weights:   ${cp.seconds.toFixed(1)} s, ${(inBytes / MiB / cp.seconds).toFixed(0)} MiB/s; peak RSS ${(cp.peakKb / 1024).toFixed(0)} MiB`);
  for (const type of ['q4_1', 'f16']) {
    const out = path.join(root, `model-${type}.gguf`);
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, g.model, out, type, TOKENIZER], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (child.status !== 0) throw new Error(`export ${type} failed: ${child.stderr}`);
    const r = JSON.parse(child.stdout.trim().split('\n').pop()!) as { peakKb: number; seconds: number; bytes: number };
    console.log(`export ${type}: ${r.seconds.toFixed(1)} s (${(r.seconds / cp.seconds).toFixed(1)} × cp of the weights), ${(inBytes / MiB / r.seconds).toFixed(0)} MiB/s read, writes ${(r.bytes / MiB).toFixed(0)} MiB; peak RSS ${(r.peakKb / 1024).toFixed(0)} MiB`);
    const cpOut = timed('cp', [out, path.join(root, 'copy.gguf')]);
    rmSync(path.join(root, 'copy.gguf'));
    console.log(`  cp of its ${(r.bytes / MiB).toFixed(0)} MiB output: ${cpOut.seconds.toFixed(1)} s (export = ${(r.seconds / cpOut.seconds).toFixed(1)} × this)`);
    rmSync(out);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
