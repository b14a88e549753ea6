/**
 * The encoder's training view against the original model: on a padded batch with its attention mask the
 * view's class logits equal onnxruntime's on the original graph (the mask is a data input, not folded
 * to ones), and what sits in the padded positions changes neither the loss nor any gradient.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { readTensorFloat32 } from '../../main/engine/onnx/tensor-data.ts';
import { writeModel } from '../../main/engine/onnx/writer.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { classificationHead } from '../../main/engine/train/classification-head.ts';
import { intAttr, intsAttr, makeNode } from '../../main/engine/onnx/graph.ts';
import { ATTENTION_MASK, buildEncoderView, classLogitsOutput, withClassificationHead } from '../../main/engine/train/encoder-view.ts';
import { StepSession } from '../../main/engine/train/session.ts';
import { compileTrainStep } from '../../main/engine/train/step-graph.ts';
import { buildBertOnnx, randomBertWeights, type BertShape } from '../helpers/bert-onnx.ts';
import { tempDir } from '../helpers/fixtures.ts';

const tmp = tempDir('whittle-encoder-view-');
afterAll(() => tmp.cleanup());

const B = 3, T = 8;
const SHAPE: BertShape = { vocab: 50, dim: 32, heads: 4, hidden: 64, layers: 2, maxPositions: 16, classes: 3 };
// Rows of 8, 5 and 2 real tokens; the rest is padding.
const LENGTHS = [8, 5, 2];
const mask = BigInt64Array.from({ length: B * T }, (_, i) => (i % T < LENGTHS[Math.floor(i / T)] ? 1n : 0n));
const ids = (padId: (i: number) => number): BigInt64Array => BigInt64Array.from({ length: B * T }, (_, i) => BigInt(mask[i] === 1n ? 1 + ((i * 7) % 40) : padId(i)));

/** Checks the view of the classifier at `file` (see the header) and returns the original's logits. */
async function checkView(file: string, name: string): Promise<Float32Array> {
  const source = await readModel(file);
  const view = await buildEncoderView(source, mapArchitecture(source), { batch: B, length: T, frozen: () => false, scratchDir: tmp.dir });
  expect(view.model.graph!.node.filter((n) => n.domain === 'com.microsoft').map((n) => n.opType)).toEqual([]);
  expect(view.classes).toBe(3);
  expect(view.masked).toBe(true);
  expect(view.model.graph!.input.slice(0, 2).map((v) => v.name)).toEqual(['input_ids', ATTENTION_MASK]);

  // Forward: the view (weights fed as inputs) against the original graph.
  const original = await ort.InferenceSession.create(file);
  const idsPad0 = ids(() => 0);
  const dims = [B, T];
  const want = (await original.run({ input_ids: new ort.Tensor('int64', idsPad0, dims), attention_mask: new ort.Tensor('int64', mask, dims), token_type_ids: new ort.Tensor('int64', new BigInt64Array(B * T), dims) })).logits.data as Float32Array;
  await original.release();
  const viewFile = path.join(tmp.dir, `${name}-view.onnx`);
  await writeModel(view.model, viewFile);
  const viewSession = await ort.InferenceSession.create(viewFile);
  const weightFeeds = Object.fromEntries(view.trainable.map((p) => [p.name, new ort.Tensor('float32', view.initial.get(p.name)!, p.dims)]));
  const got = (await viewSession.run({ ...weightFeeds, input_ids: new ort.Tensor('int64', idsPad0, dims), attention_mask: new ort.Tensor('int64', mask, dims) }))[view.logits].data as Float32Array;
  await viewSession.release();
  expect(got.length).toBe(B * 3);
  for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i]), `logit ${i}`).toBeLessThan(1e-5);

  // Backward: the same real tokens with other ids in the padding give the same loss and gradients.
  const step = await StepSession.open(compileTrainStep(view, classificationHead({ batch: B, classes: 3 })), view.trainable, view.trainable.map((p) => view.initial.get(p.name)!), [B, T], path.join(tmp.dir, `${name}-step`));
  const labels = BigInt64Array.from([2n, 0n, 1n]);
  const extra = { [ATTENTION_MASK]: new ort.Tensor('int64', mask, dims) };
  const a = await step.run({ inputIds: idsPad0, labels, labelShape: [B] }, extra);
  const aGrads = a.grads.map((g) => g.slice());
  const b = await step.run({ inputIds: ids((i) => 3 + (i % 11)), labels, labelShape: [B] }, extra);
  await step.close();
  expect(b.lossSum).toBeCloseTo(a.lossSum, 5);
  expect(a.tokenCount).toBe(B);
  let compared = 0;
  view.trainable.forEach((p, k) => {
    // The word embedding included: rows of ids that appear only in padding get no gradient in either run.
    let worst = 0, scale = 0;
    for (let i = 0; i < aGrads[k].length; i++) { worst = Math.max(worst, Math.abs(aGrads[k][i] - b.grads[k][i])); scale = Math.max(scale, Math.abs(aGrads[k][i])); }
    expect(worst, p.name).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
    compared++;
  });
  expect(compared).toBe(view.trainable.length);
  expect(Math.max(...Array.from(aGrads[view.trainable.findIndex((p) => p.name === 'classifier.weight')], Math.abs))).toBeGreaterThan(0);
  return want;
}

