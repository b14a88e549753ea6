/**
 * One contrib node at a time, decomposed and compared with onnxruntime running the contrib op itself on
 * random inputs: the forms the exported fixtures do not exercise (GroupQueryAttention with and without
 * rotary, Gelu, BiasGelu, FastGelu, interleaved / partial / 4-D / offset rotary, SkipLayerNormalization
 * with bias and all its outputs, the simplified norms' extra outputs, EmbedLayerNormalization with
 * segments and a mask, Attention and MultiHeadAttention with a non-empty past and masks).
 */
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { floatAttr, intAttr, makeNode } from '../../../main/engine/onnx/graph.ts';
import type { AttributeProto, ModelProto } from '../../../main/engine/onnx/proto-types.ts';
import { decomposeAndCompare } from '../../helpers/decompose-check.ts';
import { tempDir } from '../../helpers/fixtures.ts';
import { buildModel, randomFloats, valueInfo } from '../quantize/build-model.ts';

const scratch = tempDir('whittle-decompose-ops-');
afterAll(() => scratch.cleanup());

let seed = 1;
const floats = (dims: number[], scale = 1): ort.Tensor => new ort.Tensor('float32', randomFloats(dims.reduce((a, c) => a * c, 1), seed++, scale), dims);
const int64s = (values: number[], dims: number[]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);
const int32s = (values: number[], dims: number[]): ort.Tensor => new ort.Tensor('int32', Int32Array.from(values), dims);

/** cos/sin caches [positions, half] of the usual θ_i = 10000^(−2i/rd) rotary. */
function caches(positions: number, half: number): { cos: ort.Tensor; sin: ort.Tensor } {
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * 10000 ** (-i / half);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos: new ort.Tensor('float32', cos, [positions, half]), sin: new ort.Tensor('float32', sin, [positions, half]) };
}

const ORT_DTYPE: Record<string, number> = { float32: DataType.float32, int64: DataType.int64, int32: DataType.int32 };

/** A model of one com.microsoft node whose inputs are all graph inputs (fed), at opset 17. */
function singleNode(opType: string, inputs: (string | [string, ort.Tensor])[], outputs: string[], attributes: AttributeProto[], domain = 'com.microsoft'): { model: ModelProto; feeds: Record<string, ort.Tensor> } {
  const feeds: Record<string, ort.Tensor> = {};
  for (const i of inputs) if (typeof i !== 'string') feeds[i[0]] = i[1];
  const model = buildModel({
    nodes: [makeNode({ opType, domain, inputs: inputs.map((i) => (typeof i === 'string' ? i : i[0])), outputs, name: opType, attributes })],
    initializers: [],
    inputs: Object.entries(feeds).map(([name, t]) => valueInfo(name, ORT_DTYPE[t.type], [...t.dims])),
    outputs: outputs.filter((o) => o !== '').map((name) => ({ name, metadataProps: [] })),
    opset: 17,
    extraOpsets: [{ domain: 'com.microsoft', version: 1 }],
  });
  return { model, feeds };
}

async function expectEqualToOrt(c: { model: ModelProto; feeds: Record<string, ort.Tensor> }, tol = 1e-4): Promise<void> {
  const opType = c.model.graph!.node[0].opType!;
  const { result, diffs, left } = await decomposeAndCompare(c.model, c.feeds, scratch.dir, tol, tol);
  expect(result.kept).toEqual([]);
  expect(left).toEqual([]);
  expect(result.replaced).toEqual({ [opType]: 1 });
  expect(diffs.length).toBe(c.model.graph!.output.length);
  for (const d of diffs) expect(d.worst, `${opType} ${d.name}: max |Δ| ${d.maxAbs}`).toBeLessThanOrEqual(1);
}

describe('GELU family', () => {
  it('Gelu (erf form)', async () => {
    await expectEqualToOrt(singleNode('Gelu', [['x', floats([2, 3, 8], 3)]], ['y'], []));
  });
  it('BiasGelu', async () => {
    await expectEqualToOrt(singleNode('BiasGelu', [['a', floats([2, 3, 8], 3)], ['bias', floats([8])]], ['y'], []));
  });
  it('FastGelu with and without bias', async () => {
    await expectEqualToOrt(singleNode('FastGelu', [['x', floats([2, 3, 8], 3)], ['bias', floats([8])]], ['y'], []));
    await expectEqualToOrt(singleNode('FastGelu', [['x', floats([2, 3, 8], 3)]], ['y'], []));
  });
});

