/**
 * The architecture map on every fixture layout, checked against each model's own configuration (the
 * llama2.c header, genai_config.json, config.json), on an opaquely renamed copy of the sample, and on
 * attention ops whose head counts disagree with the cache shapes.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { intAttr } from '../../../main/engine/onnx/graph.ts';
import type { ModelProto, OnnxModel } from '../../../main/engine/onnx/proto-types.ts';
import { type ArchitectureMap, mapArchitecture } from '../../../main/engine/rewrite/architecture.ts';
import { fixture, STORIES } from '../../helpers/fixtures.ts';

const LLAMA = fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16');
const GPT2 = fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32');
const json = (file: string) => JSON.parse(readFileSync(file, 'utf8'));
const dimsOf = (m: ModelProto, name: string | null): number[] => m.graph!.initializer.find((t) => t.name === name)!.dims.map(Number);

describe('stories260K (plain ops, HF cache, GQA, tied classifier)', () => {
  let model: OnnxModel;
  let map: ArchitectureMap;
  // llama2.c header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len (int32).
  const [dim, hidden, layers, heads, kvHeads, vocab] = Array.from(new Int32Array(readFileSync(fixture('stories260K', 'stories260K.bin')).buffer.slice(0, 28)));
  beforeAll(async () => { model = await readModel(STORIES.model); map = mapArchitecture(model); });

  it('finds every block with the checkpoint head counts and the tied embedding', () => {
    expect(map.family).toBe('llama');
    expect(map.issues).toEqual([]);
    expect(map.blocks).toHaveLength(layers);
    expect(map.tiedEmbedding).toBe(true);
    expect(map.lmHead).toBe(map.embedding);
    expect(dimsOf(model.proto, map.embedding)).toEqual([vocab, dim]);
    expect(map.normPlacement).toBe('pre');
    expect(map.finalNorm?.kind).toBe('rms');
    for (const b of map.blocks) {
      expect(b.attention).toMatchObject({ heads, kvHeads, headSize: dim / heads, qkv: null });
      expect(b.mlp).toMatchObject({ activation: 'silu', intermediate: hidden });
      // Shapes of what each role holds: q [dim, heads·d], k/v [dim, kv·d], o [heads·d, dim], gate/up [dim, hidden], down [hidden, dim].
      const d = dim / heads;
      expect(dimsOf(model.proto, b.attention.q)).toEqual([dim, heads * d]);
      expect(dimsOf(model.proto, b.attention.k)).toEqual([dim, kvHeads * d]);
      expect(dimsOf(model.proto, b.attention.v)).toEqual([dim, kvHeads * d]);
      expect(dimsOf(model.proto, b.attention.o)).toEqual([heads * d, dim]);
      expect(dimsOf(model.proto, b.mlp.gate)).toEqual([dim, hidden]);
      expect(dimsOf(model.proto, b.mlp.up)).toEqual([dim, hidden]);
      expect(dimsOf(model.proto, b.mlp.down)).toEqual([hidden, dim]);
      expect(b.norms.map((n) => [n.kind, n.at])).toEqual([['rms', 'attention'], ['rms', 'mlp']]);
      // Every parameter of a llama2.c layer: 7 projections and 2 norm scales, no other block's.
      expect(b.weights).toHaveLength(9);
      expect(b.weights.reduce((s, w) => s + dimsOf(model.proto, w).reduce((a, x) => a * x, 1), 0)).toBe(2 * dim + 2 * dim * dim + 2 * dim * kvHeads * d + 3 * dim * hidden);
      expect(b.attention.nodes.cache).toEqual({ key: `past_key_values.${b.index}.key`, value: `past_key_values.${b.index}.value`, kv: null });
    }
    const blockWeights = map.blocks.flatMap((b) => b.weights);
    expect(new Set(blockWeights).size).toBe(blockWeights.length);
  });

  it('lists the Reshape and Expand constants that spell the head counts', () => {
    const nodes = map.blocks[0].attention.nodes.headCounts;
    const q = nodes.find((n) => n.on === 'q' && n.values?.length === 4)!;
    expect(q.values!.slice(2)).toEqual([heads, dim / heads]);
    const k = nodes.filter((n) => n.on === 'k' && n.op === 'Reshape').map((n) => n.values!);
    expect(k.some((x) => x[2] === kvHeads && x.length === 4)).toBe(true);   // [b, s, kv_heads, d] after the k projection
    expect(k.some((x) => x[1] === heads && x[3] === dim / heads)).toBe(true); // [b, heads, t, d] after repeating the KV groups
    expect(nodes.some((n) => n.op === 'Concat' && n.values?.[0] === kvHeads && n.values[1] === heads / kvHeads)).toBe(true);
    expect(nodes.some((n) => n.on === 'o' && n.values?.at(-1) === dim)).toBe(true);
  });

  it('gives the same map when every node, initializer and inner value has an opaque name', () => {
    const renamed = structuredClone(model.proto);
    const g = renamed.graph!;
    const io = new Set([...g.input, ...g.output].map((v) => v.name));
    const names = new Map<string, string>();
    g.initializer.forEach((t, i) => { names.set(t.name!, `w${i}`); t.name = `w${i}`; });
    let v = 0;
    g.node.forEach((n, i) => {
      n.name = `n${i}`;
      for (const o of n.output) if (o && !io.has(o) && !names.has(o)) names.set(o, `v${v++}`);
    });
    const rn = (x: string) => names.get(x) ?? x;
    for (const n of g.node) { n.input = n.input.map(rn); n.output = n.output.map(rn); }
    const opaque = mapArchitecture(renamed);
    const back = new Map([...names].map(([a, b]) => [b, a]));
    const nodeNames = new Map(model.proto.graph!.node.map((n, i) => [`n${i}`, n.name!]));
    const restore = (x: unknown): unknown => JSON.parse(JSON.stringify(x), (_k, val) => (typeof val === 'string' ? back.get(val) ?? nodeNames.get(val) ?? val : val));
    expect(opaque.blocks[0].attention.q).toMatch(/^w\d+$/);
    expect(restore(opaque)).toEqual(map);
  });
});

describe('ORT GenAI Llama (MultiHeadAttention, RotaryEmbedding, SkipSimplifiedLayerNormalization, fp16)', () => {
  let model: OnnxModel;
  const cfg = json(`${LLAMA}/genai_config.json`).model;
  beforeAll(async () => { model = await readModel(`${LLAMA}/model.onnx`); });

  it('matches genai_config.json and finds an untied LM head', () => {
    const map = mapArchitecture(model);
    expect(map.family).toBe('llama');
    expect(map.issues).toEqual([]);
    expect(map.blocks).toHaveLength(cfg.decoder.num_hidden_layers);
    for (const b of map.blocks) {
      expect(b.attention).toMatchObject({ heads: cfg.decoder.num_attention_heads, kvHeads: cfg.decoder.num_key_value_heads, headSize: cfg.decoder.head_size });
      expect(b.attention.nodes.attention).not.toBeNull();
      expect(b.attention.nodes.rotary).toHaveLength(2);
      expect(b.weights.some((w) => /cos|sin/.test(w))).toBe(false);
      expect(b.norms.map((n) => n.kind)).toEqual(['rms', 'rms']);
    }
    expect(map.tiedEmbedding).toBe(false);
    expect(dimsOf(model.proto, map.lmHead)).toEqual([cfg.decoder.hidden_size, cfg.vocab_size]);
    expect(dimsOf(model.proto, map.embedding)).toEqual([cfg.vocab_size, cfg.decoder.hidden_size]);
  });

  /** The same graph with each MultiHeadAttention rewritten as GroupQueryAttention (q, k, v, past_key, past_value). */
  function asGqa(heads: number, kvHeads: number): ModelProto {
    const m = structuredClone(model.proto);
    for (const n of m.graph!.node) {
      if (n.opType !== 'MultiHeadAttention') continue;
      n.opType = 'GroupQueryAttention';
      n.input = [n.input[0], n.input[1], n.input[2], n.input[6], n.input[7]];
      n.attribute = [intAttr('num_heads', heads), intAttr('kv_num_heads', kvHeads)];
    }
    return m;
  }

  it('reads num_heads and kv_num_heads of GroupQueryAttention', () => {
    const map = mapArchitecture(asGqa(1, 1));
    expect(map.issues).toEqual([]);
    expect(map.blocks[0].attention).toMatchObject({ heads: 1, kvHeads: 1, headSize: 16 });
    expect(map.blocks[0].attention.nodes.headCounts[0]).toMatchObject({ op: 'GroupQueryAttention', values: [1, 1] });
  });

  it('says so when the attention op and the cache shapes disagree, and does not throw', () => {
    const map = mapArchitecture(asGqa(4, 2));
    expect(map.blocks).toHaveLength(cfg.decoder.num_hidden_layers);
    expect(map.issues.join('\n')).toMatch(/block 0: kvHeads disagree: GroupQueryAttention num_heads says 2, cache input past_key_values.0.key says 1/);
  });
});