describe('encoder training view', () => {
  it('gives the original class logits on a padded batch, and padding changes no loss or gradient', async () => {
    const file = path.join(tmp.dir, 'bert.onnx');
    await writeModel(buildBertOnnx(SHAPE, randomBertWeights(SHAPE, 4)), file);
    await checkView(file, 'standard');
  }, 60_000);

  it('decomposes the contrib layout (EmbedLayerNormalization, Attention with mask_index, SkipLayerNormalization, BiasGelu) alike', async () => {
    const weights = randomBertWeights(SHAPE, 4);
    const standard = path.join(tmp.dir, 'standard.onnx');
    const contrib = path.join(tmp.dir, 'contrib.onnx');
    await writeModel(buildBertOnnx(SHAPE, weights), standard);
    await writeModel(buildBertOnnx(SHAPE, weights, 'logits', { contrib: true }), contrib);
    const ops = new Set((await readModel(contrib)).proto.graph!.node.filter((n) => n.domain === 'com.microsoft').map((n) => n.opType));
    expect([...ops].sort()).toEqual(['Attention', 'BiasGelu', 'EmbedLayerNormalization', 'SkipLayerNormalization']);
    const a = await checkView(standard, 'standard');
    const b = await checkView(contrib, 'contrib');
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i]), `logit ${i}`).toBeLessThan(1e-4);
  }, 60_000);

  it('gives a feature-extraction export with a pooler output a classification head on its hidden state', async () => {
    const proto = buildBertOnnx(SHAPE, randomBertWeights(SHAPE, 4), 'hidden');
    const graph = proto.graph!;
    // A pooled [batch, D] output beside the hidden state, as sentence-transformer exports have.
    graph.node.push(makeNode({ opType: 'ReduceMean', inputs: ['last_hidden_state'], outputs: ['pooler_output'], name: 'pool', attributes: [intsAttr('axes', [1]), intAttr('keepdims', 0)] }));
    graph.output.push({ name: 'pooler_output', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch_size' }, { dimValue: SHAPE.dim }] } } }, metadataProps: [] });
    proto.opsetImport = [{ domain: '', version: 17 }];
    const file = path.join(tmp.dir, 'features.onnx');
    await writeModel(proto, file);
    const source = await readModel(file);
    expect(classLogitsOutput(source.proto.graph!)).toBeNull();
    const headed = withClassificationHead(source, 3, 9);
    expect(headed.proto.graph!.output.map((o) => o.name)).toEqual(['logits']);
    expect(headed.proto.graph!.initializer.find((t) => t.name === 'classifier.weight')?.dims.map(Number)).toEqual([SHAPE.dim, 3]);
    const view = await buildEncoderView(headed, mapArchitecture(headed), { batch: B, length: T, frozen: () => false, scratchDir: tmp.dir });
    expect(view.classes).toBe(3);
    expect(view.trainable.map((p) => p.name)).toContain('classifier.weight');
    // The same seed gives the same head.
    const weightOf = async (seed: number): Promise<Float32Array> => readTensorFloat32(withClassificationHead(source, 3, seed).proto.graph!.initializer.find((t) => t.name === 'classifier.weight')!);
    expect(Array.from(await weightOf(9))).toEqual(Array.from(await weightOf(9)));
    expect(Array.from(await weightOf(9))).not.toEqual(Array.from(await weightOf(10)));
  }, 60_000);
});
