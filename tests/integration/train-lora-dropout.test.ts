/**
 * LoRA dropout on stories260K: p = 0 builds the graph of a run without dropout (same nodes, same
 * results bit for bit); with p > 0 the gradients of A and B match float64 finite differences of the view
 * with the same mask held fixed; the held-out loss of a run is measured without dropout; the masks
 * change from step to step, and a cancelled run resumed draws the masks of the uninterrupted run.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isWhittleError } from '../../main/engine/errors.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { DataType } from '../../main/engine/onnx/dtype.ts';
import type { OnnxModel } from '../../main/engine/onnx/proto-types.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { readLatestCheckpoint } from '../../main/engine/train/checkpoint.ts';
import { TrainingData } from '../../main/engine/train/data.ts';
import { crossEntropyHead } from '../../main/engine/train/loss-head.ts';
import { loraAdapter } from '../../main/engine/train/lora-adapter.ts';
import { dropoutMask } from '../../main/engine/train/lora-dropout.ts';
import { applyLora, type LoraOptions, type LoraView } from '../../main/engine/train/lora.ts';
import { StepSession } from '../../main/engine/train/session.ts';
import { compileEvalStep, compileTrainStep } from '../../main/engine/train/step-graph.ts';
import { trainModel } from '../../main/engine/train/train-model.ts';
import type { TrainConfig, TrainRequest } from '../../main/engine/train/types.ts';
import { buildTrainingView, type TrainingView } from '../../main/engine/train/view.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { finiteDifferenceError, largestEntries, referenceLossSum } from '../helpers/reference-loss.ts';
import { loadInitializers, type RefTensor } from '../helpers/reference-ops.ts';
import { calibrationTextFromEnd } from './quantize-gptq-helpers.ts';

const scratch = tempDir('whittle-lora-dropout-');
afterAll(() => scratch.cleanup());

let source: OnnxModel;
let base: TrainingView;
const B = 1, T = 8;
const ids = [1, 72, 304, 45, 260, 13, 411, 99];
const labels = [72, 304, 45, 260, 13, 411, 99, -1];
const batch = { inputIds: BigInt64Array.from(ids.map(BigInt)), labels: BigInt64Array.from(labels.map(BigInt)) };
const OPTIONS: LoraOptions = { roles: ['q', 'v'], rank: 4, alpha: 8, seed: 11 };

beforeAll(async () => {
  source = await readModel(STORIES.model);
  base = await buildTrainingView(source, mapArchitecture(source), { batch: B, length: T, frozen: () => false, scratchDir: scratch.dir });
}, 60_000);

/** The adapters' start values with B ≠ 0 (so that A has a gradient and dropout changes the loss). */
function withNonZeroB(lora: LoraView): Float32Array[] {
  let seed = 3;
  const start = new Map(lora.view.trainable.map((p) => [p.name, Float32Array.from(lora.view.initial.get(p.name) ?? [])]));
  for (const ad of lora.adapters) {
    const b = start.get(ad.b) ?? new Float32Array(0);
    for (let i = 0; i < b.length; i++) { seed = (seed * 1103515245 + 12345) % 2147483648; b[i] = Math.fround(((seed / 2147483648) * 2 - 1) * 0.05); }
  }
  return lora.view.trainable.map((p) => start.get(p.name) ?? new Float32Array(0));
}