describe('onnxruntime.transformers GPT-2 (Attention with fused QKV, past_N, EmbedLayerNormalization)', () => {
  it('matches config.json: fused QKV, fc1/fc2 with GELU, combined cache', async () => {
    const model = await readModel(`${GPT2}/past.onnx`);
    const all = json(`${GPT2}/config.json`);
    const cfg = { ...all, ...all.model };
    const map = mapArchitecture(model);
    expect(map.family).toBe('gpt2');
    expect(map.issues).toEqual([]);
    expect(map.blocks).toHaveLength(cfg.n_layer);
    for (const b of map.blocks) {
      expect(b.attention).toMatchObject({ q: null, k: null, v: null, heads: cfg.n_head, kvHeads: cfg.n_head, headSize: cfg.n_embd / cfg.n_head });
      expect(dimsOf(model.proto, b.attention.qkv)).toEqual([cfg.n_embd, 3 * cfg.n_embd]);
      expect(b.attention.nodes.cache.kv).toBe(`past_${b.index}`);
      expect(b.mlp).toMatchObject({ gate: null, activation: 'gelu', intermediate: 4 * cfg.n_embd });
      expect(b.norms.map((n) => n.kind)).toEqual(['layer', 'layer']);
    }
    expect(dimsOf(model.proto, map.embedding)).toEqual([cfg.vocab_size, cfg.n_embd]);
    expect(map.otherEmbeddings.map((w) => dimsOf(model.proto, w))).toEqual([[cfg.n_positions, cfg.n_embd]]);
    expect(dimsOf(model.proto, map.lmHead)).toEqual([cfg.n_embd, cfg.vocab_size]);
    expect(map.tiedEmbedding).toBe(false);   // the export stores the LM head as its own (transposed) copy
  });
});

describe('models that are not transformers', () => {
  it('maps to unknown with the missing parts in words', async () => {
    const map = mapArchitecture(await readModel(fixture('onnx', 'node-tests', 'test_gemm_transposeB', 'model.onnx')));
    expect(map).toMatchObject({ family: 'unknown', blocks: [], embedding: null, lmHead: null });
    expect(map.issues.join('\n')).toMatch(/no attention found/);
    expect(map.issues.join('\n')).toMatch(/no embedding table/);
  });
});
