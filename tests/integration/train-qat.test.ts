/**
 * Quantization-aware training on stories260K, 4-bit block 32: the fake-quantized weights of the training
 * view equal the native RTN quantizer's dequantized weights; 40 steps of cross-entropy QAT on text after
 * the evaluation paragraphs, exported as MatMulNBits, score a lower perplexity (first 400 paragraphs)
 * than plain RTN and GPTQ; the export computes what the training forward computed; ov-freeze keeps the
 * o and v projections at their float values (still quantized at export), and the export's whittle.json
 * names the step 'qat' (grid, frozen roles) and the source the user's model.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quietContext } from '../../main/engine/job-context.ts';
import { dequantizeBlockwise, quantizeBlockwise } from '../../main/engine/native/index.ts';
import { DataType } from '../../main/engine/onnx/dtype.ts';
import type { OnnxModel } from '../../main/engine/onnx/proto-types.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { readTensorBytes } from '../../main/engine/onnx/tensor-data.ts';
import { writeModel } from '../../main/engine/onnx/writer.ts';
import { quantizeGptq } from '../../main/engine/quantize/gptq.ts';
import { quantizeWeightOnly } from '../../main/engine/quantize/weight-only.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { readManifest, sha256File } from '../../main/engine/rewrite/manifest.ts';
import { valueInfo } from '../../main/engine/train/graph-io.ts';
import { TrainingData } from '../../main/engine/train/data.ts';
import { applyFakeQuant, exportQuantized, type FakeQuantView } from '../../main/engine/train/qat.ts';
import { buildTrainingView, type TrainingView } from '../../main/engine/train/view.ts';
import { QuantizeGptqStep, QuantizeRtnStep } from '../../preload/recipe.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';
import { trainView, viewLoss } from '../helpers/view-training.ts';
import { calibrationTextFromEnd, FP32_PERPLEXITY, storiesPerplexity } from './quantize-gptq-helpers.ts';

const scratch = tempDir('whittle-qat-');
afterAll(() => scratch.cleanup());
let source: OnnxModel;
let trainText: string;
beforeAll(async () => {
  source = await readModel(STORIES.model);
  trainText = calibrationTextFromEnd(scratch.dir, 1000);
}, 30_000);

const view = (batch: number, length: number): Promise<TrainingView> => buildTrainingView(source, mapArchitecture(source), { batch, length, frozen: () => false, scratchDir: scratch.dir });
const rtn = (symmetric: boolean): QuantizeRtnStep => QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32, symmetric, accuracyLevel: 0 });

let fqCount = 0;
/** Ŵ of every fake-quantized weight, as the training graph computes it from the view's initial weights. */
async function fakeQuantized(q: FakeQuantView): Promise<Map<string, Float32Array>> {
  const graph = q.view.model.graph;
  if (!graph) throw new Error('no graph');
  const outputs = q.weights.map((w) => `${w}/fake_quant/dequantized`);
  const model = { ...q.view.model, graph: { ...graph, output: outputs.map((o) => valueInfo(o, q.view.meta.get(o) ?? { dtype: DataType.float32, shape: [] })) } };
  const dir = path.join(scratch.dir, `fq-${q.options.symmetric ? 'sym' : 'asym'}-${fqCount++}`);
  await mkdir(dir, { recursive: true });
  await writeModel(model, path.join(dir, 'm.onnx'), { externalData: 'auto', threshold: 1024, dataFileName: 'm.onnx.data' });
  const s = await ort.InferenceSession.create(path.join(dir, 'm.onnx'));
  const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', new BigInt64Array(q.view.batch * q.view.length).fill(1n), [q.view.batch, q.view.length]) };
  for (const p of q.view.trainable) feeds[p.name] = new ort.Tensor('float32', q.view.initial.get(p.name) ?? new Float32Array(0), p.dims);
  const out = await s.run(feeds, outputs);
  await s.release();
  return new Map(q.weights.map((w, i) => [w, out[outputs[i]].data as Float32Array]));
}

