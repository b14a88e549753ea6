/**
 * Main-process event-loop lag while an evaluation runs. The app (history, job service, router) runs in
 * this process as it does in Electron's main process or serve mode; the evaluation runs in the engine
 * process. Baselines in the same run: the idle loop, and the same evaluation run in-process (what the
 * UI would suffer without an engine process).
 *   $N tests/bench/event-loop-lag.bench.ts
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createWhittleApp } from '../../main/app.ts';
import { createMemoryClient } from '../../main/api/memory-transport.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { runRecipe } from '../../main/engine/pipeline/runner.ts';
import { appRoot } from '../../main/paths.ts';
import { Recipe } from '../../preload/recipe.ts';

const sample = path.join(appRoot(), 'main', 'resources', 'sample');
const recipe = {
  name: 'event-loop bench',
  model: { path: path.join(sample, 'stories260K-kv.onnx') },
  tokenizer: { path: path.join(sample, 'tokenizer.json') },
  evaluation: {
    perplexity: { text: path.join(sample, 'tinystories-eval.txt'), protocol: 'documents', window: 256, maxSamples: 400 },
    speed: { promptTokens: 64, decodeTokens: 64 },
  },
};

interface Lag { p50: number; p99: number; max: number; seconds: number }

async function measure(work: () => Promise<void>): Promise<Lag> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  // A UI-like load on the loop: a timer every 10 ms, as a renderer's IPC traffic would produce.
  const tick = setInterval(() => {}, 10);
  const started = performance.now();
  h.enable();
  await work();
  h.disable();
  clearInterval(tick);
  const ms = (ns: number) => ns / 1e6;
  return { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), seconds: (performance.now() - started) / 1000 };
}

const home = mkdtempSync(path.join(os.tmpdir(), 'whittle-lag-'));
const app = createWhittleApp({ home, transport: 'memory', workerPath: path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts') });
const client = createMemoryClient(app.router, app.events);
try {
  const idle = await measure(() => new Promise((r) => setTimeout(r, 3000)));

  let progressEvents = 0;
  const off = client.on('job.progress', () => { progressEvents++; });
  const engine = await measure(async () => {
    const { jobId } = await client.call('jobs.start', { recipe });
    const finished = await app.jobs.whenFinished(jobId);
    if (finished.status !== 'done') throw new Error(`job ended ${finished.status}: ${finished.error?.message}`);
  });
  off();

  const inProcess = await measure(async () => {
    await runRecipe(Recipe.parse(recipe), quietContext(home));
  });

  const row = (name: string, l: Lag) => `${name.padEnd(34)} ${l.p50.toFixed(2).padStart(8)} ${l.p99.toFixed(2).padStart(8)} ${l.max.toFixed(1).padStart(8)} ${l.seconds.toFixed(1).padStart(7)}`;
  console.log(`${'main-process event-loop delay (ms)'.padEnd(34)} ${'p50'.padStart(8)} ${'p99'.padStart(8)} ${'max'.padStart(8)} ${'wall s'.padStart(7)}`);
  console.log(row('idle', idle));
  console.log(row('evaluation in the engine process', engine));
  console.log(row('same evaluation in-process', inProcess));
  console.log(`progress events received: ${progressEvents}`);
  console.log(`p99 ratio engine-process / idle: ${(engine.p99 / idle.p99).toFixed(2)}; in-process / engine-process: ${(inProcess.p99 / engine.p99).toFixed(1)}`);
} finally {
  client.close();
  await app.close();
  rmSync(home, { recursive: true, force: true });
}
