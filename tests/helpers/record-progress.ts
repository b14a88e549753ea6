/**
 * Records the progress events of real jobs (the real job service, engine process and history) for the
 * ETA tests: each recording is the recipe, the facts the plan is made from, every `job.progress` the
 * service emitted (phase, done, total, ms since the job was submitted) and the job's duration.
 *
 *   node scripts/with-node.mjs tests/helpers/record-progress.ts tests/unit/jobs/recorded
 */
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { JobProgress, RecipeInput } from '../../preload/contract.ts';
import { openHistory } from '../../main/history/index.ts';
import { ChildProcessHost, JobService } from '../../main/jobs/index.ts';
import { appRoot } from '../../main/paths.ts';
import { STORIES, tempDir } from './fixtures.ts';

const out = path.resolve(process.argv[2] ?? '.');
const perplexity = { text: STORIES.text, window: 128, maxSamples: 200 };
const jobs: Record<string, RecipeInput> = {
  'rtn-compare': {
    model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
    steps: [{ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 }],
    evaluation: { perplexity, speed: { repeats: 5 }, footprint: true, cache: false },
  },
  'gptq-compare': {
    model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
    steps: [{ type: 'quantize', method: 'gptq', bits: 4, blockSize: 32, calibration: { text: STORIES.text, samples: 32, length: 128 } }],
    evaluation: { perplexity, speed: { repeats: 5 }, footprint: true, cache: false },
  },
  'int8-static-compare': {
    model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
    steps: [{ type: 'quantize', method: 'int8-static', calibration: { text: STORIES.text, samples: 32, length: 128 } }],
    evaluation: { perplexity: { ...perplexity, maxSamples: 100 }, speed: { repeats: 3 }, footprint: true, cache: false },
  },
  'evaluate-only': {
    model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
    evaluation: { perplexity: { ...perplexity, maxSamples: 400 }, speed: { repeats: 5 }, footprint: true, cache: false },
  },
};

const scratch = tempDir('whittle-record-');
const history = openHistory({ home: scratch.dir });
let started = 0;
let events: { phase: string; done: number; total: number; t: number }[] = [];
const service = new JobService({
  history, host: new ChildProcessHost(path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts')), outputRoot: path.join(scratch.dir, 'out'),
  progressIntervalMs: 20,
  emit: (channel, payload) => {
    if (channel !== 'job.progress') return;
    const p = payload as JobProgress;
    events.push({ phase: p.phase, done: p.done, total: p.total, t: Math.round(performance.now() - started) });
  },
});
try {
  for (const [name, recipe] of Object.entries(jobs)) {
    events = [];
    started = performance.now();
    const { jobId } = await service.start(recipe, name);
    const finished = await service.whenFinished(jobId);
    const durationMs = Math.round(performance.now() - started);
    if (finished.status !== 'done') throw new Error(`${name}: ${JSON.stringify(finished.error)}`);
    const facts = { modelBytes: statSync(STORIES.model).size, textBytes: statSync(STORIES.text).size };
    const relative = JSON.parse(JSON.stringify(recipe).replaceAll(path.dirname(path.dirname(STORIES.model)), '<fixtures>')) as unknown;
    writeFileSync(path.join(out, `${name}.json`), `${JSON.stringify({ recipe: relative, facts, durationMs, events }, null, 0).replaceAll('},{', '},\n{')}\n`);
    console.log(`${name}: ${durationMs} ms, ${events.length} events`);
  }
} finally {
  await service.shutdown();
  history.close();
  scratch.cleanup();
}
