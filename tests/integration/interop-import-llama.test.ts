// Importing a Hugging Face Llama folder, checked against an independent export: the llama2.c checkpoint
// of stories260K written as a Hugging Face folder (q/k rows permuted as Transformers' conversion does),
// imported, and its logits compared with the fixture's own ONNX export on TinyStories text.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTextFile } from '../../main/engine/data/text-file.ts';
import { loadTokenizer } from '../../main/engine/data/tokenizer.ts';
import { openDecoder } from '../../main/engine/evaluate/decoder-session.ts';
import { evaluatePerplexity } from '../../main/engine/evaluate/perplexity.ts';
import { importHuggingFace } from '../../main/engine/interop/import-hf.ts';
import { float32ToBfloat16 } from '../../main/engine/interop/safetensors-writer.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { readLlama2c, writeHfFolder, type Llama2cCheckpoint } from '../helpers/llama2c-hf.ts';
import { maxDiff } from '../helpers/max-diff.ts';

const tmp = tempDir('whittle-import-');
const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
let ckpt: Llama2cCheckpoint;
let reference: ort.InferenceSession;
let ids: number[];

const i64 = (v: number[], dims: number[]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(v, (x) => BigInt(x)), dims);
const emptyPast = (layers: number, kv: number, hd: number, names: (l: number, k: string) => string): Record<string, ort.Tensor> => {
  const f: Record<string, ort.Tensor> = {};
  for (let l = 0; l < layers; l++) for (const k of ['key', 'value']) f[names(l, k)] = new ort.Tensor('float32', new Float32Array(0), [1, kv, 0, hd]);
  return f;
};

/** Logits [T, V] of the fixture's export for `tokens` (a fresh sequence). */
async function referenceLogits(tokens: number[]): Promise<Float32Array> {
  const out = await reference.run({ input_ids: i64(tokens, [1, tokens.length]), ...emptyPast(5, 4, 8, (l, k) => `past_key_values.${l}.${k}`) });
  return out.logits.data as Float32Array;
}

/** Logits of an imported model: the whole sequence, or (cache) the first half then the second with the past. */
async function importedLogits(modelPath: string, tokens: number[], split: number | null): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(modelPath, opts);
  try {
    const run = async (part: number[], start: number, past: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> => s.run({
      input_ids: i64(part, [1, part.length]),
      attention_mask: i64(new Array<number>(start + part.length).fill(1), [1, start + part.length]),
      position_ids: i64(part.map((_, i) => start + i), [1, part.length]),
      ...past,
    });
    const cached = s.inputNames.includes('past_key_values.0.key');
    if (split === null) {
      const out = await run(tokens, 0, cached ? emptyPast(5, 4, 8, (l, k) => `past_key_values.${l}.${k}`) : {});
      return out.logits.data as Float32Array;
    }
    const first = await run(tokens.slice(0, split), 0, emptyPast(5, 4, 8, (l, k) => `past_key_values.${l}.${k}`));
    const past: Record<string, ort.Tensor> = {};
    for (let l = 0; l < 5; l++) for (const k of ['key', 'value']) past[`past_key_values.${l}.${k}`] = first[`present.${l}.${k}`];
    const second = await run(tokens.slice(split), split, past);
    const a = first.logits.data as Float32Array, b = second.logits.data as Float32Array;
    const all = new Float32Array(a.length + b.length);
    all.set(a);
    all.set(b, a.length);
    return all;
  } finally {
    await s.release();
  }
}

beforeAll(async () => {
  ckpt = readLlama2c();
  reference = await ort.InferenceSession.create(STORIES.model, opts);
  const tokenizer = await loadTokenizer(STORIES.tokenizer);
  const text = await readTextFile(STORIES.text);
  const paragraphs = text.split(/\n\s*\n/).slice(0, 3).join('\n\n');
  ids = [1, ...tokenizer.encode(paragraphs)].slice(0, 200);
});
afterAll(async () => {
  await reference.release();
  tmp.cleanup();
});

