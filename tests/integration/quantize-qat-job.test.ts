/**
 * The KD-QAT quantize step through the real job service and engine process on stories260K: 4-bit block
 * 32 with ov-freeze, 8 steps of B = 4, T = 32. The job streams a 'train' point per step with the KD parts,
 * writes a model whose linear weights are MatMulNBits (accuracy level 0) that runs, reports the grid, the
 * frozen roles, the quantized weights and the curve in the step's details, is compared with the original
 * (perplexity, KL, agreement), and removes its checkpoints once done; and a cancelled run resumed from its
 * checkpoint as a new job continues the same curve and still exports MatMulNBits.
 * Training text: the paragraphs after the first 400 of the TinyStories head; held-out: the first 400.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeInput } from '../../preload/contract.ts';
import type { SeriesPoint } from '../../preload/series.ts';
import { CHECKPOINTS_ARTEFACT, parseStepDetails } from '../../preload/methods.ts';
import { planResume } from '../../preload/resume.ts';

import { openDecoder } from '../../main/engine/evaluate/decoder-session.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';

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
  ({ scratch, history, jobs, events, trainText, heldOut } = await openTrainingJobs('whittle-qat-job-'));
});

afterAll(() => closeTrainingJobs({ jobs, history, scratch }));

const pointsOf = (jobId: string): SeriesPoint[] =>
  events.flatMap((e) => (e.channel === 'job.points' && e.payload.jobId === jobId ? e.payload.points : []));
const metric = (d: { metrics: { name: string; subject: string; value: number }[] }, name: string, subject: string): number | undefined =>
  d.metrics.find((m) => m.name === name && m.subject === subject)?.value;

describe('the KD-QAT quantize step as a job', () => {
  it('4-bit g32 with ov-freeze: streams its curve, exports MatMulNBits, reports the run and is compared with the original', async () => {
    const recipe = {
      model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
      steps: [{
        type: 'quantize', method: 'qat', bits: 4, blockSize: 32, freezeRoles: ['o', 'v'], text: trainText,
        steps: 8, batch: 4, length: 32, warmup: 1, checkpointEvery: 4,
      }],
      evaluation: { perplexity: { text: heldOut, window: 64, maxSamples: 20 }, footprint: true },
    } as RecipeInput;
    const { jobId, experimentId } = await jobs.start(recipe);
    expect(history.get(experimentId).artefacts.filter((a) => a.kind === CHECKPOINTS_ARTEFACT)).toHaveLength(1);

    const f = await jobs.whenFinished(jobId);
    expect(f.error).toBeNull();
    expect(f.status).toBe('done');

    // One 'train' point per optimizer step, with the distillation's parts.
    const points = pointsOf(jobId);
    expect(points.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (const p of points) {
      expect(p.series).toBe('train');
      expect(Number.isFinite(p.values.loss) && p.values.loss > 0).toBe(true);
      expect(p.values['part.kl']).toBeGreaterThanOrEqual(0);
    }

    const d = history.get(experimentId);
    expect(d.kind).toBe('quantize');
    const qat = parseStepDetails(d.details).find((s) => s.key === 'quantize:qat');
    expect(qat?.key).toBe('quantize:qat');
    if (qat?.key !== 'quantize:qat') return;
    expect(qat).toMatchObject({ method: 'qat', bits: 4, blockSize: 32, symmetric: false, accuracyLevel: 0, freezeRoles: ['o', 'v'], steps: 8 });
    expect(qat.loss).toEqual({ temperature: 2, alpha: 0.5 });
    expect(qat.curve.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(qat.config).toMatchObject({ batch: 4, length: 32, freeze: ['o', 'v'] });

    // The model written: every linear weight of the graph is MatMulNBits at 4 bits, block 32, and it runs.
    const model = d.artefacts.find((a) => a.kind === 'model')!.path;
    const graph = (await readModel(model)).proto.graph!;
    const nodes = graph.node;
    const initializers = new Set(graph.initializer.map((t) => t.name));
    const nbits = nodes.filter((n) => n.opType === 'MatMulNBits');
    expect(nbits.length).toBe(qat.quantized);
    expect(nbits.length).toBeGreaterThan(0);
    // No MatMul is left with a float weight (an initializer) as its second input.
    expect(nodes.filter((n) => n.opType === 'MatMul' && initializers.has(n.input[1] ?? ''))).toHaveLength(0);
    for (const n of nbits) {
      const attr = (name: string): number => Number(n.attribute.find((a) => a.name === name)?.i ?? -1);
      expect([attr('bits'), attr('block_size'), attr('accuracy_level')]).toEqual([4, 32, 0]);
    }
    // Its whittle.json names the step KD-QAT (grid, frozen roles) and the source the user's model.
    const manifest = await readManifest(path.dirname(model));
    expect(manifest.step).toMatchObject({ type: 'quantize', method: 'qat', bits: 4, blockSize: 32, symmetric: false, accuracyLevel: 0, freezeRoles: ['o', 'v'] });
    expect(manifest.source.path).toBe(path.resolve(STORIES.model));
    const decoder = await openDecoder(model);
    const { logits } = await decoder.forward([1, 403, 407, 261]);
    expect(logits.every(Number.isFinite)).toBe(true);
    await decoder.release();

    // Compared with the original on the held-out text; far smaller on disk.
    const original = metric(d, 'perplexity', 'original')!;
    const result = metric(d, 'perplexity', 'result')!;
    console.info(`KD-QAT 4-bit g32 ov-freeze (8 steps, B 4, T 32): perplexity ${original.toFixed(3)} → ${result.toFixed(3)}; ${qat.quantized} MatMulNBits weights`);
    expect(original).toBeGreaterThan(1);
    expect(result).toBeGreaterThan(original * 0.9);
    expect(result).toBeLessThan(original * 2);
    expect(metric(d, 'bytes_on_disk', 'result')!).toBeLessThan(metric(d, 'bytes_on_disk', 'original')!);
    expect(d.metrics.some((m) => m.name === 'kl' || m.name === 'top1_agreement')).toBe(true);

    // The checkpoints are gone once the output has been committed.
    expect(existsSync(qat.checkpointDir)).toBe(false);
  }, 120_000);

  it('a cancelled KD-QAT run resumes from its checkpoint as a new job and continues the same curve', async () => {
    const recipe = {
      model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
      steps: [{ type: 'quantize', method: 'qat', bits: 4, text: trainText, steps: 8, batch: 2, length: 32, warmup: 1, checkpointEvery: 2 }],
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
    const d = history.get(resumed.experimentId);
    const qat = parseStepDetails(d.details).find((s) => s.key === 'quantize:qat');
    expect(qat?.key).toBe('quantize:qat');
    if (qat?.key !== 'quantize:qat') return;
    expect(qat.curve.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(qat.resumedFromStep).toBeGreaterThanOrEqual(2);
    expect(qat.resumedFromExperiment).toBe(experimentId);
    for (const p of qat.curve.filter((q) => q.step <= qat.resumedFromStep!)) {
      expect(p.loss).toBe(before.find((q) => q.step === p.step)!.values.loss);
    }
    const model = d.artefacts.find((a) => a.kind === 'model')!.path;
    expect((await readModel(model)).proto.graph!.node.filter((n) => n.opType === 'MatMulNBits').length).toBe(qat.quantized);
    expect(existsSync(plan.checkpoints[0])).toBe(false);
  }, 120_000);
});
