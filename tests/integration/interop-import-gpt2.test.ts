// GPT-2 import checked against an independent export: the weights of ORT GenAI's tiny-random-gpt2 graph
// (onnxruntime.transformers contrib ops: EmbedLayerNormalization, Attention, SkipLayerNormalization,
// FastGelu) written back as a Hugging Face GPT-2 folder, imported, and the logits compared with the
// fixture graph's own.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importHuggingFace } from '../../main/engine/interop/import-hf.ts';
import { writeSafetensors, type TensorToWrite } from '../../main/engine/interop/safetensors-writer.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { readTensorFloat32 } from '../../main/engine/onnx/tensor-data.ts';
import type { NodeProto } from '../../main/engine/onnx/proto-types.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { fixture, tempDir } from '../helpers/fixtures.ts';

const GPT2 = fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32');
const tmp = tempDir('whittle-import-gpt2-');
const L = 5, E = 32, NH = 4, D = 8, V = 1000;
let hf: string;
let untied = false;

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/** The fixture's weights under Hugging Face GPT-2 names, found through its fused nodes. */
async function gpt2Weights(): Promise<Map<string, { shape: number[]; values: Float32Array }>> {
  const m = await readModel(path.join(GPT2, 'past.onnx'));
  const g = m.proto.graph!;
  const inits = new Map(g.initializer.map((t) => [t.name ?? '', t]));
  const node = (name: string): NodeProto => g.node.find((n) => n.name === name)!;
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  const put = async (hfName: string, onnxName: string): Promise<void> => {
    const t = inits.get(onnxName)!;
    out.set(hfName, { shape: t.dims.map(Number), values: await readTensorFloat32(t) });
  };
  const emb = node('EmbedLayerNormalization_0');
  await put('transformer.wte.weight', emb.input[2]);
  await put('transformer.wpe.weight', emb.input[3]);
  await put('transformer.h.0.ln_1.weight', emb.input[5]);
  await put('transformer.h.0.ln_1.bias', emb.input[6]);
  for (let l = 0; l < L; l++) {
    const p = `transformer.h.${l}`;
    const attn = node(`GptAttention_${l}`);
    await put(`${p}.attn.c_attn.weight`, attn.input[1]);
    await put(`${p}.attn.c_attn.bias`, attn.input[2]);
    await put(`${p}.attn.c_proj.weight`, node(`GptAttention_${l}_matmul`).input[1]);
    const afterAttn = node(`SkipLayerNorm_AddBias_${2 * l}`); // LN(x + attn + c_proj.bias; ln_2)
    await put(`${p}.attn.c_proj.bias`, afterAttn.input[4]);
    await put(`${p}.ln_2.weight`, afterAttn.input[2]);
    await put(`${p}.ln_2.bias`, afterAttn.input[3]);
    await put(`${p}.mlp.c_fc.weight`, node(`FullyConnect_MatMul_${2 * l}`).input[1]);
    await put(`${p}.mlp.c_fc.bias`, node(`FastGelu_AddBias_${l}`).input[1]);
    await put(`${p}.mlp.c_proj.weight`, node(`FullyConnect_MatMul_${2 * l + 1}`).input[1]);
    const afterMlp = node(`SkipLayerNorm_AddBias_${2 * l + 1}`); // LN(x + mlp + c_proj.bias; next ln_1 or ln_f)
    await put(`${p}.mlp.c_proj.bias`, afterMlp.input[4]);
    const next = l + 1 < L ? `transformer.h.${l + 1}.ln_1` : 'transformer.ln_f';
    await put(`${next}.weight`, afterMlp.input[2]);
    await put(`${next}.bias`, afterMlp.input[3]);
  }
  const head = await readTensorFloat32(inits.get(node('/lm_head/MatMul').input[1])!); // [E, V]
  const wteT = transpose(out.get('transformer.wte.weight')!.values, V, E);
  untied = head.some((v, i) => v !== wteT[i]);
  if (untied) out.set('lm_head.weight', { shape: [V, E], values: transpose(head, E, V) });
  return out;
}

beforeAll(async () => {
  hf = path.join(tmp.dir, 'hf-gpt2');
  mkdirSync(hf);
  const w = await gpt2Weights();
  const tensors: TensorToWrite[] = [...w].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, bytes: () => new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength) }));
  await writeSafetensors(path.join(hf, 'model.safetensors'), tensors);
  writeFileSync(path.join(hf, 'config.json'), JSON.stringify({
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], n_embd: E, n_layer: L, n_head: NH, n_positions: 512, n_inner: null, vocab_size: V,
    layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', tie_word_embeddings: !untied, bos_token_id: 98, eos_token_id: 98,
  }));
});
afterAll(() => tmp.cleanup());