describe('RotaryEmbedding', () => {
  const { cos, sin } = caches(16, 4);
  const positions = int64s([3, 0, 7, 15, 1, 2, 9, 4], [2, 4]);
  it('interleaved, [B, S, N·H] with num_heads', async () => {
    await expectEqualToOrt(singleNode('RotaryEmbedding', [['x', floats([2, 4, 16])], ['pos', positions], ['cos', cos], ['sin', sin]], ['y'],
      [intAttr('interleaved', 1), intAttr('num_heads', 2)]));
  });
  it('halves, [B, N, S, H]', async () => {
    await expectEqualToOrt(singleNode('RotaryEmbedding', [['x', floats([2, 3, 4, 8])], ['pos', positions], ['cos', cos], ['sin', sin]], ['y'], []));
  });
  it('interleaved, [B, N, S, H]', async () => {
    await expectEqualToOrt(singleNode('RotaryEmbedding', [['x', floats([2, 3, 4, 8])], ['pos', positions], ['cos', cos], ['sin', sin]], ['y'], [intAttr('interleaved', 1)]));
  });
  it('partial rotary dimension (rotary_embedding_dim < head size)', async () => {
    await expectEqualToOrt(singleNode('RotaryEmbedding', [['x', floats([2, 4, 24])], ['pos', positions], ['cos', cos], ['sin', sin]], ['y'],
      [intAttr('num_heads', 2), intAttr('rotary_embedding_dim', 8)]));
  });
  it('an offset position_ids of shape [1]', async () => {
    await expectEqualToOrt(singleNode('RotaryEmbedding', [['x', floats([2, 4, 16])], ['pos', int64s([5], [1])], ['cos', cos], ['sin', sin]], ['y'], [intAttr('num_heads', 2)]));
  });
});

describe('normalizations', () => {
  it('SkipLayerNormalization with beta, bias and all four outputs', async () => {
    await expectEqualToOrt(singleNode('SkipLayerNormalization',
      [['x', floats([2, 3, 8], 2)], ['skip', floats([2, 3, 8])], ['gamma', floats([8])], ['beta', floats([8])], ['bias', floats([8])]],
      ['y', 'mean', 'inv_std', 'sum'], [floatAttr('epsilon', 1e-5)]));
  });
  it('SkipLayerNormalization without beta', async () => {
    await expectEqualToOrt(singleNode('SkipLayerNormalization', [['x', floats([2, 3, 8], 2)], ['skip', floats([2, 3, 8])], ['gamma', floats([8])]], ['y'], [floatAttr('epsilon', 1e-5)]));
  });
  it('SimplifiedLayerNormalization with its inv_std_var output', async () => {
    await expectEqualToOrt(singleNode('SimplifiedLayerNormalization', [['x', floats([2, 3, 8], 2)], ['gamma', floats([8])]], ['y', 'inv_std'], [floatAttr('epsilon', 1e-6)], ''));
  });
  it('SkipSimplifiedLayerNormalization with bias, inv_std_var and the sum', async () => {
    await expectEqualToOrt(singleNode('SkipSimplifiedLayerNormalization',
      [['x', floats([2, 3, 8], 2)], ['skip', floats([2, 3, 8])], ['gamma', floats([8])], ['bias', floats([8])]], ['y', '', 'inv_std', 'sum'], [floatAttr('epsilon', 1e-6)]));
  });
  it('EmbedLayerNormalization with segments, a mask and explicit position ids', async () => {
    await expectEqualToOrt(singleNode('EmbedLayerNormalization', [
      ['ids', int32s([1, 4, 9, 0, 3, 3, 7, 2], [2, 4])], ['segments', int32s([0, 0, 1, 1, 0, 1, 1, 1], [2, 4])],
      ['words', floats([10, 8])], ['positions', floats([16, 8])], ['segment_table', floats([2, 8])], ['gamma', floats([8])], ['beta', floats([8])],
      ['mask', int32s([1, 1, 1, 1, 1, 1, 0, 0], [2, 4])], ['position_ids', int32s([0, 1, 2, 3, 5, 6, 7, 8], [2, 4])],
    ], ['y', 'mask_index', 'sum'], [floatAttr('epsilon', 1e-5)]));
  });
  it('EmbedLayerNormalization without mask or position ids', async () => {
    await expectEqualToOrt(singleNode('EmbedLayerNormalization', [
      ['ids', int32s([1, 4, 9, 0, 3, 3, 7, 2], [2, 4])], '', ['words', floats([10, 8])], ['positions', floats([16, 8])], '', ['gamma', floats([8])], ['beta', floats([8])],
    ], ['y', 'mask_index', 'sum'], [floatAttr('epsilon', 1e-5)]));
  });
});

