/**
 * Distillation pays: on the bundled sample, a student keeping 2 of its 5 blocks trained with KD (teacher =
 * the sample) reaches a lower perplexity on the evaluation text than the same student trained for the
 * same steps on the same text with cross-entropy only. Training text: the paragraphs after the first 400
 * (the evaluation text). The figures (teacher, KD student, CE student) are printed.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { distillModel } from '../../main/engine/distill/distill-model.ts';
import { writeStudentByBlocks } from '../../main/engine/distill/student.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { trainModel } from '../../main/engine/train/train-model.ts';
import type { TrainConfig } from '../../main/engine/train/types.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { calibrationTextFromEnd, FP32_PERPLEXITY, storiesPerplexity } from './quantize-gptq-helpers.ts';

const tmp = tempDir('whittle-distill-kd-');
afterAll(() => tmp.cleanup());

describe('a 2-of-5-block student', () => {
  it('learns more from the teacher (KD) than from the text alone (cross-entropy), same steps and text', async () => {
    const ctx = quietContext(tmp.dir);
    const config: TrainConfig = {
      textPath: calibrationTextFromEnd(tmp.dir, 600), tokenizerPath: STORIES.tokenizer, steps: 60, batch: 8, length: 64, accumulate: 1,
      lr: 3e-3, warmupSteps: 5, minLrRatio: 0.1, weightDecay: 0, clipNorm: 1, freeze: [], keepSparsity: false, evalEvery: 1000, seed: 3, checkpointEvery: 0,
    };
    const kd = await distillModel({
      teacherPath: STORIES.model, student: { kind: 'blocks', blocks: [0, 4] }, loss: { temperature: 2, alpha: 0.5, reverse: false, hidden: 0 }, signal: { kind: 'logits' },
      config, outDir: path.join(tmp.dir, 'kd'), deliver: 'final', checkpointDir: path.join(tmp.dir, 'kd-ckpt'), resume: false,
    }, ctx);
    expect(kd.details.student).toMatchObject({ blocks: 2, keptBlocks: [0, 4] });

    const student = await writeStudentByBlocks(STORIES.model, [0, 4], path.join(tmp.dir, 'student'), ctx, { tokenizerPath: STORIES.tokenizer });
    const ce = await trainModel({ modelPath: student.modelPath, outDir: path.join(tmp.dir, 'ce'), deliver: 'final', checkpointDir: path.join(tmp.dir, 'ce-ckpt'), resume: false, config }, ctx);

    const kdPpl = await storiesPerplexity(kd.folder.modelPath, tmp.dir);
    const cePpl = await storiesPerplexity(ce.folder.modelPath, tmp.dir);
    console.info(`2-of-5-block student, ${config.steps} steps: teacher ${FP32_PERPLEXITY.toFixed(4)}, KD ${kdPpl.toFixed(4)}, cross-entropy only ${cePpl.toFixed(4)}`);
    expect(kdPpl).toBeLessThan(cePpl);
    expect(kdPpl).toBeGreaterThan(FP32_PERPLEXITY);
  }, 300_000);
});
