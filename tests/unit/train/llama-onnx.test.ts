/**
 * The llama2.c-shaped ONNX generator (tests/helpers/llama-onnx.ts): its graphs load in onnxruntime-node,
 * give the logits of a plain reference forward of the same weights (with and without a KV cache, GQA,
 * tied and untied heads), are mapped as Llama by the architecture map, and written from the stories260K
 * checkpoint they give the logits of the fixture's own ONNX export.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { readTensorFloat32 } from '../../../main/engine/onnx/tensor-data.ts';
import { writeModel } from '../../../main/engine/onnx/writer.ts';
import { mapArchitecture } from '../../../main/engine/rewrite/architecture.ts';
import { fixture, STORIES, tempDir } from '../../helpers/fixtures.ts';
import { buildLlamaOnnx, headSize, parameterCount, randomLlamaWeights, ropeTables, writeLlama2cOnnx, writeLlamaOnnx, type LlamaShape } from '../../helpers/llama-onnx.ts';
import { llamaReferenceLogits } from '../../helpers/llama-reference.ts';

const scratch = tempDir('whittle-llama-onnx-');
afterAll(() => scratch.cleanup());

let folders = 0;
const folder = async (): Promise<string> => {
  const dir = path.join(scratch.dir, `m${folders++}`);
  await mkdir(dir);
  return dir;
};

/** Runs the whole sequence at once; with a cache, feeds empty past tensors. */
async function onnxLogits(model: string, s: LlamaShape, tokens: number[], cache: boolean): Promise<{ logits: Float32Array; dims: readonly number[]; present: ort.Tensor | null }> {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  try {
    const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [1, tokens.length]) };
    if (cache) {
      for (let l = 0; l < s.layers; l++) {
        for (const kind of ['key', 'value']) feeds[`past_key_values.${l}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [1, s.kvHeads, 0, headSize(s)]);
      }
    }
    const out = await session.run(feeds);
    return { logits: out.logits.data as Float32Array, dims: out.logits.dims, present: cache ? out[`present.${s.layers - 1}.key`] : null };
  } finally {
    await session.release();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const maxAbs = (a: Float32Array): number => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

const GQA: LlamaShape = { dim: 48, layers: 2, heads: 6, kvHeads: 2, hidden: 80, vocab: 97, maxSeq: 32, tied: true };
const MHA: LlamaShape = { dim: 32, layers: 3, heads: 4, kvHeads: 4, hidden: 64, vocab: 61, maxSeq: 16, tied: false };
const TOKENS = [1, 5, 17, 42, 3, 60, 8, 33, 12];

describe('writeLlamaOnnx', () => {
  for (const [label, shape] of [['GQA, tied', GQA], ['MHA, untied', MHA]] as const) {
    for (const cache of [true, false]) {
      it(`gives the reference forward's logits (${label}, ${cache ? 'KV cache' : 'no cache'})`, async () => {
        // Larger-than-init weights so attention and the MLP move the logits visibly.
        const weights = randomLlamaWeights(shape, 7);
        for (const L of weights.layers) for (const m of [L.wq, L.wk, L.wv, L.wo, L.gate, L.up, L.down]) m.forEach((v, i) => (m[i] = v * 10));
        const written = await writeLlamaOnnx(await folder(), { ...shape, seed: 7, cache });
        // The written graph is the one of buildLlamaOnnx over randomLlamaWeights(seed): check it on scaled weights too.
        const scaled = path.join(await folder(), 'scaled.onnx');
        await writeModel(buildLlamaOnnx(shape, weights, { cache }), scaled, { externalData: 'auto' });

        for (const [model, w] of [[written.model, randomLlamaWeights(shape, 7)], [scaled, weights]] as const) {
          const { logits, dims, present } = await onnxLogits(model, shape, TOKENS, cache);
          expect(dims).toEqual([1, TOKENS.length, shape.vocab]);
          const reference = llamaReferenceLogits(shape, w, TOKENS);
          expect(maxAbsDiff(logits, reference)).toBeLessThan(1e-5 * Math.max(1, maxAbs(reference)) + 1e-5);
          if (cache) expect(present?.dims).toEqual([1, shape.kvHeads, TOKENS.length, headSize(shape)]);
        }
        expect(written.params).toBe(parameterCount(shape));
      });
    }
  }

  it('continues a sequence from its KV cache with the same logits as the whole sequence', async () => {
    const { model } = await writeLlamaOnnx(await folder(), { ...GQA, seed: 3, cache: true });
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
    try {
      const d = headSize(GQA);
      const ids = (t: number[]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(t.map(BigInt)), [1, t.length]);
      const empty = Object.fromEntries(Array.from({ length: GQA.layers }, (_, l) => ['key', 'value'].map((k) => [`past_key_values.${l}.${k}`, new ort.Tensor('float32', new Float32Array(0), [1, GQA.kvHeads, 0, d])])).flat());
      const whole = await session.run({ input_ids: ids(TOKENS), ...empty });
      const first = await session.run({ input_ids: ids(TOKENS.slice(0, 5)), ...empty });
      const past = Object.fromEntries(Array.from({ length: GQA.layers }, (_, l) => ['key', 'value'].map((k) => [`past_key_values.${l}.${k}`, first[`present.${l}.${k}`]])).flat());
      const rest = await session.run({ input_ids: ids(TOKENS.slice(5)), ...past });
      const wholeLogits = whole.logits.data as Float32Array;
      expect(maxAbsDiff(rest.logits.data as Float32Array, wholeLogits.subarray(5 * GQA.vocab))).toBeLessThan(1e-5);
    } finally {
      await session.release();
    }
  });

  it('runs a batch with dynamic batch and sequence sizes', async () => {
    const { model } = await writeLlamaOnnx(await folder(), { ...MHA, seed: 5, cache: false });
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
    try {
      const rows = [TOKENS.slice(0, 6), TOKENS.slice(3, 9)];
      const out = await session.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [2, 6]) });
      expect(out.logits.dims).toEqual([2, 6, MHA.vocab]);
      const w = randomLlamaWeights(MHA, 5);
      const batched = out.logits.data as Float32Array;
      rows.forEach((row, b) => expect(maxAbsDiff(batched.subarray(b * 6 * MHA.vocab, (b + 1) * 6 * MHA.vocab), llamaReferenceLogits(MHA, w, row))).toBeLessThan(1e-5));
    } finally {
      await session.release();
    }
  });

  it('is mapped as a Llama with its heads, kv heads, roles and tied head', async () => {
    for (const [shape, cache] of [[GQA, true], [MHA, false]] as const) {
      const { model } = await writeLlamaOnnx(await folder(), { ...shape, seed: 1, cache });
      const map = mapArchitecture(await readModel(model));
      expect(map.issues).toEqual([]);
      expect(map.family).toBe('llama');
      expect(map.blocks).toHaveLength(shape.layers);
      expect(map.tiedEmbedding).toBe(shape.tied);
      expect(map.embedding).toBe('model.embed_tokens.weight');
      for (const b of map.blocks) {
        expect(b.attention.heads).toBe(shape.heads);
        expect(b.attention.kvHeads).toBe(shape.kvHeads);
        expect(b.attention.headSize).toBe(headSize(shape));
        expect(b.attention.q).toBe(`model.layers.${b.index}.self_attn.q_proj.weight_t`);
        expect(b.mlp.gate).toBe(`model.layers.${b.index}.mlp.gate_proj.weight_t`);
        expect(b.mlp.down).toBe(`model.layers.${b.index}.mlp.down_proj.weight_t`);
        expect(b.mlp.intermediate).toBe(shape.hidden);
      }
    }
  });

  it('writes the stories260K checkpoint with the logits of the fixture export', async () => {
    const written = await writeLlama2cOnnx(await folder(), fixture('stories260K', 'stories260K.bin'), { cache: true });
    expect(written.shape).toEqual({ dim: 64, hidden: 172, layers: 5, heads: 8, kvHeads: 4, vocab: 512, maxSeq: 512, tied: true });
    const tokens = [1, 403, 407, 261, 378, 429, 260, 488, 88, 13];
    const ours = await onnxLogits(written.model, written.shape, tokens, true);
    const theirs = await onnxLogits(STORIES.model, written.shape, tokens, true);
    expect(maxAbsDiff(ours.logits, theirs.logits)).toBeLessThan(5e-5);
    expect(maxAbsDiff(ours.logits, llamaReferenceLogits(written.shape, written.weights, tokens))).toBeLessThan(5e-5);
    // The RoPE tables are the fixture's (float32 angles up to 511 rad: a few ulps apart at the far end).
    const fixtureGraph = (await readModel(STORIES.model)).proto.graph!;
    const tables = ropeTables(512, headSize(written.shape));
    expect(maxAbsDiff(await readTensorFloat32(fixtureGraph.initializer.find((t) => t.name === 'rope_cos')!), tables.cos)).toBeLessThan(1e-5);
  });
});