describe('attention', () => {
  const B = 2; const S = 3; const N = 2; const H = 4; const P = 2;
  it('Attention with a past, a causal mask and a 2-D key mask', async () => {
    await expectEqualToOrt(singleNode('Attention', [
      ['x', floats([B, S, 8])], ['w', floats([8, 3 * N * H])], ['bias', floats([3 * N * H])], ['mask', int32s([1, 1, 1, 1, 1, 0, 1, 1, 1, 1], [B, P + S])], ['past', floats([2, B, N, P, H])],
    ], ['y', 'present'], [intAttr('num_heads', N), intAttr('unidirectional', 1)]));
  });
  it('Attention with a 1-D mask_index of valid lengths', async () => {
    await expectEqualToOrt(singleNode('Attention', [
      ['x', floats([B, S, 8])], ['w', floats([8, 3 * N * H])], ['bias', floats([3 * N * H])], ['mask', int32s([3, 2], [B])],
    ], ['y'], [intAttr('num_heads', N)]));
  });
  it('MultiHeadAttention with bias, key padding mask, attention bias and a past', async () => {
    await expectEqualToOrt(singleNode('MultiHeadAttention', [
      ['q', floats([B, S, N * H])], ['k', floats([B, S, N * H])], ['v', floats([B, S, N * H])], ['bias', floats([3 * N * H])],
      ['mask', int32s([1, 1, 1, 1, 1, 1, 1, 0, 1, 1], [B, P + S])], ['attn_bias', floats([1, N, S, P + S])], ['past_k', floats([B, N, P, H])], ['past_v', floats([B, N, P, H])],
    ], ['y', 'present_k', 'present_v'], [intAttr('num_heads', N)]));
  });
  it('MultiHeadAttention with key and value already split into heads [B, N, L, H]', async () => {
    await expectEqualToOrt(singleNode('MultiHeadAttention', [['q', floats([B, S, N * H])], ['k', floats([B, N, 5, H])], ['v', floats([B, N, 5, H])]],
      ['y'], [intAttr('num_heads', N)]));
  });
  it('MultiHeadAttention, causal (unidirectional)', async () => {
    await expectEqualToOrt(singleNode('MultiHeadAttention', [['q', floats([B, S, N * H])], ['k', floats([B, S, N * H])], ['v', floats([B, S, N * H])]],
      ['y'], [intAttr('num_heads', N), intAttr('unidirectional', 1)]));
  });
  it('GroupQueryAttention: kv heads repeated, a past, seqlens_k', async () => {
    const kv = 1;
    const H = 8; // onnxruntime's kernel wants a head size that is a multiple of 8 …
    const B = 1; // … and one row when a past and several new tokens are given
    await expectEqualToOrt(singleNode('GroupQueryAttention', [
      ['q', floats([B, S, 2 * N * H])], ['k', floats([B, S, kv * H])], ['v', floats([B, S, kv * H])], ['past_k', floats([B, kv, P, H])], ['past_v', floats([B, kv, P, H])],
      ['seqlens_k', int32s([P + S - 1], [B])], ['total', int32s([P + S], [])],
    ], ['y', 'present_k', 'present_v'], [intAttr('num_heads', 2 * N), intAttr('kv_num_heads', kv)]));
  });
  it('GroupQueryAttention with rotary and packed q|k|v, empty past', async () => {
    const kv = 2;
    const H = 16; // a multiple of 16 with rotary
    const { cos, sin } = caches(16, H / 2);
    await expectEqualToOrt(singleNode('GroupQueryAttention', [
      ['qkv', floats([B, S, (2 * N + 2 * kv) * H])], '', '', ['past_k', floats([B, kv, 0, H])], ['past_v', floats([B, kv, 0, H])],
      ['seqlens_k', int32s([S - 1, S - 1], [B])], ['total', int32s([S], [])], ['cos', cos], ['sin', sin],
    ], ['y', 'present_k', 'present_v'], [intAttr('num_heads', 2 * N), intAttr('kv_num_heads', kv), intAttr('do_rotary', 1), intAttr('rotary_interleaved', 1)]));
  });
});

