/**
 * Distillation through trainModel on stories260K (train text: paragraphs after the first 400):
 *  - student = teacher: the KL part is ~0 and the student agrees with the teacher on every token;
 *  - a student whose block 2 is perturbed starts with KL > 0 that falls over 10 steps;
 *  - the top-k cache: built once, its size as predicted, training from it runs, and its effect on the loss
 *    against the full teacher logits is small and reported;
 *  - a teacher of another vocabulary (GPT-2's) is refused before the first step.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distillationObjective, topkKlError } from '../../main/engine/distill/objective.ts';
import { openTeacher, type Teacher } from '../../main/engine/distill/teacher.ts';
import { buildTopkCache, HEADER_BYTES, TopkCache } from '../../main/engine/distill/topk-cache.ts';
import { isWhittleError } from '../../main/engine/errors.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { DataType } from '../../main/engine/onnx/dtype.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { makeTensor, readTensorFloat32 } from '../../main/engine/onnx/tensor-data.ts';
import { writeModel } from '../../main/engine/onnx/writer.ts';
import { TrainingData } from '../../main/engine/train/data.ts';
import { trainModel } from '../../main/engine/train/train-model.ts';
import type { TrainConfig, TrainPoint } from '../../main/engine/train/types.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';
import { rng } from '../unit/train/grad-check.ts';
import { calibrationTextFromEnd } from './quantize-gptq-helpers.ts';

const tmp = tempDir('whittle-distill-');
afterAll(() => tmp.cleanup());

const B = 4, T = 64;
let text = '';
let perturbed = '';

function config(steps: number, lr: number): TrainConfig {
  return {
    textPath: text, tokenizerPath: STORIES.tokenizer, steps, batch: B, length: T, accumulate: 1, lr, warmupSteps: 0, minLrRatio: 1,
    weightDecay: 0, clipNorm: 1, freeze: [], keepSparsity: false, evalEvery: 1000, seed: 3, checkpointEvery: 0,
  };
}

/** stories260K with block 2's projection weights given Gaussian noise of 0.5 × their own spread. */
async function writePerturbed(file: string): Promise<void> {
  const model = await readModel(STORIES.model);
  const graph = model.proto.graph!;
  const r = rng(7);
  const gauss = (): number => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  for (const [i, t] of graph.initializer.entries()) {
    if (!/^model\.layers\.2\..*_proj\.weight/.test(t.name ?? '')) continue;
    const w = await readTensorFloat32(t);
    const std = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length);
    const noisy = Float32Array.from(w, (v) => v + 0.5 * std * gauss());
    graph.initializer[i] = makeTensor(t.name ?? '', DataType.float32, (t.dims ?? []).map(Number), new Uint8Array(noisy.buffer));
  }
  await mkdir(path.dirname(file), { recursive: true });
  await writeModel(model.proto, file);
}

beforeAll(async () => {
  text = calibrationTextFromEnd(tmp.dir, 150);
  perturbed = path.join(tmp.dir, 'perturbed', 'model.onnx');
  await writePerturbed(perturbed);
});

async function distil(student: string, objective: Parameters<typeof distillationObjective>[0], steps: number, lr: number, name: string): Promise<TrainPoint[]> {
  const points: TrainPoint[] = [];
  await trainModel({
    modelPath: student, outDir: path.join(tmp.dir, name), deliver: 'final', checkpointDir: path.join(tmp.dir, `${name}-ckpt`), resume: false,
    config: config(steps, lr), objective: distillationObjective(objective), onPoint: (p) => points.push(p),
  }, quietContext(tmp.dir));
  return points;
}

