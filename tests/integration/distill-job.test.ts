/**
 * The distill step through the real job service and engine process on stories260K: a student of teacher
 * blocks [0, 2, 4] (B = 2, T = 32, 4 steps) streams a point per step with the objective's parts, reports
 * the teacher, the student and the curve in its details, is compared with the teacher, and cleans up its
 * checkpoints; and a recovery after 50 % magnitude pruning (a distill step whose student is the step's
 * input, the original as teacher) keeps the zeros, with the evaluation text inside its training text
 * listed as a warning; and a cancelled distillation resumed from its checkpoint continues the same curve.
 * Training text: the paragraphs after the first 400 of the TinyStories head; held-out: the first 400.
 */
import { existsSync } from 'node:fs';

import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeInput } from '../../preload/contract.ts';
import type { SeriesPoint } from '../../preload/series.ts';

import { readModel } from '../../main/engine/onnx/reader.ts';
import { WeightReader } from '../../main/engine/rewrite/weight-reader.ts';

import { CHECKPOINTS_ARTEFACT, parseStepDetails } from '../../preload/methods.ts';
import { planResume } from '../../preload/resume.ts';
import { recoverStep } from '../../preload/recover.ts';
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
  ({ scratch, history, jobs, events, trainText, heldOut } = await openTrainingJobs('whittle-distill-job-'));
});

afterAll(() => closeTrainingJobs({ jobs, history, scratch }));

const ofJob = (jobId: string): Event[] => events.filter((e) => e.channel !== 'history.changed' && e.payload.jobId === jobId);
const pointsOf = (jobId: string): SeriesPoint[] => ofJob(jobId).flatMap((e) => (e.channel === 'job.points' ? e.payload.points : []));
const metric = (d: { metrics: { name: string; subject: string; value: number }[] }, name: string, subject: string): number | undefined =>
  d.metrics.find((m) => m.name === name && m.subject === subject)?.value;

/** Float weights that are exactly zero, over the MatMul weights of the blocks. */
async function zerosOf(modelPath: string): Promise<number> {
  const m = await readModel(modelPath);
  const reader = new WeightReader();
  let zeros = 0;
  try {
    for (const t of m.proto.graph?.initializer ?? []) {
      if (t.dims.length !== 2 || t.dataType !== 1 || !/layers/.test(t.name ?? '')) continue;
      const data = await reader.read(t);
      const f = new Float32Array(data.slice().buffer);
      for (const x of f) if (x === 0) zeros++;
    }
  } finally {
    await reader.close();
  }
  return zeros;
}

