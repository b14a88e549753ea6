/**
 * Cancelling a compression job through the job system (real engine process, real history): the
 * experiment ends 'cancelled', no result is stored, and nothing in the output location looks finished.
 */
import { existsSync, readdirSync } from 'node:fs';
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
