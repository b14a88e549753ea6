/**
 * Recovery of a MatMulNBits model through its own quantization, on stories260K (4-bit, block 32):
 *   - the dequantized model's training view, fake-quantized on the fixed grid, computes the quantized
 *     model's logits (onnxruntime's MatMulNBits) at step 0, and writing the untrained weights back on the
 *     grid gives back every code;
 *   - GPTQ, then 40 steps of KD from the original with only the quantized weights training: perplexity
 *     on the first 400 paragraphs closes more than half the gap to the float model, the output is
 *     MatMulNBits with the same scales and zero points (only codes moved);
 *   - LoRA over the RTN result, merged and re-quantized with RTN: MatMulNBits that onnxruntime loads,
 *     its perplexity recorded against before.
 * Training text: paragraphs after the first 400.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QuantizeGptqStep, QuantizeRtnStep } from '../../preload/recipe.ts';
import { distillModel } from '../../main/engine/distill/distill-model.ts';
import { isWhittleError } from '../../main/engine/errors.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { readTensorBytes } from '../../main/engine/onnx/tensor-data.ts';
import { quantizeGptq } from '../../main/engine/quantize/gptq.ts';
import { quantizeWeightOnly } from '../../main/engine/quantize/weight-only.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';
import { applyFakeQuant } from '../../main/engine/train/qat.ts';
import { writeDequantizedModel, writeOnGrid } from '../../main/engine/train/quantized-student.ts';
import type { TrainConfig } from '../../main/engine/train/types.ts';
import { buildTrainingView } from '../../main/engine/train/view.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { viewLogits } from '../helpers/view-training.ts';
import { calibrationTextFromEnd, FP32_PERPLEXITY, storiesPerplexity } from './quantize-gptq-helpers.ts';

const tmp = tempDir('whittle-distill-quantized-');
afterAll(() => tmp.cleanup());
let text: string;
beforeAll(() => { text = calibrationTextFromEnd(tmp.dir, 1000); });

const B = 2, T = 16;
/** Deterministic token ids below the vocabulary (512). */
const ids = BigInt64Array.from({ length: B * T }, (_, i) => BigInt(1 + ((i * 37 + 11) % 500)));

/** Logits [B·T·V] of a stories260K-layout model from onnxruntime, with an empty past. */
async function sessionLogits(modelPath: string): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(modelPath);
  try {
    const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', ids, [B, T]) };
    for (const name of s.inputNames) if (name.startsWith('past_key_values')) feeds[name] = new ort.Tensor('float32', new Float32Array(0), [B, 4, 0, 8]);
    const out = await s.run(feeds, ['logits']);
    return Float32Array.from(out.logits.data as Float32Array);
  } finally {
    await s.release();
  }
}

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

const config = (steps: number, lr: number): TrainConfig => ({
  textPath: text, tokenizerPath: STORIES.tokenizer, steps, batch: 8, length: 64, accumulate: 1,
  lr, warmupSteps: 4, minLrRatio: 0.1, weightDecay: 0, clipNorm: 1, freeze: [], keepSparsity: true, evalEvery: 1000, seed: 0, checkpointEvery: 0,
});