describe('LoRA dropout', () => {
  it('p = 0 builds exactly the graph without dropout, and its step computes the same loss and gradients bit for bit', async () => {
    const plain = await applyLora(base, OPTIONS);
    const zero = await applyLora(base, { ...OPTIONS, dropout: 0 });
    expect(zero.dropoutInputs).toEqual([]);
    expect(zero.dropoutFeeds({ step: 1, micro: 0 })).toEqual({});
    expect(zero.dropoutFeeds(null)).toEqual({});
    expect(zero.view.model.graph?.node).toEqual(plain.view.model.graph?.node);
    expect(zero.view.model.graph?.input).toEqual(plain.view.model.graph?.input);
    const run = async (lora: LoraView, dir: string): Promise<{ loss: number; grads: Float32Array[] }> => {
      const s = await StepSession.open(compileTrainStep(lora.view, crossEntropyHead(B, T, lora.view.vocab)), lora.view.trainable, withNonZeroB(lora), [B, T], path.join(scratch.dir, dir));
      try {
        const r = await s.run(batch, lora.dropoutFeeds({ step: 1, micro: 0 }));
        return { loss: r.lossSum, grads: r.grads.map((g) => Float32Array.from(g)) };
      } finally {
        await s.close();
      }
    };
    const a = await run(plain, 'plain'), b = await run(zero, 'zero');
    expect(b.loss).toBe(a.loss);
    for (const [i, g] of a.grads.entries()) expect(b.grads[i]).toEqual(g);
  }, 120_000);

  it('with p = 0.3 the gradients of A and B match float64 finite differences with the same mask (relative error ≤ 1e-3)', async () => {
    const p = 0.3;
    const lora = await applyLora(base, { ...OPTIONS, dropout: p });
    expect(lora.dropoutInputs).toHaveLength(lora.adapters.length);
    expect(lora.dropoutInputs[0].shape).toEqual([B, T, 64]);
    const v = lora.view;
    const list = withNonZeroB(lora);
    const feeds = lora.dropoutFeeds({ step: 1, micro: 0 });
    const session = await StepSession.open(compileTrainStep(v, crossEntropyHead(B, T, v.vocab)), v.trainable, list, [B, T], path.join(scratch.dir, 'grad'));
    const got = await session.run(batch, feeds);
    const grads = got.grads.map((g) => Float64Array.from(g));
    const undropped = await session.run(batch, lora.dropoutFeeds(null));
    await session.close();

    const masks = new Map<string, RefTensor>(lora.dropoutInputs.map((m) => [m.name, { dtype: DataType.float32, dims: [...m.shape], data: Float64Array.from(feeds[m.name].data as Float32Array) }]));
    const mask0 = feeds[lora.dropoutInputs[0].name].data as Float32Array;
    const dropped = mask0.filter((x) => x === 0).length;
    expect(dropped).toBeGreaterThan(0.15 * mask0.length);
    expect(dropped).toBeLessThan(0.45 * mask0.length);
    expect(mask0.every((x) => x === 0 || x === Math.fround(1 / (1 - p)))).toBe(true);

    const constants = await loadInitializers(v.model.graph ?? (() => { throw new Error('no graph'); })());
    const weights = new Map(v.trainable.map((q, i) => [q.name, Float64Array.from(list[i])]));
    const lossAt = referenceLossSum(v, new Map([...constants, ...masks]), weights, ids, labels, B, T);
    expect(Math.abs(got.lossSum - lossAt) / lossAt).toBeLessThan(1e-5);
    // The mask changes the loss: the same weights without dropout give another one.
    expect(Math.abs(undropped.lossSum - got.lossSum) / got.lossSum).toBeGreaterThan(1e-4);

    const h = 1e-4;
    const picked = lora.adapters.filter((a) => /layers\.(0|4)\./.test(a.weight)).flatMap((a) => [a.a, a.b]);
    expect(picked).toHaveLength(8);
    for (const name of picked) {
      const i = v.trainable.findIndex((q) => q.name === name);
      const w = weights.get(name) ?? new Float64Array(0);
      const g = grads[i];
      const { error, norm } = finiteDifferenceError(() => referenceLossSum(v, new Map([...constants, ...masks]), weights, ids, labels, B, T), w, g, largestEntries(g, 3), h);
      expect(norm, name).toBeGreaterThan(0);
      expect(error, name).toBeLessThan(1e-3);
    }
  }, 180_000);

  it('draws a fresh mask every step and micro-batch, the same one for the same draw', () => {
    const n = 4096, p = 0.1;
    const m1 = dropoutMask(n, p, 7, { step: 1, micro: 0 }, 0);
    expect(dropoutMask(n, p, 7, { step: 1, micro: 0 }, 0)).toEqual(m1);
    for (const other of [dropoutMask(n, p, 7, { step: 2, micro: 0 }, 0), dropoutMask(n, p, 7, { step: 1, micro: 1 }, 0), dropoutMask(n, p, 7, { step: 1, micro: 0 }, 1), dropoutMask(n, p, 8, { step: 1, micro: 0 }, 0)]) {
      let differ = 0;
      for (let i = 0; i < n; i++) if (other[i] !== m1[i]) differ++;
      // Two independent masks differ where exactly one drops: 2·p·(1 − p) of the entries (18 %).
      expect(differ).toBeGreaterThan(0.12 * n);
    }
    const kept = m1.filter((x) => x !== 0).length;
    expect(Math.abs(kept / n - (1 - p))).toBeLessThan(0.03);
  });
});

