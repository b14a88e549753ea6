/**
 * Cancelling a compression job through the job system (real engine process, real history): the
 * experiment ends 'cancelled', no result is stored, and nothing in the output location looks finished.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { JobProgress, RecipeInput } from '../../preload/contract.ts';
import { openHistory, type History } from '../../main/history/index.ts';
import { ChildProcessHost, JobService } from '../../main/jobs/index.ts';
import { appRoot } from '../../main/paths.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');

let scratch: ReturnType<typeof tempDir>;
let history: History;
let jobs: JobService;
const progress: JobProgress[] = [];

beforeEach(() => {
  scratch = tempDir('whittle-cancel-');
  history = openHistory({ home: scratch.dir });
  progress.length = 0;
  jobs = new JobService({
    history,
    host: new ChildProcessHost(WORKER),
    outputRoot: path.join(scratch.dir, 'experiments'),
    emit: (channel, payload) => { if (channel === 'job.progress') progress.push(payload as JobProgress); },
    progressIntervalMs: 0,
  });
});

afterEach(async () => {
  await jobs.shutdown();
  history.close();
  scratch.cleanup();
});

it('a GPTQ job cancelled while it calibrates ends cancelled and leaves no output folder', async () => {
  const outDir = path.join(scratch.dir, 'gptq-out');
  const recipe: RecipeInput = {
    model: { path: STORIES.model },
    tokenizer: { path: STORIES.tokenizer },
    steps: [{ type: 'quantize', method: 'gptq', bits: 4, blockSize: 32, calibration: { text: STORIES.text, samples: 256, length: 256 } }],
    evaluation: { footprint: true },
    output: { dir: outDir },
  };
  const { jobId, experimentId } = await jobs.start(recipe, 'cancel me');
  const cancelled = new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (progress.some((p) => p.jobId === jobId && p.phase === 'calibrate' && p.done > 0)) {
        clearInterval(timer);
        expect(jobs.cancel(jobId)).toBe(true);
        resolve();
      }
    }, 5);
  });
  await cancelled;
  const finished = await jobs.whenFinished(jobId);

  expect(finished.status).toBe('cancelled');
  const detail = history.get(experimentId);
  expect(detail.status).toBe('cancelled');
  expect(detail.metrics).toEqual([]);
  // Calibration had started but no step reached the writer: nothing at the output path or beside it.
  expect(progress.some((p) => p.jobId === jobId && p.phase === 'quantize' && p.done > 0)).toBe(false);
  expect(existsSync(outDir)).toBe(false);
  expect(readdirSync(scratch.dir).filter((f) => f.startsWith('gptq-out'))).toEqual([]);
});

it('kill -9 of the engine while it evaluates the written model leaves no finished-looking folder', async () => {
  const outDir = path.join(scratch.dir, 'rtn-out');
  const recipe: RecipeInput = {
    model: { path: STORIES.model },
    tokenizer: { path: STORIES.tokenizer },
    steps: [{ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 }],
    evaluation: { perplexity: { text: STORIES.text, window: 64, maxSamples: 64 }, footprint: true },
    output: { dir: outDir },
  };
  const { jobId, experimentId } = await jobs.start(recipe, 'kill me');
  let partialSeen: string[] = [];
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (progress.some((p) => p.jobId === jobId && p.phase.startsWith('evaluate'))) {
        clearInterval(timer);
        partialSeen = readdirSync(scratch.dir).filter((f) => f.startsWith('rtn-out'));
        process.kill(jobs.enginePid(jobId)!, 'SIGKILL');
        resolve();
      }
    }, 5);
  });
  const finished = await jobs.whenFinished(jobId);

  expect(finished.status).toBe('failed');
  expect(history.get(experimentId).metrics).toEqual([]);
  // The model was written and being evaluated, under its partial name only.
  expect(partialSeen).toHaveLength(1);
  expect(partialSeen[0]).toMatch(/^rtn-out\.partial-\d+-[0-9a-f]+$/);
  expect(readdirSync(scratch.dir).filter((f) => f.startsWith('rtn-out'))).toEqual([]);
  // The job folder it had (empty) is gone too.
  expect(existsSync(path.join(scratch.dir, 'experiments')) ? readdirSync(path.join(scratch.dir, 'experiments')) : []).toEqual([]);
});

it('the next start removes partial folders whose engine is gone and the job folders they leave empty', async () => {
  await jobs.shutdown();
  const root = path.join(scratch.dir, 'experiments');
  const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
  const interrupted = path.join(root, '7-interrupted');
  const kept = path.join(root, '8-done');
  const partial = path.join(interrupted, `output.partial-${gone}-0badc0de`);
  mkdirSync(partial, { recursive: true });
  writeFileSync(path.join(partial, 'model.onnx'), 'half written');
  mkdirSync(path.join(kept, 'output'), { recursive: true });
  const live = path.join(kept, `output2.partial-${process.pid}-00c0ffee`);
  mkdirSync(live);

  jobs = new JobService({ history, host: new ChildProcessHost(WORKER), outputRoot: root, emit: () => {} });
  expect(existsSync(interrupted)).toBe(false);
  expect(readdirSync(kept).sort()).toEqual(['output', path.basename(live)].sort());
});
