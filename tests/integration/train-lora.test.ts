/**
 * LoRA on stories260K: the adapters' gradients against float64 finite differences of the adapted view,
 * the start (B = 0) equal to the base model, training that leaves the base weights untouched, and the
 * merged, written model equal to the adapted view.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { quietContext } from '../../main/engine/job-context.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import type { OnnxModel } from '../../main/engine/onnx/proto-types.ts';
import { readTensorFloat32 } from '../../main/engine/onnx/tensor-data.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { TrainingData } from '../../main/engine/train/data.ts';
import { crossEntropyHead } from '../../main/engine/train/loss-head.ts';
import { applyLora, writeLoraModel, type LoraView } from '../../main/engine/train/lora.ts';
import { StepSession } from '../../main/engine/train/session.ts';
import { compileTrainStep } from '../../main/engine/train/step-graph.ts';
import { buildTrainingView, type TrainingView } from '../../main/engine/train/view.ts';
import { finiteDifferenceError, largestEntries, referenceLossSum } from '../helpers/reference-loss.ts';
import { loadInitializers } from '../helpers/reference-ops.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { trainView, viewLogits, viewLoss } from '../helpers/view-training.ts';
import { calibrationTextFromEnd } from './quantize-gptq-helpers.ts';

const scratch = tempDir('whittle-lora-');
afterAll(() => scratch.cleanup());

let source: OnnxModel;
let base: TrainingView;
let lora: LoraView;
const B = 1, T = 8;
const ids = [1, 72, 304, 45, 260, 13, 411, 99];
const labels = [72, 304, 45, 260, 13, 411, 99, -1];
const batch = { inputIds: BigInt64Array.from(ids.map(BigInt)), labels: BigInt64Array.from(labels.map(BigInt)) };

beforeAll(async () => {
  source = await readModel(STORIES.model);
  base = await buildTrainingView(source, mapArchitecture(source), { batch: B, length: T, frozen: () => false, scratchDir: scratch.dir });
  lora = await applyLora(base, { roles: ['q', 'v'], rank: 4, alpha: 8, seed: 11 });
}, 60_000);

describe('LoRA adapters', () => {
  it('adds A [in, r] and B [r, out] to every q and v projection; only they train, and with B = 0 the loss is the base model\'s', async () => {
    const v = lora.view;
    expect(lora.adapters).toHaveLength(10); // 5 blocks × (q, v)
    expect(v.trainable.map((p) => p.name).sort()).toEqual(lora.adapters.flatMap((a) => [a.a, a.b]).sort());
    const q0 = lora.adapters.find((a) => a.weight.includes('layers.0.self_attn.q_proj')) ?? lora.adapters[0];
    expect(v.trainable.find((p) => p.name === q0.a)?.dims).toEqual([64, 4]);
    expect(v.trainable.find((p) => p.name === q0.b)?.dims).toEqual([4, 64]);
    const a0 = v.initial.get(q0.a) ?? new Float32Array(0);
    expect(Math.max(...a0.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(64));
    expect(Math.max(...a0.map(Math.abs))).toBeGreaterThan(0.5 / Math.sqrt(64));
    expect((v.initial.get(q0.b) ?? []).every((x) => x === 0)).toBe(true);
    // The base weights are initializers of the adapted view.
    expect(v.model.graph?.input.some((i) => i.name === q0.weight)).toBe(false);

    const baseLoss = await viewLoss(base, base.initial, batch, path.join(scratch.dir, 'base-loss'));
    const loraLoss = await viewLoss(v, v.initial, batch, path.join(scratch.dir, 'lora-loss'));
    expect(Math.abs(loraLoss - baseLoss)).toBeLessThan(1e-6 * baseLoss);
  }, 60_000);

  it('the gradients of A and B match float64 finite differences (relative error ≤ 1e-3)', async () => {
    const v = lora.view;
    // B ≠ 0 so that A has a gradient too.
    const start = new Map(v.trainable.map((p) => [p.name, Float32Array.from(v.initial.get(p.name) ?? [])]));
    let seed = 3;
    for (const ad of lora.adapters) {
      const b = start.get(ad.b) ?? new Float32Array(0);
      for (let i = 0; i < b.length; i++) { seed = (seed * 1103515245 + 12345) % 2147483648; b[i] = Math.fround(((seed / 2147483648) * 2 - 1) * 0.05); }
    }
    const list = v.trainable.map((p) => start.get(p.name) ?? new Float32Array(0));
    const session = await StepSession.open(compileTrainStep(v, crossEntropyHead(B, T, v.vocab)), v.trainable, list, [B, T], path.join(scratch.dir, 'grad'));
    const got = await session.run(batch);
    const grads = got.grads.map((g) => Float64Array.from(g));
    await session.close();

    const constants = await loadInitializers(v.model.graph ?? (() => { throw new Error('no graph'); })());
    const weights = new Map([...start].map(([k, w]) => [k, Float64Array.from(w)]));
    const lossAt = referenceLossSum(v, constants, weights, ids, labels, B, T);
    expect(Math.abs(got.lossSum - lossAt) / lossAt).toBeLessThan(1e-5);
    const h = 1e-4;
    const picked = lora.adapters.filter((a) => /layers\.(0|4)\./.test(a.weight)).flatMap((a) => [a.a, a.b]);
    expect(picked).toHaveLength(8);
    for (const name of picked) {
      const i = v.trainable.findIndex((p) => p.name === name);
      const w = weights.get(name) ?? new Float64Array(0);
      const g = grads[i];
      const { error, norm } = finiteDifferenceError(() => referenceLossSum(v, constants, weights, ids, labels, B, T), w, g, largestEntries(g, 3), h);
      expect(norm, name).toBeGreaterThan(0);
      expect(error, name).toBeLessThan(1e-3);
    }
  }, 120_000);

  it('training only the adapters leaves W untouched, and the merged written model computes the adapted view\'s logits', async () => {
    const v = lora.view;
    const textPath = calibrationTextFromEnd(scratch.dir, 200);
    const data = await TrainingData.load({ textPath, tokenizerPath: STORIES.tokenizer, batch: B, length: T, seed: 5 });
    const before = new Map<string, Float32Array>();
    for (const t of v.model.graph?.initializer ?? []) if (lora.adapters.some((a) => a.weight === t.name)) before.set(t.name ?? '', Float32Array.from(await readTensorFloat32(t)));
    const run = await trainView(v, data, { steps: 6, lr: 1e-2, dir: path.join(scratch.dir, 'train') });
    expect(run.losses.length).toBe(6);
    for (const t of v.model.graph?.initializer ?? []) {
      const w = before.get(t.name ?? '');
      if (w) expect(await readTensorFloat32(t)).toEqual(w);
    }
    for (const ad of lora.adapters) expect((run.weights.get(ad.b) ?? []).some((x) => x !== 0)).toBe(true);

    const out = path.join(scratch.dir, 'merged');
    await writeLoraModel(source, lora, run.weights, out, quietContext(scratch.dir), { type: 'train' }, { deliver: 'final' });
    const written = await readModel(path.join(out, 'model.onnx'));
    const merged = await buildTrainingView(written, mapArchitecture(written), { batch: B, length: T, frozen: () => true, inference: true, scratchDir: scratch.dir });
    const ids16 = batch.inputIds;
    const adapted = await viewLogits(v, run.weights, ids16, path.join(scratch.dir, 'l1'));
    const fromMerged = await viewLogits(merged, new Map(), ids16, path.join(scratch.dir, 'l2'));
    const original = await viewLogits(base, base.initial, ids16, path.join(scratch.dir, 'l3'));
    let maxDiff = 0, moved = 0;
    for (let i = 0; i < adapted.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(adapted[i] - fromMerged[i]));
      moved = Math.max(moved, Math.abs(adapted[i] - original[i]));
    }
    expect(moved).toBeGreaterThan(1e-2);
    expect(maxDiff).toBeLessThan(1e-4);
  }, 120_000);
});
