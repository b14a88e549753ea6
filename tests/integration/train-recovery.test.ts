/**
 * Fine-tuning recovers what pruning cost: stories260K pruned to 50 % by magnitude (every block weight),
 * fine-tuned on the calibration text with its masks kept, gains back at least half of the perplexity the
 * pruning lost on the evaluation text (the first 400 TinyStories paragraphs, disjoint from training), and
 * every pruned weight is still exactly zero in the written model.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { quietContext } from '../../main/engine/job-context.ts';
import { initializerMap } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { readTensorFloat32 } from '../../main/engine/onnx/tensor-data.ts';
import { pruneUnstructured, type UnstructuredPruneStep } from '../../main/engine/prune/unstructured.ts';
import { trainModel } from '../../main/engine/train/train-model.ts';
import type { TrainConfig } from '../../main/engine/train/types.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { calibrationTextFromEnd, FP32_PERPLEXITY, storiesPerplexity } from './quantize-gptq-helpers.ts';

const tmp = tempDir('whittle-recovery-');
afterAll(() => tmp.cleanup());

describe('fine-tuning after pruning', () => {
  it('recovers at least half of what 50 % magnitude pruning cost, and keeps the zeros', async () => {
    const ctx = quietContext(tmp.dir);
    const pruned = await pruneUnstructured(STORIES.model, { type: 'prune', method: 'magnitude', sparsity: 0.5 } as UnstructuredPruneStep, path.join(tmp.dir, 'pruned'), ctx, { tokenizerPath: STORIES.tokenizer });
    const prunedPpl = await storiesPerplexity(pruned.modelPath, tmp.dir);
    expect(prunedPpl).toBeGreaterThan(FP32_PERPLEXITY * 1.1);

    const config: TrainConfig = {
      textPath: calibrationTextFromEnd(tmp.dir, 600), tokenizerPath: STORIES.tokenizer, steps: 120, batch: 8, length: 64, accumulate: 1,
      lr: 2e-3, warmupSteps: 10, minLrRatio: 0.1, weightDecay: 0, clipNorm: 1, freeze: [], keepSparsity: true, evalEvery: 1000, seed: 1, checkpointEvery: 0,
    };
    const r = await trainModel({ modelPath: pruned.modelPath, outDir: path.join(tmp.dir, 'tuned'), deliver: 'final', checkpointDir: path.join(tmp.dir, 'ckpt'), resume: false, config }, ctx);
    const tunedPpl = await storiesPerplexity(r.folder.modelPath, tmp.dir);
    const cost = prunedPpl - FP32_PERPLEXITY;
    console.info(`recovery: original ${FP32_PERPLEXITY.toFixed(4)}, pruned 50 % ${prunedPpl.toFixed(4)}, fine-tuned ${tunedPpl.toFixed(4)} (${r.details.steps} steps, ${r.details.tokensPerSecond.toFixed(0)} tokens/s)`);
    expect(prunedPpl - tunedPpl, `pruned ${prunedPpl.toFixed(3)} → tuned ${tunedPpl.toFixed(3)} (original ${FP32_PERPLEXITY})`).toBeGreaterThanOrEqual(cost / 2);

    // Exactly the pruned positions are zero, in every pruned weight.
    const before = initializerMap((await readModel(pruned.modelPath)).proto.graph!);
    const after = initializerMap((await readModel(r.folder.modelPath)).proto.graph!);
    let zeros = 0;
    for (const w of pruned.weights) {
      const a = await readTensorFloat32(before.get(w.name)!);
      const b = await readTensorFloat32(after.get(w.name)!);
      let changed = 0;
      for (let i = 0; i < a.length; i++) {
        if (a[i] === 0) { zeros++; expect(b[i]).toBe(0); } else if (b[i] !== a[i]) changed++;
      }
      expect(changed, w.name).toBeGreaterThan(0);
    }
    expect(zeros).toBeGreaterThan(0.45 * pruned.weights.reduce((n, w) => n + w.shape.reduce((x, y) => x * y, 1), 0));
  }, 300_000);
});