describe('the distill step as a job', () => {
  it('a student of blocks 0, 2, 4 streams its parts, reports teacher and student, is compared with the teacher, and cleans up', async () => {
    const recipe = {
      model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
      steps: [{
        type: 'distill', student: { blocks: [0, 2, 4] }, data: { text: trainText, evalText: heldOut, batch: 2, length: 32 },
        schedule: { steps: 4, lr: 1e-3, warmup: 1, evalEvery: 2, checkpointEvery: 2 },
      }],
      evaluation: { perplexity: { text: heldOut, window: 64, maxSamples: 20 }, footprint: true },
    } as RecipeInput;
    const { jobId, experimentId } = await jobs.start(recipe);
    const recorded = history.get(experimentId).artefacts.filter((a) => a.kind === CHECKPOINTS_ARTEFACT);
    expect(recorded).toHaveLength(1);

    const f = await jobs.whenFinished(jobId);
    expect(f.error).toBeNull();
    expect(f.status).toBe('done');

    const points = pointsOf(jobId);
    expect(points.map((p) => p.step)).toEqual([1, 2, 3, 4]);
    for (const p of points) {
      expect(p.series).toBe('train');
      expect(Number.isFinite(p.values.loss) && p.values.loss > 0).toBe(true);
      // The objective's parts travel with every point: the KL term and the cross-entropy.
      expect(Object.keys(p.values).filter((k) => k.startsWith('part.')).sort()).toEqual(expect.arrayContaining(['part.ce', 'part.kl']));
      expect(p.values['part.kl']).toBeGreaterThanOrEqual(0);
    }

    const d = history.get(experimentId);
    expect(d.kind).toBe('distill');
    const distill = parseStepDetails(d.details).find((s) => s.key === 'distill');
    expect(distill?.key).toBe('distill');
    if (distill?.key !== 'distill') return;
    expect(distill.teacher).toMatchObject({ path: STORIES.model, blocks: 5 });
    expect(distill.student).toMatchObject({ blocks: 3, keptBlocks: [0, 2, 4] });
    expect(distill.student.parameters).toBeLessThan(distill.teacher.parameters);
    expect(distill.loss).toEqual({ temperature: 2, alpha: 0.5, reverse: false, hidden: 0 });
    expect(distill.signal.kind).toBe('logits');
    expect(distill.curve.map((p) => p.step)).toEqual([1, 2, 3, 4]);
    expect(distill.curve.map((p) => p.loss)).toEqual(points.map((p) => p.values.loss));
    expect(distill.curve[0].parts?.kl).toBe(points[0].values['part.kl']);
    expect(distill.tokens).toBe(4 * 2 * 32);
    expect(distill.warnings).toEqual([]);
    expect(distill.checkpointDir).toBe(recorded[0].path);

    // Teacher (the recipe's model) beside the student on the held-out text; the student is smaller.
    expect(metric(d, 'perplexity', 'original')).toBeGreaterThan(1);
    expect(metric(d, 'perplexity', 'result')).toBeGreaterThan(metric(d, 'perplexity', 'original')!);
    const model = d.artefacts.find((a) => a.kind === 'model')!;
    expect(existsSync(model.path)).toBe(true);
    expect(existsSync(path.join(path.dirname(model.path), 'tokenizer.json'))).toBe(true);
    const student = await readModel(model.path);
    expect(student.proto.graph!.input.filter((i) => /^past_key_values\.\d+\.key$/.test(i.name ?? ''))).toHaveLength(3);
    expect(existsSync(recorded[0].path)).toBe(false);
  });

  it('recovery after pruning: the pruned model is the student, the original the teacher; zeros kept; an overlapping evaluation text warned', async () => {
    const recipe = {
      model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
      steps: [
        { type: 'prune', method: 'magnitude', sparsity: 0.5 },
        recoverStep({ text: trainText, steps: 4, batch: 2, length: 32 }),
      ],
      // The comparison text is the training text: measured on what the student learnt, so warned about.
      evaluation: { perplexity: { text: trainText, window: 64, maxSamples: 10 }, footprint: true },
    } as RecipeInput;
    const { jobId, experimentId } = await jobs.start(recipe);
    const f = await jobs.whenFinished(jobId);
    expect(f.error).toBeNull();
    const d = history.get(experimentId);
    expect(d.kind).toBe('prune');
    const steps = parseStepDetails(d.details);
    expect(steps.map((s) => s.key)).toEqual(['prune:magnitude', 'distill']);
    const prune = steps[0];
    const distill = steps[1];
    if (distill.key !== 'distill' || prune.key !== 'prune:magnitude') return;
    expect(distill.teacher.path).toBe(STORIES.model);
    expect(distill.student.keptBlocks).toBeNull();
    expect(distill.student.blocks).toBe(5);
    expect(distill.warnings.some((w) => /is the training text/.test(w))).toBe(true);
    // Every weight pruned to zero stays zero through the recovery.
    const model = d.artefacts.find((a) => a.kind === 'model')!.path;
    expect(await zerosOf(model)).toBeGreaterThanOrEqual(prune.zeros);
  });

  it('a cancelled distillation resumes from its checkpoint as a new job and continues the same curve', async () => {
    const recipe = {
      model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
      steps: [{ type: 'distill', student: { blocks: [0, 4] }, data: { text: trainText, batch: 2, length: 32 }, schedule: { steps: 8, lr: 1e-3, warmup: 1, checkpointEvery: 2 } }],
      evaluation: { footprint: true },
    } as RecipeInput;
    const { jobId, experimentId } = await jobs.start(recipe);
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (pointsOf(jobId).some((p) => p.step >= 3)) {
          clearInterval(timer);
          jobs.cancel(jobId);
          resolve();
        }
      }, 20);
    });
    expect((await jobs.whenFinished(jobId)).status).toBe('cancelled');
    const before = pointsOf(jobId);
    const plan = planResume(history.get(experimentId));
    expect(plan.ok).toBe(true);
    if (!plan.ok) return;

    const resumed = await jobs.start(plan.recipe);
    const f = await jobs.whenFinished(resumed.jobId);
    expect(f.error).toBeNull();
    const d = parseStepDetails(history.get(resumed.experimentId).details).find((s) => s.key === 'distill');
    expect(d?.key).toBe('distill');
    if (d?.key !== 'distill') return;
    expect(d.curve.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(d.resumedFromStep).toBeGreaterThanOrEqual(2);
    expect(d.resumedFromExperiment).toBe(experimentId);
    expect(d.student.keptBlocks).toEqual([0, 4]);
    for (const p of d.curve.filter((q) => q.step <= d.resumedFromStep!)) {
      expect(p.loss).toBe(before.find((q) => q.step === p.step)!.values.loss);
    }
    expect(existsSync(plan.checkpoints[0])).toBe(false);
  });
});
