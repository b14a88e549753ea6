/**
 * KD-QAT (arXiv 2403.18159): the sample fake-quantized to 4 bits (block 32, MatMulNBits' grid), distilled
 * from its own float model and exported as MatMulNBits, scores a lower perplexity than GPTQ 4-bit alone;
 * with ov-freeze the o and v projections keep their float values (quantized only at export). Training text:
 * the paragraphs after the first 400; evaluation: the first 400.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { QuantizeGptqStep } from '../../preload/recipe.ts';
import { distillModel } from '../../main/engine/distill/distill-model.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { quantizeGptq } from '../../main/engine/quantize/gptq.ts';
import type { TrainConfig } from '../../main/engine/train/types.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { calibrationTextFromEnd, FP32_PERPLEXITY, storiesPerplexity } from './quantize-gptq-helpers.ts';

const tmp = tempDir('whittle-kdqat-');
afterAll(() => tmp.cleanup());

describe('KD-QAT', () => {
  it('4-bit block 32: distilled through fake quantization, exported as MatMulNBits, better than GPTQ alone', async () => {
    const ctx = quietContext(tmp.dir);
    const text = calibrationTextFromEnd(tmp.dir, 1000);
    const config: TrainConfig = {
      textPath: text, tokenizerPath: STORIES.tokenizer, steps: 40, batch: 8, length: 64, accumulate: 1,
      lr: 2e-4, warmupSteps: 4, minLrRatio: 0.1, weightDecay: 0, clipNorm: 1, freeze: [], keepSparsity: false, evalEvery: 1000, seed: 0, checkpointEvery: 0,
    };
    const r = await distillModel({
      teacherPath: STORIES.model, student: { kind: 'model', path: STORIES.model }, loss: { temperature: 2, alpha: 0.5, reverse: false, hidden: 0 }, signal: { kind: 'logits' },
      qat: { bits: 4, blockSize: 32, symmetric: false, freezeRoles: ['o', 'v'] },
      config, outDir: path.join(tmp.dir, 'kdqat'), deliver: 'final', checkpointDir: path.join(tmp.dir, 'ckpt'), resume: false,
    }, ctx);
    const ops = (await readModel(r.folder.modelPath)).proto.graph!.node.map((n) => n.opType);
    expect(ops.filter((o) => o === 'MatMulNBits').length).toBe(35);

    const gptq = await quantizeGptq(STORIES.model, QuantizeGptqStep.parse({
      type: 'quantize', method: 'gptq', bits: 4, blockSize: 32, accuracyLevel: 0, calibration: { text, samples: 32, length: 128, seed: 0 },
    }), path.join(tmp.dir, 'gptq'), ctx, { tokenizerPath: STORIES.tokenizer });
    const kdqatPpl = await storiesPerplexity(r.folder.modelPath, tmp.dir);
    const gptqPpl = await storiesPerplexity(gptq.modelPath, tmp.dir);
    console.info(`KD-QAT 4-bit g32 (ov-freeze, ${config.steps} steps): ${kdqatPpl.toFixed(4)}; GPTQ 4-bit g32: ${gptqPpl.toFixed(4)}; float ${FP32_PERPLEXITY.toFixed(4)}`);
    expect(kdqatPpl).toBeLessThan(gptqPpl);
  }, 300_000);
});