describe('import a Hugging Face Llama folder', () => {
  it('fp32, one file: the logits equal the fixture export within 1e-4, with and without the cache; the map sees a llama', async () => {
    const hf = path.join(tmp.dir, 'hf-f32');
    await writeHfFolder(hf, ckpt);
    const r = await importHuggingFace(hf, path.join(tmp.dir, 'out-f32'));
    expect(r.tiedEmbeddings).toBe(true);
    expect(r.files.map((f) => f.name).sort()).toEqual(['config.json', 'generation_config.json', 'model.onnx', 'model.onnx.data', 'tokenizer.json', 'tokenizer_config.json']);
    const want = await referenceLogits(ids);
    expect(maxDiff(await importedLogits(r.modelPath, ids, null), want)).toBeLessThan(1e-4);
    expect(maxDiff(await importedLogits(r.modelPath, ids, 120), want)).toBeLessThan(1e-4);

    const map = mapArchitecture(await readModel(r.modelPath));
    expect(map.family).toBe('llama');
    expect(map.blocks).toHaveLength(5);
    expect(map.blocks[0].attention.heads).toBe(8);
    expect(map.blocks[0].attention.kvHeads).toBe(4);
    expect(map.tiedEmbedding).toBe(true);
    expect(map.issues).toEqual([]);

    const noCache = await importHuggingFace(hf, path.join(tmp.dir, 'out-nocache'), { cache: false });
    const s = await ort.InferenceSession.create(noCache.modelPath, opts);
    expect(s.inputNames).toEqual(['input_ids', 'attention_mask', 'position_ids']);
    expect(s.outputNames).toEqual(['logits']);
    await s.release();
    expect(maxDiff(await importedLogits(noCache.modelPath, ids, null), want)).toBeLessThan(1e-4);
  }, 60_000);

  it('the imported model evaluates to the reference perplexity', async () => {
    const out = path.join(tmp.dir, 'out-f32');
    const decoder = await openDecoder(path.join(out, 'model.onnx'), { threads: 1 });
    try {
      const tokenizer = await loadTokenizer(path.join(out, 'tokenizer.json'));
      const text = await readTextFile(STORIES.text);
      const r = await evaluatePerplexity(decoder, tokenizer, text, { protocol: 'documents', window: 256, maxSamples: 40, minTokens: 16 }, quietContext(tmp.dir));
      const ref = await openDecoder(STORIES.model, { threads: 1 });
      const rr = await evaluatePerplexity(ref, tokenizer, text, { protocol: 'documents', window: 256, maxSamples: 40, minTokens: 16 }, quietContext(tmp.dir));
      await ref.release();
      expect(r.predictedTokens).toBe(rr.predictedTokens);
      expect(Math.abs(r.perplexity - rr.perplexity)).toBeLessThan(1e-3);
    } finally {
      await decoder.release();
    }
  }, 60_000);

  it('bf16 in two shards: equals the reference computed from the bf16-rounded weights', async () => {
    const hf = path.join(tmp.dir, 'hf-bf16');
    await writeHfFolder(hf, ckpt, { dtype: 'BF16', shards: 2 });
    expect(readdirSync(hf).filter((f) => f.endsWith('.safetensors'))).toHaveLength(2);
    const r = await importHuggingFace(hf, path.join(tmp.dir, 'out-bf16'));
    // The reference: the same checkpoint rounded to bf16 and back, written as fp32 and imported.
    const rounded: Llama2cCheckpoint = { ...ckpt, tensors: new Map([...ckpt.tensors].map(([n, t]) => {
      const bits = float32ToBfloat16(t.values);
      const back = new Float32Array(new Uint32Array(Array.from(bits, (b) => b << 16)).buffer);
      return [n, { shape: t.shape, values: back }];
    })) };
    const hfRounded = path.join(tmp.dir, 'hf-rounded');
    await writeHfFolder(hfRounded, rounded);
    const ref = await importHuggingFace(hfRounded, path.join(tmp.dir, 'out-rounded'));
    const want = await importedLogits(ref.modelPath, ids, null);
    expect(maxDiff(await importedLogits(r.modelPath, ids, null), want)).toBe(0);
    // bf16 rounding moves the logits away from the fp32 reference, but not far.
    const drift = maxDiff(want, await referenceLogits(ids));
    expect(drift).toBeGreaterThan(1e-4);
    expect(drift).toBeLessThan(0.5);
  }, 60_000);

  it('fp16 output: float16 graph, logits close to the reference', async () => {
    const r = await importHuggingFace(path.join(tmp.dir, 'hf-f32'), path.join(tmp.dir, 'out-f16'), { dtype: 'fp16' });
    const model = await readModel(r.modelPath);
    expect(model.proto.graph!.initializer.find((t) => t.name === 'model.embed_tokens.weight')!.dataType).toBe(10);
    const decoder = await openDecoder(r.modelPath, { threads: 1 });
    try {
      const { logits } = await decoder.forward(ids);
      const want = await referenceLogits(ids);
      expect(maxDiff(logits, want)).toBeLessThan(0.1);
    } finally {
      await decoder.release();
    }
    expect(existsSync(path.join(tmp.dir, 'out-f16', 'model.onnx.data'))).toBe(true);
  }, 60_000);

  it('fp16 with a residual stream far beyond 256 (x² would overflow float16): the norms run in float32', async () => {
    // onnxruntime's CPU provider computes many float16 ops in float32 anyway, so the graph itself is checked:
    // every ReduceMean (the norms' mean of x²) reads x cast to float32.
    // Then the embedding × 400 (untied head kept as it was): RMSNorm is scale-invariant, so the logits stay close to fp32's.
    const tensors = new Map(ckpt.tensors);
    const e = ckpt.tensors.get('model.embed_tokens.weight')!;
    tensors.set('model.embed_tokens.weight', { shape: e.shape, values: e.values.map((v) => v * 400) });
    tensors.set('lm_head.weight', e);
    const hf = path.join(tmp.dir, 'hf-loud');
    await writeHfFolder(hf, { ...ckpt, shared: false, tensors });
    const wide = await importHuggingFace(hf, path.join(tmp.dir, 'out-loud-f32'));
    const narrow = await importHuggingFace(hf, path.join(tmp.dir, 'out-loud-f16'), { dtype: 'fp16' });
    const g = (await readModel(narrow.modelPath)).proto.graph!;
    const producer = new Map(g.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
    const means = g.node.filter((n) => n.opType === 'ReduceMean');
    expect(means).toHaveLength(2 * 5 + 1);
    for (const m of means) {
      const square = producer.get(m.input[0])!;
      const cast = producer.get(square.input[0])!;
      expect(cast.opType).toBe('Cast');
      expect(Number(cast.attribute.find((a) => a.name === 'to')!.i)).toBe(1);
    }
    const want = await importedLogits(wide.modelPath, ids, null);
    const decoder = await openDecoder(narrow.modelPath, { threads: 1 });
    try {
      const { logits } = await decoder.forward(ids);
      expect(logits.every(Number.isFinite)).toBe(true);
      expect(maxDiff(logits, want)).toBeLessThan(0.1);
    } finally {
      await decoder.release();
    }
  }, 60_000);
});
