/**
 * Contrib ops decomposed into standard ops on real exported graphs, compared with onnxruntime running the
 * contrib ops themselves on the same input ids (B = 2, T = 5, empty past): the GPT-2 export of
 * onnxruntime.transformers (EmbedLayerNormalization, Attention, SkipLayerNormalization, FastGelu; fp32)
 * and the ORT GenAI Llama (RotaryEmbedding, MultiHeadAttention, Skip/SimplifiedLayerNormalization; fp16
 * weights in external data). Every graph output (logits and presents) must agree.
 */
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { decomposeAndCompare } from '../helpers/decompose-check.ts';
import { decoderFeeds } from '../helpers/decoder-feeds.ts';
import { fixture, tempDir } from '../helpers/fixtures.ts';

const scratch = tempDir('whittle-decompose-');
afterAll(() => scratch.cleanup());
const B = 2;
const T = 5;

/** The feeds with the last `pad` positions of batch row 1 masked out (right padding). */
function rightPadded(feeds: Record<string, ort.Tensor>, pad: number): Record<string, ort.Tensor> {
  const mask = feeds.attention_mask;
  const [rows, cols] = mask.dims;
  const keep = (i: number): number => (Math.floor(i / cols) === 1 && i % cols >= cols - pad ? 0 : 1);
  const data = mask.type === 'int32'
    ? Int32Array.from({ length: rows * cols }, (_, i) => keep(i))
    : BigInt64Array.from({ length: rows * cols }, (_, i) => BigInt(keep(i)));
  return { ...feeds, attention_mask: new ort.Tensor(mask.type, data, [rows, cols]) };
}

function opCounts(ops: (string | undefined)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const op of ops) counts[op ?? ''] = (counts[op ?? ''] ?? 0) + 1;
  return counts;
}

describe('decomposeContribOps on exported models', () => {
  it('GPT-2 (onnxruntime.transformers, fp32): logits and presents equal the contrib ops', async () => {
    const model = await readModel(fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx'));
    const contrib = opCounts(model.proto.graph!.node.filter((n) => n.domain === 'com.microsoft').map((n) => n.opType));
    const { result, diffs, left } = await decomposeAndCompare(model.proto, decoderFeeds(model.proto, B, T, 1000), scratch.dir, 1e-4, 1e-5);
    expect(left).toEqual([]);
    expect(result.replaced).toEqual(contrib);
    expect(result.kept).toEqual([]);
    expect(diffs.map((d) => d.name).sort()).toEqual(['logits', 'present_0', 'present_1', 'present_2', 'present_3', 'present_4']);
    for (const d of diffs) expect(d.worst, `${d.name}: max |Δ| ${d.maxAbs}`).toBeLessThanOrEqual(1);
  });

  it('Llama (ORT GenAI, fp16, external data): logits and presents equal the contrib ops', async () => {
    const model = await readModel(fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx'));
    const contrib = opCounts(model.proto.graph!.node.filter((n) => n.domain === 'com.microsoft' || n.opType === 'SimplifiedLayerNormalization').map((n) => n.opType));
    const { result, diffs, left } = await decomposeAndCompare(model.proto, decoderFeeds(model.proto, B, T, 32000), scratch.dir, 1e-2, 1e-2);
    expect(left).toEqual([]);
    expect(result.replaced).toEqual(contrib);
    expect(diffs).toHaveLength(5);
    for (const d of diffs) expect(d.worst, `${d.name}: max |Δ| ${d.maxAbs}`).toBeLessThanOrEqual(1);
  });

  it('a right-padded attention mask gives the same outputs on both models', async () => {
    for (const [file, vocab, tol] of [['tiny-random-gpt2-fp32/past.onnx', 1000, 1e-4], ['tiny-random-LlamaForCausalLM-fp16/model.onnx', 32000, 1e-2]] as const) {
      const model = await readModel(fixture('onnx', 'ortgenai', ...file.split('/')));
      const { diffs, left } = await decomposeAndCompare(model.proto, rightPadded(decoderFeeds(model.proto, B, T, vocab), 2), scratch.dir, tol, tol);
      expect(left).toEqual([]);
      for (const d of diffs) expect(d.worst, `${file} ${d.name}: max |Δ| ${d.maxAbs}`).toBeLessThanOrEqual(1);
    }
  });
});