describe('recovery of a MatMulNBits model on its own grid', () => {
  it('refuses before any work: re-quantization without LoRA, KD-QAT settings on a quantized student, the QDQ format', async () => {
    const ctx = quietContext(tmp.dir);
    const rtn = await quantizeWeightOnly(STORIES.model, QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 }), path.join(tmp.dir, 'rtn-refused'), ctx, { tokenizerPath: STORIES.tokenizer });
    const qdq = await quantizeWeightOnly(STORIES.model, QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32, format: 'qdq' }), path.join(tmp.dir, 'qdq-refused'), ctx, { tokenizerPath: STORIES.tokenizer });
    const base = {
      teacherPath: STORIES.model, loss: { temperature: 2, alpha: 0.5, reverse: false, hidden: 0 }, signal: { kind: 'logits' as const },
      config: config(2, 1e-3), deliver: 'final' as const, checkpointDir: path.join(tmp.dir, 'ckpt-refused'), resume: false,
    };
    const cases: [Parameters<typeof distillModel>[0], RegExp][] = [
      [{ ...base, student: { kind: 'model', path: rtn.modelPath }, requantize: { method: 'rtn' }, outDir: path.join(tmp.dir, 'never-1') }, /Re-quantization applies to LoRA adapters .* this run has no LoRA adapters/],
      [{ ...base, student: { kind: 'model', path: rtn.modelPath }, qat: { bits: 4, blockSize: 32, symmetric: false, freezeRoles: [] }, outDir: path.join(tmp.dir, 'never-2') }, /already quantized \(MatMulNBits\); KD-QAT quantizes a float model/],
      [{ ...base, student: { kind: 'model', path: qdq.modelPath }, outDir: path.join(tmp.dir, 'never-3') }, /stores quantized weights \(DequantizeLinear/],
    ];
    for (const [request, message] of cases) {
      const err = await distillModel(request, ctx).catch((e: unknown) => e);
      expect(isWhittleError(err) && err.code).toBe('INVALID_INPUT');
      expect((err as Error).message).toMatch(message);
      expect(existsSync(request.outDir)).toBe(false);
    }
  }, 60_000);


  it('step 0: the fixed-grid training view computes the MatMulNBits logits, and writes back every code unchanged', async () => {
    const ctx = quietContext(tmp.dir);
    for (const symmetric of [false, true]) {
      const tag = symmetric ? 'sym' : 'asym';
      const q = await quantizeWeightOnly(STORIES.model, QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32, symmetric, accuracyLevel: 0 }), path.join(tmp.dir, `rtn-${tag}`), ctx, { tokenizerPath: STORIES.tokenizer });
      const deq = await writeDequantizedModel(q.modelPath, path.join(tmp.dir, `deq-${tag}`), ctx);
      expect(deq.grids.size).toBe(35);
      const float = await readModel(deq.folder.modelPath);
      expect(float.proto.graph!.node.some((n) => n.opType === 'MatMulNBits')).toBe(false);
      const view = await buildTrainingView(float, mapArchitecture(float), { batch: B, length: T, frozen: () => false, scratchDir: tmp.dir });
      const fq = applyFakeQuant(view, { grid: 'fixed', grids: deq.grids });
      expect(fq.weights).toHaveLength(35);

      const expected = await sessionLogits(q.modelPath);
      const plain = maxAbsDiff(await sessionLogits(deq.folder.modelPath), expected);
      const trained = maxAbsDiff(await viewLogits(fq.view, new Map(), ids, path.join(tmp.dir, `view-${tag}`)), expected);
      console.info(`MatMulNBits 4-bit g32 ${tag}: max |Δlogit| dequantized model ${plain.toExponential(2)}, fixed-grid training view ${trained.toExponential(2)}`);
      expect(maxAbsDiff(await sessionLogits(STORIES.model), expected)).toBeGreaterThan(1e-2); // the grid changes the logits
      expect(plain).toBeLessThanOrEqual(1e-4);
      expect(trained).toBeLessThanOrEqual(1e-4);

      const back = await writeOnGrid(q.modelPath, deq.grids, fq.view.trainable, fq.view.trainable.map((p) => fq.view.initial.get(p.name)!), path.join(tmp.dir, `back-${tag}`), ctx, { type: 'train' }, {});
      expect(back.result).toHaveLength(35);
      expect(back.result.reduce((a, r) => a + r.changed, 0)).toBe(0);
      expect(maxAbsDiff(await sessionLogits(back.modelPath), expected)).toBeLessThanOrEqual(1e-6);
    }
  }, 120_000);

  it('GPTQ 4-bit, then 40 steps of KD from the original on the grid alone: perplexity improves, the same scales and zero points, only codes moved', async () => {
    const ctx = quietContext(tmp.dir);
    const gptq = await quantizeGptq(STORIES.model, QuantizeGptqStep.parse({
      type: 'quantize', method: 'gptq', bits: 4, blockSize: 32, accuracyLevel: 0, calibration: { text, samples: 32, length: 128, seed: 0 },
    }), path.join(tmp.dir, 'gptq'), ctx, { tokenizerPath: STORIES.tokenizer });
    // Norms and the (tied) embedding frozen: whatever improves, the codes did it.
    const c = { ...config(40, 1e-3), freeze: ['norm', 'embedding'] };
    const r = await distillModel({
      teacherPath: STORIES.model, student: { kind: 'model', path: gptq.modelPath }, loss: { temperature: 2, alpha: 0.5, reverse: false, hidden: 0 }, signal: { kind: 'logits' },
      config: c, outDir: path.join(tmp.dir, 'recovered'), deliver: 'final', checkpointDir: path.join(tmp.dir, 'ckpt-recover'), resume: false,
    }, ctx);
    const before = await storiesPerplexity(gptq.modelPath, tmp.dir);
    const after = await storiesPerplexity(r.folder.modelPath, tmp.dir);

    const src = (await readModel(gptq.modelPath)).proto.graph!;
    const out = (await readModel(r.folder.modelPath)).proto.graph!;
    expect(out.node.map((n) => n.opType)).toEqual(src.node.map((n) => n.opType));
    expect(out.node.filter((n) => n.opType === 'MatMulNBits')).toHaveLength(35);
    const outInits = new Map(out.initializer.map((t) => [t.name, t]));
    let codes = 0, moved = 0, codeBytes = 0;
    for (const t of src.initializer) {
      const o = outInits.get(t.name)!;
      expect(o.dims.map(Number)).toEqual(t.dims.map(Number));
      const a = await readTensorBytes(t), b = await readTensorBytes(o);
      if (/_Q4$/.test(t.name ?? '')) {
        codeBytes += a.length;
        for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) moved++;
      } else {
        expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true); // scales and zero points (the grid GPTQ chose), norms, embedding
      }
    }
    const manifest = await readManifest(r.folder.outDir);
    for (const w of manifest.weights.filter((x) => x.status === 'quantized')) codes += Number(/: (\d+) of/.exec(w.reason ?? '')?.[1] ?? Number.NaN);
    console.info(`recovery on the grid: original ${FP32_PERPLEXITY.toFixed(4)}, GPTQ 4-bit g32 ${before.toFixed(4)}, recovered (${c.steps} steps KD) ${after.toFixed(4)}; ${codes} codes moved (${moved} of ${codeBytes} code bytes changed)`);
    expect(after).toBeLessThan(before);
    expect(before - after).toBeGreaterThan((before - FP32_PERPLEXITY) / 2);
    expect(codes).toBeGreaterThan(0);
    expect(moved).toBeGreaterThan(0);
  }, 300_000);

  it('LoRA over the RTN result, merged and re-quantized with RTN: MatMulNBits that onnxruntime runs, other weights untouched', async () => {
    const ctx = quietContext(tmp.dir);
    const rtn = await quantizeWeightOnly(STORIES.model, QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32, accuracyLevel: 0 }), path.join(tmp.dir, 'rtn-lora'), ctx, { tokenizerPath: STORIES.tokenizer });
    const c = config(40, 2e-3);
    const r = await distillModel({
      teacherPath: STORIES.model, student: { kind: 'model', path: rtn.modelPath }, loss: { temperature: 2, alpha: 0.5, reverse: false, hidden: 0 }, signal: { kind: 'logits' },
      lora: { rank: 4, alpha: 8, roles: ['q', 'v', 'down'] }, requantize: { method: 'rtn' },
      config: c, outDir: path.join(tmp.dir, 'qlora'), deliver: 'final', checkpointDir: path.join(tmp.dir, 'ckpt-qlora'), resume: false,
    }, ctx);
    const src = (await readModel(rtn.modelPath)).proto.graph!;
    const out = (await readModel(r.folder.modelPath)).proto.graph!;
    expect(out.node.filter((n) => n.opType === 'MatMulNBits')).toHaveLength(35);
    const outInits = new Map(out.initializer.map((t) => [t.name, t]));
    const adapted = /layers\.\d+\.(self_attn\.[qv]_proj|mlp\.down_proj)\.weight_t_/;
    let changedTensors = 0;
    for (const t of src.initializer) {
      const o = outInits.get(t.name)!;
      expect(o.dims.map(Number)).toEqual(t.dims.map(Number));
      const same = Buffer.from(await readTensorBytes(o)).equals(Buffer.from(await readTensorBytes(t)));
      if (adapted.test(t.name ?? '')) { if (!same) changedTensors++; } else expect(same, t.name).toBe(true);
    }
    expect(changedTensors).toBeGreaterThan(15); // codes and scales of the 15 adapted weights
    const manifest = await readManifest(r.folder.outDir);
    expect(manifest.requantize).toMatchObject({ method: 'rtn' });

    const before = await storiesPerplexity(rtn.modelPath, tmp.dir);
    const after = await storiesPerplexity(r.folder.modelPath, tmp.dir);
    console.info(`QLoRA (r 4, q v down, ${c.steps} steps KD) over RTN 4-bit g32, re-quantized with RTN: perplexity ${before.toFixed(4)} → ${after.toFixed(4)} (original ${FP32_PERPLEXITY.toFixed(4)})`);
    expect(Number.isFinite(after)).toBe(true);
  }, 300_000);

  it('LoRA re-quantized with GPTQ: the adapted weights on GPTQ\'s grid from the calibration text, the others untouched', async () => {
    const ctx = quietContext(tmp.dir);
    const rtn = await quantizeWeightOnly(STORIES.model, QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32, symmetric: true, accuracyLevel: 0 }), path.join(tmp.dir, 'rtn-lora-gptq'), ctx, { tokenizerPath: STORIES.tokenizer });
    const r = await distillModel({
      teacherPath: STORIES.model, student: { kind: 'model', path: rtn.modelPath }, loss: { temperature: 2, alpha: 0.5, reverse: false, hidden: 0 }, signal: { kind: 'logits' },
      lora: { rank: 2, alpha: 4, roles: ['up'] }, requantize: { method: 'gptq', calibration: { text, samples: 8, length: 64, seed: 0 } },
      config: { ...config(4, 2e-3), batch: 2, length: 32 }, outDir: path.join(tmp.dir, 'qlora-gptq'), deliver: 'final', checkpointDir: path.join(tmp.dir, 'ckpt-qlora-gptq'), resume: false,
    }, ctx);
    const src = (await readModel(rtn.modelPath)).proto.graph!;
    const out = (await readModel(r.folder.modelPath)).proto.graph!;
    expect(out.node.filter((n) => n.opType === 'MatMulNBits')).toHaveLength(35);
    const outInits = new Map(out.initializer.map((t) => [t.name, t]));
    for (const t of src.initializer) {
      const same = Buffer.from(await readTensorBytes(outInits.get(t.name)!)).equals(Buffer.from(await readTensorBytes(t)));
      if (/mlp\.up_proj\.weight_t_scales$/.test(t.name ?? '')) expect(same, t.name).toBe(false);
      else if (!/mlp\.up_proj\.weight_t_Q4$/.test(t.name ?? '')) expect(same, t.name).toBe(true);
    }
    expect((await readManifest(r.folder.outDir)).requantize).toMatchObject({ method: 'gptq' });
    expect(Number.isFinite(await storiesPerplexity(r.folder.modelPath, tmp.dir))).toBe(true);
  }, 120_000);
});
