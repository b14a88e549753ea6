/**
 * Sequential calibration on a real model (stories260K) with real onnxruntime sessions for every graph
 * segment: with weights left as they are it sees exactly the activations of one pass over the model; with
 * a weight changed at one level, the later levels see the activations of the model with that change.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { activationInputsFor, collectCalibrationStats, type TensorStats } from '../../main/engine/calibrate/index.ts';
import { calibrateSequentially, type WeightValue } from '../../main/engine/calibrate/sequential.ts';
import { isWhittleError } from '../../main/engine/errors.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { writeModel } from '../../main/engine/onnx/writer.ts';
import { planTargets } from '../../main/engine/quantize/targets.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';

const scratch = tempDir('whittle-sequential-');
afterAll(() => scratch.cleanup());
const calibration = { text: STORIES.text, samples: 6, length: 32, seed: 3 };

function expectSameStats(a: TensorStats, b: TensorStats, label: string, tolerance = 1e-4): void {
  expect(a.rows, label).toBe(b.rows);
  expect(a.d, label).toBe(b.d);
  expect(a.min, label).toBeCloseTo(b.min as number, 4);
  expect(a.max, label).toBeCloseTo(b.max as number, 4);
  const l2a = a.l2 as Float64Array;
  const l2b = b.l2 as Float64Array;
  let worst = 0;
  for (let j = 0; j < l2a.length; j++) worst = Math.max(worst, Math.abs(l2a[j] - l2b[j]) / Math.max(1e-6, Math.abs(l2b[j])));
  expect(worst, `${label}: largest relative difference of Σx²`).toBeLessThan(tolerance);
}

/** Sequential calibration that records every level's statistics; `change` gives new weights for a level. */
async function sequentialStats(modelPath: string, change: (weight: string) => WeightValue | null = () => null) {
  const model = await readModel(modelPath);
  const targets = planTargets(model.proto.graph!, { blockSize: 16, keep: [] }).targets;
  const seen = new Map<string, TensorStats>();
  const levels: string[][] = [];
  const summary = await calibrateSequentially({
    model, targets, accumulators: ['minmax', 'l2'], calibration, tokenizerPath: STORIES.tokenizer,
    compress: async (level) => {
      levels.push(level.targets.map((t) => t.weight));
      for (const [w, s] of level.stats) seen.set(w, s);
      const out = new Map<string, WeightValue>();
      for (const t of level.targets) { const v = change(t.weight); if (v) out.set(t.weight, v); }
      return out;
    },
  }, quietContext(scratch.dir));
  return { model, targets, seen, levels, summary };
}

async function onePassStats(modelPath: string) {
  const model = await readModel(modelPath);
  const targets = planTargets(model.proto.graph!, { blockSize: 16, keep: [] }).targets;
  const inputs = activationInputsFor(model, targets);
  const stats = await collectCalibrationStats({ modelPath, tensors: inputs.map((i) => i.tensor), accumulators: ['minmax', 'l2'], calibration, tokenizerPath: STORIES.tokenizer }, quietContext(scratch.dir));
  return new Map(inputs.flatMap((i) => i.weights.map((w) => [w, stats.get(i.tensor) as TensorStats] as const)));
}