describe('import a Hugging Face GPT-2 folder', () => {
  it('logits equal the fixture graph (contrib ops) within 1e-4, fresh and with the cache; the map sees a gpt2', async () => {
    const r = await importHuggingFace(hf, path.join(tmp.dir, 'out'));
    expect(r.modelType).toBe('gpt2');
    const tokens = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % V);
    const T = tokens.length;
    const i32 = (v: number[], dims: number[]): ort.Tensor => new ort.Tensor('int32', Int32Array.from(v), dims);
    const i64 = (v: number[], dims: number[]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(v, (x) => BigInt(x)), dims);
    const ref = await ort.InferenceSession.create(path.join(GPT2, 'past.onnx'), { intraOpNumThreads: 1 });
    const refFeeds: Record<string, ort.Tensor> = { input_ids: i32(tokens, [1, T]), position_ids: i32(tokens.map((_, i) => i), [1, T]), attention_mask: i32(tokens.map(() => 1), [1, T]) };
    for (let l = 0; l < L; l++) refFeeds[`past_${l}`] = new ort.Tensor('float32', new Float32Array(0), [2, 1, NH, 0, D]);
    const want = (await ref.run(refFeeds)).logits.data as Float32Array;
    await ref.release();

    const s = await ort.InferenceSession.create(r.modelPath, { intraOpNumThreads: 1 });
    const run = async (part: number[], start: number, past: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> => s.run({
      input_ids: i64(part, [1, part.length]), attention_mask: i64(new Array<number>(start + part.length).fill(1), [1, start + part.length]),
      position_ids: i64(part.map((_, i) => start + i), [1, part.length]), ...past,
    });
    const empty: Record<string, ort.Tensor> = {};
    for (let l = 0; l < L; l++) for (const k of ['key', 'value']) empty[`past_key_values.${l}.${k}`] = new ort.Tensor('float32', new Float32Array(0), [1, NH, 0, D]);
    const whole = (await run(tokens, 0, empty)).logits.data as Float32Array;
    const first = await run(tokens.slice(0, 25), 0, empty);
    const past: Record<string, ort.Tensor> = {};
    for (let l = 0; l < L; l++) for (const k of ['key', 'value']) past[`past_key_values.${l}.${k}`] = first[`present.${l}.${k}`];
    const second = (await run(tokens.slice(25), 25, past)).logits.data as Float32Array;
    await s.release();

    let m1 = 0, m2 = 0;
    for (let i = 0; i < want.length; i++) m1 = Math.max(m1, Math.abs(whole[i] - want[i]));
    const a = first.logits.data as Float32Array;
    for (let i = 0; i < want.length; i++) m2 = Math.max(m2, Math.abs((i < a.length ? a[i] : second[i - a.length]) - want[i]));
    expect(m1).toBeLessThan(1e-4);
    expect(m2).toBeLessThan(1e-4);

    // Without the cache: the same logits from input_ids, attention_mask and position_ids alone.
    const bare = await importHuggingFace(hf, path.join(tmp.dir, 'out-nocache'), { cache: false });
    const sb = await ort.InferenceSession.create(bare.modelPath, { intraOpNumThreads: 1 });
    expect(sb.inputNames).toEqual(['input_ids', 'attention_mask', 'position_ids']);
    const plain = (await sb.run({ input_ids: i64(tokens, [1, T]), attention_mask: i64(tokens.map(() => 1), [1, T]), position_ids: i64(tokens.map((_, i) => i), [1, T]) })).logits.data as Float32Array;
    await sb.release();
    let m3 = 0;
    for (let i = 0; i < want.length; i++) m3 = Math.max(m3, Math.abs(plain[i] - want[i]));
    expect(m3).toBeLessThan(1e-4);

    const map = mapArchitecture(await readModel(r.modelPath));
    expect(map.family).toBe('gpt2');
    expect(map.blocks).toHaveLength(L);
    expect(map.blocks[0].attention.qkv).toBe('transformer.h.0.attn.c_attn.weight');
  }, 60_000);

  it("the fixture's own tokenizer (the full GPT-2 vocabulary, 50,257 ids) does not fit its 1,000-row embedding: refused", async () => {
    copyFileSync(path.join(GPT2, 'tokenizer.json'), path.join(hf, 'tokenizer.json'));
    await expect(importHuggingFace(hf, path.join(tmp.dir, 'never'))).rejects.toThrow('vocab_size is 1000');
  });
});