describe('LoRA dropout in a training run', () => {
  const text = (): string => calibrationTextFromEnd(scratch.dir, 300);
  const config = (over: Partial<TrainConfig> = {}): TrainConfig => ({
    textPath: text(), tokenizerPath: STORIES.tokenizer, steps: 6, batch: 2, length: 16, accumulate: 2,
    lr: 5e-3, warmupSteps: 1, minLrRatio: 0.1, weightDecay: 0, clipNorm: 1, freeze: [], keepSparsity: false, evalEvery: 100, seed: 5, checkpointEvery: 2,
    ...over,
  });
  const dropped: LoraOptions = { ...OPTIONS, seed: 5, dropout: 0.5 };
  const request = (name: string, over: Partial<TrainConfig> = {}): TrainRequest => ({
    modelPath: STORIES.model, outDir: path.join(scratch.dir, `${name}-out`), deliver: 'final', checkpointDir: path.join(scratch.dir, `${name}-ckpt`), resume: false,
    config: config(over), adapter: loraAdapter(dropped),
  });

  it('measures the held-out loss without dropout', async () => {
    const evalTextPath = calibrationTextFromEnd(path.join(scratch.dir), 40);
    const req = request('eval', { evalTextPath, evalEvery: 2, steps: 4, lr: 2e-2 });
    const points: { step: number; evalLoss?: number }[] = [];
    await trainModel({ ...req, onPoint: (p) => points.push(p) }, quietContext(scratch.dir));
    const at2 = points.find((p) => p.step === 2)?.evalLoss;
    expect(at2).toBeDefined();
    const saved = await readLatestCheckpoint(req.checkpointDir);
    expect(saved?.step).toBe(2);

    // The same held-out loss from the adapters of step 2 in a view built without dropout.
    const c = req.config;
    const view = await buildTrainingView(source, mapArchitecture(source), { batch: c.batch, length: c.length, frozen: () => false, scratchDir: scratch.dir });
    const plain = await applyLora(view, { ...dropped, dropout: 0 });
    const withMask = await applyLora(view, dropped);
    const byName = new Map((saved?.parameters ?? []).map((p) => [p.name, Float32Array.from(p.weights)]));
    const weights = plain.view.trainable.map((p) => byName.get(p.name) ?? new Float32Array(0));
    const data = await TrainingData.load({ textPath: evalTextPath, tokenizerPath: STORIES.tokenizer, batch: c.batch, length: c.length, seed: 0 });
    const heldOut = async (lora: LoraView, draw: { step: number; micro: number } | null, dir: string): Promise<number> => {
      const s = await StepSession.open(compileEvalStep(lora.view, crossEntropyHead(c.batch, c.length, lora.view.vocab)), lora.view.trainable, weights, [c.batch, c.length], path.join(scratch.dir, dir));
      let sum = 0, count = 0;
      try {
        for (const b of data.inOrder()) {
          const r = await s.run(b, lora.dropoutFeeds(draw));
          sum += r.lossSum;
          count += r.tokenCount;
        }
      } finally {
        await s.close();
      }
      return sum / count;
    };
    const without = await heldOut(plain, null, 'eval-plain');
    const masked = await heldOut(withMask, { step: 2, micro: 0 }, 'eval-masked');
    expect(Math.abs((at2 ?? 0) - without) / without).toBeLessThan(1e-5);
    // With a training mask the held-out loss would be another one.
    expect(Math.abs(masked - without) / without).toBeGreaterThan(1e-4);
  }, 300_000);

  it('a cancelled run resumed draws the masks of the uninterrupted run: the same curve and weights', async () => {
    const straight = await trainModel(request('straight'), quietContext(scratch.dir));
    const req = request('cancelled');
    const abort = new AbortController();
    let cancelled = false;
    try {
      await trainModel({ ...req, onPoint: (p) => { if (p.step === 3) abort.abort(); } }, quietContext(scratch.dir, abort.signal));
    } catch (e) {
      cancelled = isWhittleError(e) && e.code === 'CANCELLED';
    }
    expect(cancelled).toBe(true);
    const resumed = await trainModel({ ...req, adapter: loraAdapter(dropped), resume: true }, quietContext(scratch.dir));
    expect(resumed.details.resumedFromStep).toBe(3);
    expect(resumed.details.curve.map((p) => p.loss)).toEqual(straight.details.curve.map((p) => p.loss));

    // Without dropout the same run takes another path (the masks did change the training).
    const plain = await trainModel({ ...request('plain'), adapter: loraAdapter({ ...dropped, dropout: 0 }) }, quietContext(scratch.dir));
    expect(plain.details.curve.at(-1)?.loss).not.toBe(straight.details.curve.at(-1)?.loss);
  }, 300_000);
});
