/**
 * The train step through the real job service and engine process on stories260K (B = 2, T = 32): live
 * `job.points` events (batches, a point per step) in sequence with the rest of the job's events, the checkpoint folder
 * recorded when the job starts, the curve in the step details, the result compared with the original,
 * the checkpoints removed once the output is committed; and a run cancelled part-way, resumed from its
 * checkpoint as a new job, continuing the same curve to the end.
 * Training text: the paragraphs after the first 400 of the TinyStories head; held-out: the first 400.
 */
import { existsSync } from 'node:fs';

import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeInput } from '../../preload/contract.ts';
import type { SeriesPoint } from '../../preload/series.ts';

import { hasCheckpoint } from '../../main/engine/train/checkpoint-home.ts';

import { CHECKPOINTS_ARTEFACT, parseStepDetails } from '../../preload/methods.ts';
import { jobFolderName } from '../../main/jobs/output-folder.ts';
import { planResume } from '../../preload/resume.ts';
import { STORIES } from '../helpers/fixtures.ts';
import { closeTrainingJobs, openTrainingJobs, type JobEvent, type TrainingJobs } from '../helpers/training-jobs.ts';

type Event = JobEvent;

let scratch: TrainingJobs['scratch'];
let history: TrainingJobs['history'];
let jobs: TrainingJobs['jobs'];
let events: Event[];
let trainText: string;
let heldOut: string;

beforeAll(async () => {
  ({ scratch, history, jobs, events, trainText, heldOut } = await openTrainingJobs('whittle-train-job-'));
});

afterAll(() => closeTrainingJobs({ jobs, history, scratch }));

function recipe(steps: number, extra: Record<string, unknown> = {}): RecipeInput {
  return {
    model: { path: STORIES.model },
    tokenizer: { path: STORIES.tokenizer },
    steps: [{ type: 'train', text: trainText, steps, batch: 2, length: 32, lr: 1e-3, warmup: 1, evalText: heldOut, evalEvery: 2, ...extra }],
    evaluation: { perplexity: { text: heldOut, window: 64, maxSamples: 20 }, footprint: true },
  } as RecipeInput;
}

const ofJob = (jobId: string): Event[] => events.filter((e) => e.channel !== 'history.changed' && e.payload.jobId === jobId);
const pointsOf = (jobId: string): SeriesPoint[] => ofJob(jobId).flatMap((e) => (e.channel === 'job.points' ? e.payload.points : []));