describe('sequential calibration', () => {
  it('with the weights unchanged, every level sees what one pass over the model sees', async () => {
    const { seen, levels, summary, targets } = await sequentialStats(STORIES.model);
    const reference = await onePassStats(STORIES.model);
    expect(levels.flat().sort()).toEqual(targets.map((t) => t.weight).sort());
    expect(summary.levels).toBe(levels.length);
    expect(levels.length).toBe(4 * 5); // q/k/v, o, gate/up, down in each of the 5 blocks
    for (const t of targets) expectSameStats(seen.get(t.weight) as TensorStats, reference.get(t.weight) as TensorStats, t.weight);
    // Only boundary tensors are held: a few [samples × length × 64] float tensors, never every activation.
    expect(summary.peakBoundaryBytes).toBeLessThanOrEqual(4 * 6 * 32 * 256 * 4);
    expect(summary.peakBoundaryBytes).toBeGreaterThan(0);
  });

  it('later levels see the outputs of the weights as changed at earlier levels', async () => {
    const original = await readModel(STORIES.model);
    const targets = planTargets(original.proto.graph!, { blockSize: 16, keep: [] }).targets;
    const changed = targets.find((t) => /layers\.1\..*o_proj/.test(t.weight)) ?? targets[7];
    const zeros = new Float32Array(changed.k * changed.n);
    const { seen } = await sequentialStats(STORIES.model, (w) => (w === changed.weight ? zeros : null));

    // The same change made in the file: one pass over that model is the reference.
    const init = original.proto.graph!.initializer.find((t) => t.name === changed.weight)!;
    init.data = { kind: 'bytes', bytes: new Uint8Array(zeros.buffer) };
    mkdirSync(path.join(scratch.dir, 'zeroed'));
    const file = path.join(scratch.dir, 'zeroed', 'model.onnx');
    await writeModel(original, file);
    const reference = await onePassStats(file);
    const before = await onePassStats(STORIES.model);
    let differs = 0;
    for (const t of targets) {
      expectSameStats(seen.get(t.weight) as TensorStats, reference.get(t.weight) as TensorStats, t.weight);
      if ((reference.get(t.weight) as TensorStats).max !== (before.get(t.weight) as TensorStats).max) differs++;
    }
    expect(differs).toBeGreaterThan(10); // the change reaches every later level
  });

  it('checks the calibration text before any work', async () => {
    const model = await readModel(STORIES.model);
    const targets = planTargets(model.proto.graph!, { blockSize: 16, keep: [] }).targets;
    let called = false;
    const run = calibrateSequentially({
      model, targets, accumulators: ['l2'], calibration: { ...calibration, text: path.join(scratch.dir, 'missing.txt') }, tokenizerPath: STORIES.tokenizer,
      compress: async () => { called = true; return new Map(); },
    }, quietContext(scratch.dir));
    await expect(run).rejects.toSatisfy((e) => isWhittleError(e) && e.code === 'NOT_FOUND');
    expect(called).toBe(false);
  });

  it('stops when cancelled', async () => {
    const model = await readModel(STORIES.model);
    const targets = planTargets(model.proto.graph!, { blockSize: 16, keep: [] }).targets;
    const abort = new AbortController();
    let levels = 0;
    const run = calibrateSequentially({
      model, targets, accumulators: ['l2'], calibration, tokenizerPath: STORIES.tokenizer,
      compress: async () => { if (++levels === 3) abort.abort(); return new Map(); },
    }, quietContext(scratch.dir, abort.signal));
    await expect(run).rejects.toSatisfy((e) => isWhittleError(e) && e.code === 'CANCELLED');
    expect(levels).toBe(3);
  });
});

describe('sequential calibration of other graph layouts', () => {
  const layouts = [
    // float16 activations: onnxruntime fuses a whole graph and its segments differently, so sums differ by fp16 rounding.
    { name: 'ORT GenAI fp16 (MultiHeadAttention, RotaryEmbedding, SkipSimplifiedLayerNormalization)', dir: ['onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16'], file: 'model.onnx', tokenizer: null, tolerance: 2e-3 },
    // Random weights over a 1000-token vocabulary: any tokenizer with fewer ids feeds it.
    { name: 'onnxruntime.transformers GPT-2 (Attention, EmbedLayerNormalization, past_N)', dir: ['onnx', 'ortgenai', 'tiny-random-gpt2-fp32'], file: 'past.onnx', tokenizer: STORIES.tokenizer, tolerance: 1e-4 },
  ];
  for (const layout of layouts) {
    it(`${layout.name}: with the weights unchanged, every level sees what one pass sees`, async () => {
      const dir = fixture(...layout.dir);
      const modelPath = path.join(dir, layout.file);
      const tokenizerPath = layout.tokenizer ?? path.join(dir, 'tokenizer.json');
      const model = await readModel(modelPath);
      const targets = planTargets(model.proto.graph!, { blockSize: 16, keep: [] }).targets;
      expect(targets.length).toBeGreaterThan(0);
      const seen = new Map<string, TensorStats>();
      await calibrateSequentially({
        model, targets, accumulators: ['minmax', 'l2'], calibration, tokenizerPath,
        compress: async (level) => { for (const [w, s] of level.stats) seen.set(w, s); return new Map(); },
      }, quietContext(scratch.dir));
      const inputs = activationInputsFor(model, targets);
      const stats = await collectCalibrationStats({ modelPath, tensors: inputs.map((i) => i.tensor), accumulators: ['minmax', 'l2'], calibration, tokenizerPath }, quietContext(scratch.dir));
      for (const i of inputs) for (const w of i.weights) expectSameStats(seen.get(w) as TensorStats, stats.get(i.tensor) as TensorStats, w, layout.tolerance);
    });
  }
});
