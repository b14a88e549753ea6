/**
 * A plain training loop over a training view (cross-entropy, AdamW, one micro-batch per step), for tests of
 * view transforms (LoRA, fake quantization) that trainModel does not build itself; and the logits of a
 * view for given weights.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { writeModel } from '../../main/engine/onnx/writer.ts';
import { crossEntropyHead } from '../../main/engine/train/loss-head.ts';
import { AdamW } from '../../main/engine/train/optimizer.ts';
import { StepSession, type Batch } from '../../main/engine/train/session.ts';
import { compileTrainStep } from '../../main/engine/train/step-graph.ts';
import type { TrainingData } from '../../main/engine/train/data.ts';
import type { TrainingView } from '../../main/engine/train/view.ts';

export interface ViewTrainingRun {
  /** The trained weights, by name (the view's trainable parameters). */
  weights: Map<string, Float32Array>;
  /** Mean token loss of each step (before its update). */
  losses: number[];
}

export async function trainView(view: TrainingView, data: TrainingData, options: { steps: number; lr: number; dir: string; weightDecay?: number }): Promise<ViewTrainingRun> {
  const weights = view.trainable.map((p) => Float32Array.from(view.initial.get(p.name) ?? []));
  const session = await StepSession.open(compileTrainStep(view, crossEntropyHead(view.batch, view.length, view.vocab)), view.trainable, weights, [view.batch, view.length], options.dir);
  const optimizer = new AdamW(view.trainable.map((p, i) => ({ name: p.name, weights: weights[i], decay: p.decay })), { weightDecay: options.weightDecay ?? 0 });
  const losses: number[] = [];
  try {
    let position = data.start();
    for (let s = 0; s < options.steps; s++) {
      const next = data.batchAt(position);
      position = next.next;
      const r = await session.run(next.batch);
      losses.push(r.lossSum / r.tokenCount);
      await optimizer.step(r.grads, { lr: options.lr, gradScale: 1 / r.tokenCount, clipNorm: 1 });
    }
  } finally {
    await session.close();
  }
  return { weights: new Map(view.trainable.map((p, i) => [p.name, weights[i]])), losses };
}

/** Loss of one batch through a view with the given weights. */
export async function viewLoss(view: TrainingView, weights: ReadonlyMap<string, Float32Array>, batch: Batch, dir: string): Promise<number> {
  const list = view.trainable.map((p) => Float32Array.from(weights.get(p.name) ?? view.initial.get(p.name) ?? []));
  const session = await StepSession.open(compileTrainStep(view, crossEntropyHead(view.batch, view.length, view.vocab)), view.trainable, list, [view.batch, view.length], dir);
  try {
    const r = await session.run(batch);
    return r.lossSum / r.tokenCount;
  } finally {
    await session.close();
  }
}

/** The view's logits [B·T·V] for token ids [B·T] and the given trainable weights. */
export async function viewLogits(view: TrainingView, weights: ReadonlyMap<string, Float32Array>, ids: BigInt64Array, dir: string): Promise<Float32Array> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'view.onnx');
  await writeModel(view.model, file, { externalData: 'auto', threshold: 1024, dataFileName: 'view.onnx.data' });
  const session = await ort.InferenceSession.create(file, { graphOptimizationLevel: 'all' });
  try {
    const feeds: Record<string, ort.Tensor> = {
      [view.inputIds.name]: view.inputIds.dtype === 6 ? new ort.Tensor('int32', Int32Array.from(ids, Number), [view.batch, view.length]) : new ort.Tensor('int64', ids, [view.batch, view.length]),
    };
    for (const p of view.trainable) feeds[p.name] = new ort.Tensor('float32', Float32Array.from(weights.get(p.name) ?? view.initial.get(p.name) ?? []), p.dims);
    const out = await session.run(feeds, [view.logits]);
    return Float32Array.from(out[view.logits].data as Float32Array);
  } finally {
    await session.release();
    await rm(dir, { recursive: true, force: true });
  }
}