describe('the train step as a job', () => {
  it('streams a point per step, records its checkpoints, reports the curve, compares with the original and cleans up', async () => {
    const { jobId, experimentId } = await jobs.start(recipe(4, { checkpointEvery: 2 }));
    // The checkpoint folder is known as soon as the job exists.
    const recorded = history.get(experimentId).artefacts.filter((a) => a.kind === CHECKPOINTS_ARTEFACT);
    expect(recorded).toHaveLength(1);
    expect(recorded[0].path).toBe(path.join(scratch.dir, 'outputs', jobFolderName(experimentId, history.get(experimentId).name), 'checkpoints', 'step-1'));

    const f = await jobs.whenFinished(jobId);
    expect(f.error).toBeNull();
    expect(f.status).toBe('done');
    const list = ofJob(jobId);
    list.forEach((e, i) => expect((e.payload as { seq: number }).seq, e.channel).toBe(i + 1));

    const points = pointsOf(jobId);
    expect(points.map((p) => p.step)).toEqual([1, 2, 3, 4]);
    for (const p of points) {
      expect(p.series).toBe('train');
      expect(p.values.totalSteps).toBe(4);
      expect(Number.isFinite(p.values.loss) && p.values.loss > 0).toBe(true);
      expect(p.values.tokensPerSecond).toBeGreaterThan(0);
    }
    expect(points.filter((p) => p.values.evalLoss !== undefined).map((p) => p.step)).toEqual([2, 4]);
    // Warmup of 1 step, then cosine decay from the peak: the rate falls after step 2.
    expect(points[1].values.lr).toBeGreaterThan(points[3].values.lr);

    const d = history.get(experimentId);
    expect(d.kind).toBe('train');
    const train = parseStepDetails(d.details).find((s) => s.key === 'train');
    expect(train?.key).toBe('train');
    if (train?.key !== 'train') return;
    expect(train.curve.map((p) => p.step)).toEqual([1, 2, 3, 4]);
    expect(train.curve.map((p) => p.loss)).toEqual(points.map((p) => p.values.loss));
    expect(train.tokens).toBe(4 * 2 * 32);
    expect(train.evalLossBefore).toBeGreaterThan(0);
    expect(train.config.warmupSteps).toBe(1);
    expect(train.checkpointDir).toBe(recorded[0].path);
    // The result is compared with the original on the held-out text, and it is another model.
    const ppl = (subject: string) => d.metrics.find((m) => m.name === 'perplexity' && m.subject === subject)?.value;
    expect(ppl('original')).toBeGreaterThan(1);
    expect(ppl('result')).toBeGreaterThan(1);
    expect(ppl('result')).not.toBe(ppl('original'));
    const model = d.artefacts.find((a) => a.kind === 'model')!.path;
    expect(existsSync(model)).toBe(true);
    expect(existsSync(path.join(path.dirname(model), 'tokenizer.json'))).toBe(true);
    // Once committed, the checkpoints are gone.
    expect(existsSync(recorded[0].path)).toBe(false);
  });

  it('a cancelled run resumes from its checkpoint as a new job and continues the same curve', async () => {
    const { jobId, experimentId } = await jobs.start(recipe(10, { checkpointEvery: 2, evalEvery: 20 }));
    // Cancel once a checkpoint exists and a step past it has run.
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (pointsOf(jobId).some((p) => p.step >= 3)) {
          clearInterval(timer);
          jobs.cancel(jobId);
          resolve();
        }
      }, 20);
    });
    const cancelled = await jobs.whenFinished(jobId);
    expect(cancelled.status).toBe('cancelled');
    const before = pointsOf(jobId);
    const stopped = history.get(experimentId);
    expect(stopped.status).toBe('cancelled');
    const plan = planResume(stopped);
    expect(plan.ok).toBe(true);
    if (!plan.ok) return;
    expect(await hasCheckpoint(plan.checkpoints[0])).toBe(true);

    const resumed = await jobs.start(plan.recipe);
    const f = await jobs.whenFinished(resumed.jobId);
    expect(f.error).toBeNull();
    const points = pointsOf(resumed.jobId);
    // The curve so far is replayed first, then the run continues from its checkpoint to step 10.
    expect(points.slice(0, before.length).map((p) => [p.step, p.values.loss])).toEqual(before.map((p) => [p.step, p.values.loss]));
    const continued = points.slice(before.length);
    expect(continued[0].step).toBeLessThanOrEqual(before.at(-1)!.step + 1);
    expect(continued.at(-1)!.step).toBe(10);

    const train = parseStepDetails(history.get(resumed.experimentId).details).find((s) => s.key === 'train');
    expect(train?.key).toBe('train');
    if (train?.key !== 'train') return;
    expect(train.curve.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(train.resumedFromStep).toBe(continued[0].step - 1);
    // A checkpoint every 2 steps and one at the cancel: at least step 2.
    expect(train.resumedFromStep).toBeGreaterThanOrEqual(2);
    expect(train.resumedFromExperiment).toBe(experimentId);
    // The steps before the checkpoint are the cancelled run's own.
    for (const p of train.curve.filter((q) => q.step <= train.resumedFromStep!)) {
      expect(p.loss).toBe(before.find((q) => q.step === p.step)!.values.loss);
    }
    expect(existsSync(plan.checkpoints[0])).toBe(false);
  });
});