describe('opsets and refusals', () => {
  it('emits ReduceMean with axes as an input at opset 18', async () => {
    const c = singleNode('SimplifiedLayerNormalization', [['x', floats([2, 3, 8], 2)], ['gamma', floats([8])]], ['y'], [floatAttr('epsilon', 1e-6)], '');
    c.model.opsetImport[0].version = 18;
    await expectEqualToOrt(c);
    const reduce = c.model.graph!.node.find((n) => n.opType === 'ReduceMean')!;
    expect(reduce.input).toHaveLength(2);
    expect(reduce.attribute.some((a) => a.name === 'axes')).toBe(false);
  });

  it('raises opset 11 to 17, and refuses when that would change a Squeeze', async () => {
    const c = singleNode('Gelu', [['x', floats([2, 3, 8], 3)]], ['y'], []);
    c.model.opsetImport[0].version = 11;
    await expectEqualToOrt(c);
    expect(c.model.opsetImport[0].version).toBe(17);

    const d = singleNode('Gelu', [['x', floats([1, 3, 8], 3)]], ['g'], []);
    d.model.opsetImport[0].version = 11;
    d.model.graph!.node.push(makeNode({ opType: 'Squeeze', inputs: ['g'], outputs: ['y'], attributes: [{ ...intAttr('axes', 0), type: 7, ints: [0], i: undefined }] }));
    d.model.graph!.output = [{ name: 'y', metadataProps: [] }];
    const err = await decomposeAndCompare(d.model, d.feeds, scratch.dir, 1e-4, 1e-4).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/opset 11 .*Squeeze.*opset 17/);
  });

  it('leaves forms it does not decompose, and ops without a rule, in place and untouched', async () => {
    const kv = 1; const H = 8;
    const c = singleNode('GroupQueryAttention', [
      ['q', floats([1, 3, 2 * H])], ['k', floats([1, 3, kv * H])], ['v', floats([1, 3, kv * H])], '', '', ['seqlens_k', int32s([2], [1])], ['total', int32s([3], [])],
    ], ['y', 'present_k', 'present_v'], [intAttr('num_heads', 2), intAttr('kv_num_heads', kv), intAttr('local_window_size', 2)]);
    c.model.graph!.node.push(makeNode({ opType: 'QuickGelu', domain: 'com.microsoft', inputs: ['y'], outputs: ['z'], name: 'quick' }));
    c.model.graph!.output.push({ name: 'z', metadataProps: [] });
    const before = JSON.stringify(c.model.graph!.node);
    const initializers = c.model.graph!.initializer.length;
    const { result, diffs, left } = await decomposeAndCompare(c.model, c.feeds, scratch.dir, 1e-6, 0);
    expect(result.replaced).toEqual({});
    expect(result.kept.map((k) => k.opType)).toEqual(['QuickGelu', 'GroupQueryAttention']);
    expect(result.kept[1].reason).toMatch(/local attention window/);
    expect(left).toEqual(['GroupQueryAttention', 'QuickGelu']);
    expect(JSON.stringify(c.model.graph!.node)).toBe(before);
    expect(c.model.graph!.initializer.length).toBe(initializers);
    for (const d of diffs) expect(d.maxAbs).toBe(0);
  });

  it('rolls back a decomposition refused halfway (Attention with a [2B] start/end mask_index)', async () => {
    const c = singleNode('Attention', [
      ['x', floats([2, 3, 8])], ['w', floats([8, 24])], ['bias', floats([24])], ['mask', int32s([3, 2, 0, 0], [4])],
    ], ['y'], [intAttr('num_heads', 2)]);
    const before = JSON.stringify(c.model.graph!.node);
    const { result, left } = await decomposeAndCompare(c.model, c.feeds, scratch.dir, 1e-6, 0);
    expect(result.kept.map((k) => k.reason)).toEqual(['a 1-D mask_index with start positions']);
    expect(left).toEqual(['Attention']);
    expect(JSON.stringify(c.model.graph!.node)).toBe(before);
    expect(c.model.graph!.initializer).toEqual([]);
  });
});
