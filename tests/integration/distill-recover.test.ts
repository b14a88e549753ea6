/**
 * Recovery with the original as teacher: the sample pruned to 50 % by SparseGPT, then distilled (the
 * pruned model the student, its zeros kept) on the calibration text, closes more than half of the
 * perplexity gap to the original on the evaluation text; every pruned weight is still exactly zero.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { distillModel } from '../../main/engine/distill/distill-model.ts';
import { isWhittleError } from '../../main/engine/errors.ts';
import { quantizeInt8Dynamic } from '../../main/engine/quantize/int8-dynamic.ts';
import { QuantizeInt8DynamicStep } from '../../preload/recipe.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { initializerMap } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { readTensorFloat32 } from '../../main/engine/onnx/tensor-data.ts';
import { pruneUnstructured, type UnstructuredPruneStep } from '../../main/engine/prune/unstructured.ts';
import type { TrainConfig } from '../../main/engine/train/types.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { calibrationTextFromEnd, FP32_PERPLEXITY, storiesPerplexity } from './quantize-gptq-helpers.ts';

const tmp = tempDir('whittle-recover-');
afterAll(() => tmp.cleanup());

describe('recovery after pruning, with the original as teacher', () => {
  it('SparseGPT 50 %: KD closes more than half of the gap, zeros kept', async () => {
    const ctx = quietContext(tmp.dir);
    const text = calibrationTextFromEnd(tmp.dir, 600);
    const pruned = await pruneUnstructured(STORIES.model, {
      type: 'prune', method: 'sparsegpt', sparsity: 0.5, calibration: { text, samples: 16, length: 128, seed: 0 },
    } as UnstructuredPruneStep, path.join(tmp.dir, 'pruned'), ctx, { tokenizerPath: STORIES.tokenizer });
    const prunedPpl = await storiesPerplexity(pruned.modelPath, tmp.dir);

    const config: TrainConfig = {
      textPath: text, tokenizerPath: STORIES.tokenizer, steps: 80, batch: 8, length: 64, accumulate: 1,
      lr: 1e-3, warmupSteps: 5, minLrRatio: 0.1, weightDecay: 0, clipNorm: 1, freeze: [], keepSparsity: true, evalEvery: 1000, seed: 0, checkpointEvery: 0,
    };
    const r = await distillModel({
      teacherPath: STORIES.model, student: { kind: 'model', path: pruned.modelPath }, loss: { temperature: 2, alpha: 0.5, reverse: false, hidden: 0 }, signal: { kind: 'logits' },
      config, outDir: path.join(tmp.dir, 'recovered'), deliver: 'final', checkpointDir: path.join(tmp.dir, 'ckpt'), resume: false,
    }, ctx);
    const recoveredPpl = await storiesPerplexity(r.folder.modelPath, tmp.dir);
    console.info(`recovery: original ${FP32_PERPLEXITY.toFixed(4)}, SparseGPT 50 % ${prunedPpl.toFixed(4)}, recovered with KD ${recoveredPpl.toFixed(4)} (${config.steps} steps)`);
    expect(prunedPpl - recoveredPpl).toBeGreaterThan((prunedPpl - FP32_PERPLEXITY) / 2);

    const before = initializerMap((await readModel(pruned.modelPath)).proto.graph!);
    const after = initializerMap((await readModel(r.folder.modelPath)).proto.graph!);
    for (const w of pruned.weights) {
      const a = await readTensorFloat32(before.get(w.name)!);
      const b = await readTensorFloat32(after.get(w.name)!);
      for (let i = 0; i < a.length; i++) if (a[i] === 0) expect(b[i]).toBe(0);
    }
  }, 300_000);

  it('a student with INT8 weights (MatMulInteger) is refused before any work, pointing to KD-QAT', async () => {
    const ctx = quietContext(tmp.dir);
    const int8 = await quantizeInt8Dynamic(STORIES.model, QuantizeInt8DynamicStep.parse({ type: 'quantize', method: 'int8-dynamic' }), path.join(tmp.dir, 'int8'), ctx, { tokenizerPath: STORIES.tokenizer });
    const config: TrainConfig = {
      textPath: calibrationTextFromEnd(tmp.dir, 600), tokenizerPath: STORIES.tokenizer, steps: 2, batch: 2, length: 16, accumulate: 1,
      lr: 1e-3, warmupSteps: 0, minLrRatio: 0.1, weightDecay: 0, clipNorm: 1, freeze: [], keepSparsity: true, evalEvery: 1000, seed: 0, checkpointEvery: 0,
    };
    const out = path.join(tmp.dir, 'never');
    const err = await distillModel({
      teacherPath: STORIES.model, student: { kind: 'model', path: int8.modelPath }, loss: { temperature: 2, alpha: 0.5, reverse: false, hidden: 0 }, signal: { kind: 'logits' },
      config, outDir: out, deliver: 'final', checkpointDir: path.join(tmp.dir, 'ckpt-int8'), resume: false,
    }, ctx).catch((e: unknown) => e);
    expect(isWhittleError(err) && err.code).toBe('INVALID_INPUT');
    expect((err as Error).message).toMatch(/stores quantized weights \((MatMulInteger|DynamicQuantizeLinear)/);
    expect((err as Error).message).toMatch(/KD-QAT/);
    expect(existsSync(out)).toBe(false);
  }, 120_000);
});