describe('quantization-aware training', () => {
  it('the fake-quantized weights are the RTN writer\'s grid: 4-bit block 32, symmetric and asymmetric', async () => {
    const base = await view(1, 8);
    for (const symmetric of [false, true]) {
      const q = applyFakeQuant(base, { bits: 4, blockSize: 32, symmetric });
      expect(q.weights).toHaveLength(35); // every linear projection of the 5 blocks; the tied LM head is not a MatMul weight
      expect(q.view.model.opsetImport.find((o) => (o.domain ?? '') === '')?.version).toBe(21);
      const got = await fakeQuantized(q);
      let total = 0, differ = 0;
      for (const name of q.weights) {
        const p = base.trainable.find((x) => x.name === name);
        if (!p) throw new Error(name);
        const w = base.initial.get(name) ?? new Float32Array(0);
        const ref = await dequantizeBlockwise(await quantizeBlockwise(w, { k: p.dims[0], n: p.dims[1], bits: 4, blockSize: 32, symmetric }));
        const g = got.get(name) ?? new Float32Array(0);
        total += ref.length;
        for (let i = 0; i < ref.length; i++) if (g[i] !== ref[i]) differ++;
      }
      // QuantizeLinear divides by the scale where the native writer multiplies by its reciprocal: they may
      // round apart only for values within an ulp of a rounding boundary.
      expect(differ / total, `symmetric ${symmetric}`).toBeLessThan(1e-4);
    }
  }, 30_000);

  it('a float16 model: the weights and the scales are rounded to float16 as the RTN writer does for it', async () => {
    const file = fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx');
    const half = await readModel(file);
    const base = await buildTrainingView(half, mapArchitecture(half), { batch: 1, length: 8, frozen: () => false, scratchDir: scratch.dir });
    const inits = new Map((half.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
    for (const symmetric of [false, true]) {
      const q = applyFakeQuant(base, { bits: 4, blockSize: 16, symmetric });
      expect(q.weights.length).toBeGreaterThan(0);
      const got = await fakeQuantized(q);
      let total = 0, differ = 0;
      for (const name of q.weights) {
        const p = base.trainable.find((x) => x.name === name);
        const t = inits.get(name);
        if (!p || !t) throw new Error(name);
        expect(t.dataType).toBe(DataType.float16);
        const bytes = await readTensorBytes(t);
        const bits16 = new Uint16Array(bytes.slice().buffer);
        const ref = await dequantizeBlockwise(await quantizeBlockwise(bits16, { k: p.dims[0], n: p.dims[1], bits: 4, blockSize: 16, symmetric, weightIsFp16: true }));
        const g = got.get(name) ?? new Float32Array(0);
        total += ref.length;
        for (let i = 0; i < ref.length; i++) if (g[i] !== ref[i]) differ++;
      }
      expect(differ / total, `symmetric ${symmetric}`).toBeLessThan(1e-3);
    }
  }, 30_000);

  it('40 steps of QAT (4-bit block 32, cross-entropy) export as MatMulNBits with a lower perplexity than RTN and GPTQ, and the export computes the training forward', async () => {
    const B = 8, T = 64;
    const q = applyFakeQuant(await view(B, T), { bits: 4, blockSize: 32, symmetric: false });
    const data = await TrainingData.load({ textPath: trainText, tokenizerPath: STORIES.tokenizer, batch: B, length: T, seed: 1 });
    const run = await trainView(q.view, data, { steps: 40, lr: 2e-4, dir: path.join(scratch.dir, 'train') });
    const ctx = quietContext(scratch.dir);
    const out = path.join(scratch.dir, 'qat');
    const result = await exportQuantized(source, q, run.weights, out, ctx, { tokenizerPath: STORIES.tokenizer });
    expect(result.quantized.map((w) => w.name).sort()).toEqual([...q.weights].sort());

    // The exported model's loss on a batch equals the QAT view's with the trained weights.
    const exported = await readModel(result.modelPath);
    expect(exported.proto.graph?.node.filter((n) => n.opType === 'MatMulNBits')).toHaveLength(35);
    const exportedView = await buildTrainingView(exported, mapArchitecture(exported), { batch: B, length: T, frozen: () => true, inference: true, scratchDir: scratch.dir });
    const batch = data.batchAt(data.start()).batch;
    const trainedLoss = await viewLoss(q.view, run.weights, batch, path.join(scratch.dir, 'loss-qat'));
    const exportedLoss = await viewLoss(exportedView, new Map(), batch, path.join(scratch.dir, 'loss-exported'));
    expect(Math.abs(trainedLoss - exportedLoss)).toBeLessThan(1e-4 * trainedLoss);

    const rtnModel = await quantizeWeightOnly(STORIES.model, rtn(false), path.join(scratch.dir, 'rtn'), ctx);
    const gptqModel = await quantizeGptq(STORIES.model, QuantizeGptqStep.parse({
      type: 'quantize', method: 'gptq', bits: 4, blockSize: 32, accuracyLevel: 0, calibration: { text: trainText, samples: 32, length: 128, seed: 0 },
    }), path.join(scratch.dir, 'gptq'), ctx, { tokenizerPath: STORIES.tokenizer });
    const pQat = await storiesPerplexity(result.modelPath, scratch.dir);
    const pRtn = await storiesPerplexity(rtnModel.modelPath, scratch.dir);
    const pGptq = await storiesPerplexity(gptqModel.modelPath, scratch.dir);
    console.log(`stories260K 4-bit block 32 (asym, accuracy_level 0): QAT 40 steps ${pQat.toFixed(4)}, GPTQ ${pGptq.toFixed(4)}, RTN ${pRtn.toFixed(4)}, fp32 ${FP32_PERPLEXITY}`);
    expect(pQat).toBeLessThan(pRtn);
    expect(pQat).toBeLessThan(pGptq);
  }, 120_000);

  it('ov-freeze keeps the o and v projections at their float values: they export exactly as RTN of the original, the trained ones do not', async () => {
    const B = 2, T = 32;
    const base = await view(B, T);
    const q = applyFakeQuant(base, { bits: 4, blockSize: 32, symmetric: false, freezeRoles: ['o', 'v'] });
    const frozen = q.view.frozen.filter((p) => p.role === 'o' || p.role === 'v').map((p) => p.name);
    expect(frozen).toHaveLength(10);
    expect(q.view.trainable.some((p) => p.role === 'o' || p.role === 'v')).toBe(false);
    expect(frozen.every((w) => q.weights.includes(w))).toBe(true);
    const data = await TrainingData.load({ textPath: trainText, tokenizerPath: STORIES.tokenizer, batch: B, length: T, seed: 2 });
    const run = await trainView(q.view, data, { steps: 3, lr: 1e-3, dir: path.join(scratch.dir, 'train-ov') });
    const ctx = quietContext(scratch.dir);
    const mine = await exportQuantized(source, q, run.weights, path.join(scratch.dir, 'qat-ov'), ctx);
    const plain = await quantizeWeightOnly(STORIES.model, rtn(false), path.join(scratch.dir, 'rtn-ov'), ctx);

    /** The packed weights of each MatMulNBits node, by the float weight it replaced (the node's B input names it). */
    const packed = async (file: string): Promise<Map<string, Uint8Array>> => {
      const m = await readModel(file);
      const inits = new Map((m.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
      const out = new Map<string, Uint8Array>();
      for (const n of m.proto.graph?.node ?? []) {
        if (n.opType !== 'MatMulNBits') continue;
        const t = inits.get(n.input[1]);
        if (t) out.set(n.input[1], await readTensorBytes(t));
      }
      return out;
    };
    const a = await packed(mine.modelPath), b = await packed(plain.modelPath);
    expect(a.size).toBe(35);
    const same = [...a.keys()].filter((k) => Buffer.from(a.get(k) ?? []).equals(Buffer.from(b.get(k) ?? [0])));
    const isOv = (k: string): boolean => /\.(o_proj|v_proj)\./.test(k);
    expect(same.filter(isOv)).toHaveLength(10);
    expect(same.filter((k) => !isOv(k))).toHaveLength(0);

    // whittle.json names the step KD-QAT with its grid and frozen roles, and the source the user's model (not the scratch float copy).
    const manifest = await readManifest(mine.outDir);
    expect(manifest.step).toMatchObject({ type: 'quantize', method: 'qat', bits: 4, blockSize: 32, symmetric: false, accuracyLevel: 0, freezeRoles: ['o', 'v'] });
    expect(manifest.source.path).toBe(path.resolve(STORIES.model));
    expect(manifest.source.sha256).toBe(await sha256File(STORIES.model));
    expect(manifest.source.bytes).toBe((await stat(STORIES.model)).size);
    expect((await readManifest(plain.outDir)).step).toMatchObject({ method: 'rtn' });
  }, 60_000);
});