describe('distillation with a teacher session', () => {
  it('student = teacher: KL ~0 and full agreement', async () => {
    const points = await distil(STORIES.model, { teacher: { modelPath: STORIES.model, scratchDir: tmp.dir }, temperature: 2, alpha: 0.5, tokenizers: { teacher: STORIES.tokenizer, student: STORIES.tokenizer } }, 1, 1e-9, 'same');
    const parts = points[0].parts!;
    expect(Math.abs(parts.kl)).toBeLessThan(1e-5);
    expect(parts.agree).toBe(1);
    expect(parts.ce).toBeGreaterThan(0.5);
    // loss = α T² KL + (1 − α) CE per token.
    expect(points[0].loss).toBeCloseTo(0.5 * 4 * parts.kl + 0.5 * parts.ce, 4);
  }, 60_000);

  it('a perturbed student starts with KL > 0 that falls over 10 steps', async () => {
    const points = await distil(perturbed, { teacher: { modelPath: STORIES.model, scratchDir: tmp.dir }, temperature: 2, alpha: 0.9 }, 10, 2e-3, 'perturbed-out');
    const kl = points.map((p) => p.parts!.kl);
    console.info(`distillation of a perturbed stories260K: KL per token ${kl.map((v) => v.toFixed(4)).join(' → ')}; agreement ${points[0].parts!.agree.toFixed(3)} → ${points.at(-1)!.parts!.agree.toFixed(3)}`);
    expect(kl[0]).toBeGreaterThan(0.02);
    const mean = (xs: number[]): number => xs.reduce((a, v) => a + v, 0) / xs.length;
    expect(mean(kl.slice(-3))).toBeLessThan(0.85 * mean(kl.slice(0, 3)));
    expect(kl.at(-1)).toBeLessThan(kl[0]);
    expect(points[0].parts!.agree).toBeLessThan(1);
  }, 60_000);

  it('refuses a teacher of another vocabulary (GPT-2 vs stories260K) before the first step', async () => {
    const gpt2 = fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx');
    const points: TrainPoint[] = [];
    const err = await trainModel({
      modelPath: STORIES.model, outDir: path.join(tmp.dir, 'bad'), deliver: 'final', checkpointDir: path.join(tmp.dir, 'bad-ckpt'), resume: false,
      config: config(2, 1e-3), objective: distillationObjective({ teacher: { modelPath: gpt2, scratchDir: tmp.dir } }), onPoint: (p) => points.push(p),
    }, quietContext(tmp.dir)).catch((e: unknown) => e);
    expect(isWhittleError(err) && err.code).toBe('INVALID_INPUT');
    expect((err as Error).message).toMatch(/teacher scores \d+ words but the student 512/);
    expect(points).toHaveLength(0);
  }, 60_000);
});

describe('distillation from a top-k cache', () => {
  let teacher: Teacher;
  beforeAll(async () => { teacher = await openTeacher(STORIES.model, { batch: B, length: T, scratchDir: tmp.dir }); }, 30_000);
  afterAll(async () => { await teacher.close(); });

  it('is built once at the predicted size, trains, and changes the loss little', async () => {
    const k = 64;
    const data = await TrainingData.load({ textPath: text, tokenizerPath: STORIES.tokenizer, batch: B, length: T, seed: 3 });
    const file = path.join(tmp.dir, 'teacher.topk');
    const progress: number[] = [];
    const built = await buildTopkCache(teacher, data, { k, temperature: 2, file, onProgress: (p) => progress.push(p.done) });
    const positions = data.sequences * T;
    expect(built.bytes).toBe(HEADER_BYTES + positions * (k * (4 + 4) + 4));
    expect((await stat(file)).size).toBe(built.bytes);
    expect(progress.at(-1)).toBe(data.sequences);

    const cache = await TopkCache.open(file);
    try {
      // The rows of a sequence are the teacher's own top-k of it.
      const batch = data.batchOfSequences([5, 0]);
      const rows = await cache.rows(batch.sequences!);
      const live = await teacher.topk(batch, k, 2);
      expect(Array.from(rows.teacher_topk_ids.data as BigInt64Array).slice(0, 2 * T * k)).toEqual(Array.from(live.ids).slice(0, 2 * T * k));

      const report = await topkKlError({ student: perturbed, teacher, cache, data, scratchDir: tmp.dir, alpha: 0.5, batches: 3 });
      console.info(`top-k cache k=${k}: ${built.bytes} bytes for ${positions} positions in ${built.seconds.toFixed(2)} s; loss with the cache ${report.topkLoss.toFixed(5)} vs full ${report.fullLoss.toFixed(5)} (relative ${report.relativeLossError.toExponential(2)}), KL ${report.topkKl.toFixed(5)} vs ${report.fullKl.toFixed(5)}`);
      // The bucketed KL is never above the full KL (data processing: the gap is P_rest times the KL of the
      // rest's conditional distributions), and with the 64 most likely of 512 words at T = 2 it is close to it.
      expect(report.topkKl).toBeLessThanOrEqual(report.fullKl * (1 + 1e-5));
      expect(report.relativeKlError).toBeLessThan(0.1);
      expect(report.relativeLossError).toBeLessThan(0.05);
    } finally {
      await cache.close();
    }

    const points = await distil(perturbed, { cache: await TopkCache.open(file), temperature: 2, alpha: 0.9 }, 4, 2e-3, 'from-cache');
    expect(points).toHaveLength(4);
    expect(points[0].parts!.kl).toBeGreaterThan(0.01);
    expect(points.every((p) => Number.isFinite(p.loss))).toBe(true);
  }, 90_000);
});
